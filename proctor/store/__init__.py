"""The git store: object reads and writes, refs moved by compare-and-swap, locks, the
work-tree sync and read-only snapshots.

It knows git and nothing of procedures, actions or checks: a write is a
:class:`~proctor.store.change.Change` (paths to bytes) and a list of tags. Builds on
``core`` only.
"""

from proctor.store.change import Change, TagSpec, WriteResult
from proctor.store.git import discover
from proctor.store.gitstore import GitStore
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

__all__ = [
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_TREE",
    "ZERO_SHA",
    "Change",
    "GitStore",
    "Snapshot",
    "TagSpec",
    "WriteResult",
    "blob_sha",
    "discover",
    "format_ident",
    "short",
]
