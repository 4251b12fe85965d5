"""The per-ref writer lock, and where proctor keeps its per-ref files beside git's.

Compare-and-swap alone keeps a ref correct, but under many writers a loser keeps losing.
proctor's writers to one ref therefore queue on a lock file (flock), leaving
compare-and-swap to arbitrate only against writers that are not proctor (a
``git commit``, a fetch).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from proctor.core.errors import StoreError

_HELD_LOCKS = threading.local()


def ref_file(common_dir: str, ref: str, kind: str) -> Path:
    """The file of ``kind`` ("write": the lock, "sync": the journal) for ``ref``."""
    digest = hashlib.sha1(ref.encode()).hexdigest()[:16]
    return Path(common_dir) / f"proctor-{kind}-{digest}"


@contextmanager
def writer_lock(common_dir: str, ref: str) -> Iterator[None]:
    """Serialise proctor's writers to one ref across processes (flock).

    The kernel drops the lock when its holder dies, even by SIGKILL, so a crash never
    leaves the store locked. A second write to the same ref from the thread that holds
    the lock is refused rather than left waiting for itself.
    """
    path = ref_file(common_dir, ref, "write")
    held = _HELD_LOCKS.__dict__.setdefault("paths", set())
    if path in held:
        # flock would wait for ourselves forever: an action's apply() (or a side
        # effect) started another write to the same ref.
        raise StoreError(
            f"a write to {ref} is already in progress in this thread; "
            "an action cannot start another write to the same branch"
        )
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    held.add(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        held.discard(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
