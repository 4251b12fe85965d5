"""The per-ref writer lock, and where proctor keeps its per-clone state beside git's.

Compare-and-swap alone keeps a ref correct, but under many writers a loser keeps losing.
proctor's writers to one ref therefore queue on a lock file (flock), leaving
compare-and-swap to arbitrate only against writers that are not proctor (a
``git commit``, a fetch). The lock also tells a reader whether a sync journal belongs to
a live writer (lock held) or to one that died (lock free).

Local state lives under ``.git/proctor/`` (per clone, never versioned).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from proctor.core.errors import StoreError
from proctor.store.perms import open_file, state_folder, state_setting

_HELD_LOCKS = threading.local()


def state_dir(common_dir: str) -> Path:
    """``.git/proctor/``, created on first use (shared in a shared repository)."""
    return state_folder(common_dir)


def ref_file(common_dir: str, ref: str, kind: str, suffix: str = "") -> Path:
    """The file of ``kind`` ("write": the lock, "sync": the journal) for ``ref``.

    A write asks for these paths several times; the name is worked out once per process
    (``_ref_path``), and so is the folder (a removed one is made again when the file is
    opened: ``open_state``).
    """
    return _ref_path(state_dir(common_dir), ref, kind, suffix)


@functools.lru_cache(maxsize=256)
def _ref_path(folder: Path, ref: str, kind: str, suffix: str) -> Path:
    return folder / f"{kind}-{hashlib.sha1(ref.encode()).hexdigest()[:16]}{suffix}"


def open_state(path: Path, flags: int, common_dir: str) -> int:
    """Open a state file of the repository at ``common_dir`` (made shared as git makes
    its files in a shared repository). A file this user may not open (another user's,
    root's) is a StoreError that says whose it is and what fixes it."""
    try:
        return open_file(path, flags, state_setting(common_dir))
    except PermissionError as exc:
        raise StoreError(f"{path}: {exc.strerror}; nothing was written") from None


def _held() -> dict[Path, int]:
    """The writer locks this thread holds: their paths and descriptors."""
    held: dict[Path, int] = _HELD_LOCKS.__dict__.setdefault("paths", {})
    return held


def held_writer_lock(common_dir: str, ref: str) -> int | None:
    """The descriptor of ``ref``'s writer lock if this thread holds it, else None.

    The lock's file is proctor's own: a holder may note in it what it is doing (the ref
    lock it made, ``refs.LocalRefs``) for the next holder, who knows from the lock alone
    that whoever wrote the note is gone.
    """
    return _held().get(ref_file(common_dir, ref, "write", ".lock"))


@contextmanager
def writer_lock(common_dir: str, ref: str, *, wait: bool = True) -> Iterator[bool]:
    """Serialise proctor's writers to one ref across processes (flock).

    The kernel drops the lock when its holder dies, even by SIGKILL, so a crash never
    leaves the store locked. A second write to the same ref from the thread that holds
    the lock is refused rather than left waiting for itself. With ``wait`` False the
    block runs at once and is told (True/False) whether it got the lock.
    """
    path = ref_file(common_dir, ref, "write", ".lock")
    held = _held()
    if path in held:
        if not wait:
            yield False
            return
        # flock would wait for ourselves forever: an action's apply() (or a side
        # effect) started another write to the same ref.
        raise StoreError(
            f"a write to {ref} is already in progress in this thread; "
            "an action cannot start another write to the same branch"
        )
    fd = open_state(path, os.O_RDWR | os.O_CREAT, common_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        held[path] = fd
        try:
            yield True
        finally:
            del held[path]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
