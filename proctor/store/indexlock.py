"""git's own lock on a work tree's index, held the way ``git commit`` holds it.

Every git command that writes the index creates ``index.lock`` exclusively, writes the
new index into it and renames it over ``index``; while the file exists, other writers
wait or fail. proctor takes the same lock before it reads the index (the check for
uncommitted work) and holds it until the ref has moved; the new index is put in place
by ``staging`` while the lock is held (see there why before the ref moves), so a plain
``git commit`` running at the same time fails cleanly instead of committing an index
that would revert proctor's commit.

A holder killed on the way leaves the lock in place on purpose: git refuses to write
the index until the next proctor operation finishes or rolls back the write. So that
only a lock proctor made is ever taken over, the lock holds a token naming the ref from
the instant it exists: it is a hard link to a file holding that token (a link is as
exclusive as ``O_EXCL``, and leaves no instant at which the lock exists empty, which a
kill during a slow file creation would otherwise leave behind). Only proctor's writers to
that ref write it, and they queue on the writer lock, so a lock holding the token while
one holds the writer lock was left by a writer that is gone.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
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


def token_for(ref: str) -> bytes:
    """What a lock proctor holds for ``ref`` contains."""
    return f"proctor-lock {ref}\n".encode()


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
        cls, index: Path, timeout: float, ref: str, scratch: Path, *, tip: str | None = None
    ) -> IndexLock:
        """Make ``index.lock`` exist, exclusively and already holding ``token_for(ref)``,
        waiting up to ``timeout`` seconds for a holder to finish; IndexLockedError after
        that (nothing was written). ``scratch`` holds the file that is linked in."""
        path = lock_path(index)
        token = token_for(ref)
        seed = _seed(scratch, ref)
        deadline = time.monotonic() + timeout
        delay = 0.002
        reseeded = False
        while True:
            try:
                _create(seed, path, token)
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
                # The seed went (made again, once), or the index's folder did (no lock
                # can be made there: said at once).
                if not reseeded and not os.path.lexists(seed):
                    _SEEDS.pop((os.fspath(scratch), ref), None)
                    seed, reseeded = _seed(scratch, ref), True
                    continue
                raise IndexLockedError(
                    f"{index.parent} is gone; nothing was written", expected=tip, actual=tip
                ) from None
            else:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                if os.pread(fd, len(token) + 1, 0) == token or reseeded:
                    return cls(index, fd, _lock_id(os.fstat(fd)))
                # The seed was changed since this process wrote or read it: the lock
                # would not say whose it is. Taken back, and the seed made again.
                os.close(fd)
                os.unlink(path)
                _SEEDS.pop((os.fspath(scratch), ref), None)
                seed, reseeded = _seed(scratch, ref), True

    @classmethod
    def adopt(cls, index: Path, ref: str) -> IndexLock | None:
        """Take over the lock an interrupted proctor writer to ``ref`` left (the caller
        holds the writer lock of ``ref``): the file holding ``token_for(ref)``."""
        path = lock_path(index)
        token = token_for(ref)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        if os.pread(fd, len(token) + 1, 0) != token:
            os.close(fd)
            return None
        return cls(index, fd, _lock_id(os.fstat(fd)))

    def release(self) -> None:
        """Give the lock up: remove the file if it is still ours."""
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
        index until a recovery (which knows the file by its token) finishes or undoes
        the write."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# The seeds this process wrote or found right; each lock linked from one is read back
# (``acquire``), so a seed is not read again on every write.
_SEEDS: dict[tuple[str, str], Path] = {}


def _seed(scratch: Path, ref: str) -> Path:
    """The file holding ``ref``'s token, written once and linked as the lock each time."""
    key = (os.fspath(scratch), ref)
    known = _SEEDS.get(key)
    if known is not None:
        return known
    seed = scratch / f"lock-{hashlib.sha1(ref.encode()).hexdigest()[:16]}"
    token = token_for(ref)
    try:
        if seed.read_bytes() == token:
            _SEEDS[key] = seed
            return seed
    except FileNotFoundError:
        pass
    tmp = seed.with_name(f".{seed.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):  # left by a killed writer with our pid
        os.unlink(tmp)
    # Created here, exclusively: a symbolic link planted under this name is not followed.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
    try:
        os.write(fd, token)
    finally:
        os.close(fd)
    os.replace(tmp, seed)
    _SEEDS[key] = seed
    return seed


def _create(seed: Path, path: Path, token: bytes) -> None:
    """Make ``path`` exist, exclusively, already holding ``token``."""
    try:
        os.link(seed, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        # No hard links here: git's own way (the instant between creating and writing
        # is left open, as it is for git).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, token)
        finally:
            os.close(fd)


@functools.lru_cache(maxsize=64)
def lock_path(index: Path) -> Path:
    """``index.lock`` beside ``index`` (asked several times a write)."""
    return index.with_name(index.name + ".lock")
