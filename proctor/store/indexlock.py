"""git's own lock on a work tree's index, held the way ``git commit`` holds it.

Every git command that writes the index creates ``index.lock`` exclusively, writes the
new index into it and renames it over ``index``; while the file exists, other writers
wait or fail. proctor takes the same lock from the moment it reads the index (the check
for uncommitted work) until the index of the new commit is in place, so a plain
``git commit`` running at the same time either finishes before proctor reads or fails
cleanly, and never commits the index proctor is about to replace (which would revert
proctor's commit). The new index is put in place by ``staging`` while the lock is held.

A holder killed after the ref moved leaves the lock in place on purpose: git refuses to
commit from the stale index until the next proctor operation finishes the sync. So that
only that very file is ever adopted, the journal names a random token before the lock
exists, the lock holds that token from its first write on, and the journal records the
lock's device and inode before its content changes again. (A holder killed between
creating the file and writing the token leaves an empty lock, exactly as git itself
does in that instant; like git's, it is reported, never taken over.)
"""

from __future__ import annotations

import errno
import os
import random
import time
from pathlib import Path

from proctor.store.errors import IndexLockedError

__all__ = ["IndexLock", "LockId"]

#: (st_dev, st_ino) of a lock file: what a journal records to know it again.
LockId = tuple[int, int]


def _lock_id(st: os.stat_result) -> LockId:
    return (st.st_dev, st.st_ino)


class IndexLock:
    """A held ``index.lock``; ``release`` removes it (the new index is put in place by
    ``staging`` while it is held), ``abandon`` leaves it for a recovery."""

    def __init__(self, index: Path, fd: int, ident: LockId) -> None:
        self.index = index
        self.path = lock_path(index)
        self._fd: int | None = fd
        self.ident = ident

    @classmethod
    def acquire(
        cls, index: Path, timeout: float, token: str, *, tip: str | None = None
    ) -> IndexLock:
        """Create ``index.lock`` exclusively and write ``token`` into it, waiting up to
        ``timeout`` seconds for a holder to finish; IndexLockedError after that (nothing
        was written)."""
        path = lock_path(index)
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(
                        f"{path} exists: another git process is writing the index of "
                        "this work tree, or one crashed and left the file; if no git "
                        f"process is running, remove it (rm '{path}'); nothing was written",
                        expected=tip,
                        actual=tip,
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)
            except FileNotFoundError:
                raise IndexLockedError(
                    f"{index.parent} is gone; nothing was written", expected=tip, actual=tip
                ) from None
        lock = cls(index, fd, _lock_id(os.fstat(fd)))
        try:
            if os.write(fd, token.encode()) != len(token.encode()):
                raise OSError(errno.ENOSPC, f"{path}: could not write the lock token")
        except BaseException:
            lock.release()
            raise
        return lock

    @classmethod
    def adopt(cls, index: Path, token: str, ident: LockId | None) -> IndexLock | None:
        """Take over the lock an interrupted proctor writer left: the file still holding
        its ``token``, or (once it was being filled with the new index) its ``ident``."""
        path = lock_path(index)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        found = _lock_id(os.fstat(fd))
        content = os.pread(fd, len(token) + 1, 0)
        if content != token.encode() and (ident is None or found != tuple(ident)):
            os.close(fd)
            return None
        return cls(index, fd, found)

    def release(self) -> None:
        """Give the lock up without a new index: remove the file if it is still ours."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            if _lock_id(os.lstat(self.path)) == self.ident:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    def abandon(self) -> None:
        """Stop holding the descriptor but leave the file: git keeps refusing to write the
        index until a recovery (which adopts the file by its id) finishes the sync."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_path(index: Path) -> Path:
    return index.with_name(index.name + ".lock")
