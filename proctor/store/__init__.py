"""The git store: object reads and writes, refs moved by compare-and-swap, git's own
locks, the work-tree sync and its recovery, identity and trailers, read-only snapshots.

It knows git and nothing of procedures, actions or checks: a write is a
:class:`~proctor.store.change.Change` (paths to bytes) and a list of tags; what it
returns (:class:`~proctor.store.change.WriteResult`) exists only once the refs moved,
with warnings for anything that did not follow. Its errors (``proctor.store.errors``)
subclass those of ``core``, which it alone builds on.
"""

from proctor.store.change import Change, TagSpec, WriteResult
from proctor.store.checkout import Checkout
from proctor.store.errors import (
    IdentityError,
    IndexLockedError,
    JournalError,
    OperationInProgressError,
    TrailerError,
    UnsafePathError,
)
from proctor.store.git import discover
from proctor.store.gitstore import GitStore
from proctor.store.identity import check_trailer, validate_identity
from proctor.store.objects import (
    MODE_EXEC,
    MODE_FILE,
    MODE_TREE,
    ZERO_SHA,
    blob_sha,
    format_ident,
    short,
)
from proctor.store.snapshot import Snapshot
from proctor.store.worktree import Recovery

__all__ = [
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_TREE",
    "ZERO_SHA",
    "Change",
    "Checkout",
    "GitStore",
    "IdentityError",
    "IndexLockedError",
    "JournalError",
    "OperationInProgressError",
    "Recovery",
    "Snapshot",
    "TagSpec",
    "TrailerError",
    "UnsafePathError",
    "WriteResult",
    "blob_sha",
    "check_trailer",
    "discover",
    "format_ident",
    "short",
    "validate_identity",
]
