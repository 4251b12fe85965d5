"""The store's typed errors: what a face maps to an exit code and a one-line message.

Each subclasses an error of ``core.errors``, so a face that knows only those already
reports the right exit code; the subclasses let a caller tell the cases apart. Every one
raised before a ref moves means nothing was written.
"""

from __future__ import annotations

from proctor.core.errors import ConcurrencyError, StoreError, UsageError

__all__ = [
    "WORK_TREE_BACK",
    "IdentityError",
    "IndexLockedError",
    "JournalError",
    "MissingWorkTreeError",
    "NameTakenError",
    "OperationInProgressError",
    "TrailerError",
    "UnsafePathError",
]


class IdentityError(UsageError):
    """git's identity is missing or would not make a valid header (exit 2)."""


class TrailerError(UsageError):
    """A trailer key or value that is not one printable ``Key: value`` line (exit 2)."""


class UnsafePathError(UsageError):
    """A path the write touches runs through a symbolic link, or a file stands where a
    directory is needed (exit 2, nothing written)."""


class NameTakenError(UnsafePathError):
    """A file stands under the name a write would write another by (its temporary file
    or its backup): local work in the way, which the write will not remove (exit 2; a
    conflict for a sync)."""


class OperationInProgressError(UsageError):
    """A merge, rebase, cherry-pick or revert is in progress on the checked-out store
    branch; writing now would mix proctor's commit into it (exit 2, nothing written)."""


#: What gets a work tree that is not there out of the way, in the messages that name one.
WORK_TREE_BACK = (
    "mount it again, or if it is gone for good, run `git worktree prune` (after "
    "`git worktree unlock` if it is locked)"
)


class MissingWorkTreeError(UsageError):
    """The store branch is checked out in a linked work tree whose folder is not there
    (unmounted, or deleted without ``git worktree prune``): moving the branch would leave
    that work tree's index behind it, for a plain ``git commit`` there to revert (exit 2,
    nothing written)."""

    def __init__(self, message: str, work_tree: str) -> None:
        super().__init__(message)
        self.work_tree = work_tree


class IndexLockedError(ConcurrencyError):
    """Another git process holds the work tree's ``index.lock`` (exit 3, nothing written).

    It is a concurrency conflict that outlived the wait; a stale lock left by a crashed
    git is named in the message with the command that clears it.
    """


class JournalError(StoreError):
    """A sync journal that cannot be read is left in place and reported (exit 1)."""
