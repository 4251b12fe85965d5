"""The sync journal: what a write owes the work tree, kept until it is paid.

Written under the writer lock before ``index.lock`` is taken, again with the new
commit and what the work tree held
before the work tree is touched, once more with the new index's checksum before it is
put in place, and cleared once the ref moved and the lock is released. A writer killed
in between leaves it; the next proctor operation reads it to finish the write (the ref
moved) or roll it back (it did not): ``worktree.recover``. A journal
that cannot be read is reported and left where it is, never deleted: it is the only
record of which paths are behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from proctor.store.errors import JournalError
from proctor.store.locks import open_state, ref_file
from proctor.store.perms import open_file

__all__ = ["Record", "load", "pending", "remove", "save"]


@dataclass
class Record:
    """One owed sync: ``ref`` moves (or moved) from ``old`` to ``new`` over ``paths``."""

    ref: str
    old: str | None
    new: str | None
    paths: list[str]
    work_tree: str | None = None
    index: str | None = None
    pid: int = field(default_factory=os.getpid)
    # Set before the work tree is touched: which paths had a file, and the checksums of
    # the index before and after (what tells a rollback which index it is looking at).
    existed: dict[str, bool] = field(default_factory=dict)
    index_old: str | None = None
    index_new: str | None = None
    # Which git dir held the index (``worktree.admin_identity``): a work tree pruned and
    # added again under the same name is not the work tree this write touched.
    admin: str | None = None
    # The index's place inside the repository's git dir, for a repository moved whole.
    index_in: str | None = None


_FIELDS = tuple(f.name for f in fields(Record))


def path(common_dir: str, ref: str) -> Path:
    return ref_file(common_dir, ref, "sync", ".json")


def save(common_dir: str, record: Record) -> Path:
    """Write the journal in one ``pwrite`` into its file (kept from write to write, so no
    file is created per write): a kill leaves it whole, before or after. A write cut
    short (a full disk) raises, and the caller clears it (``remove``)."""
    target = path(common_dir, record.ref)
    payload = json.dumps(_fields(record)).encode()
    fd = open_state(target, os.O_RDWR | os.O_CREAT, common_dir)
    try:
        size = os.fstat(fd).st_size
        if len(payload) < size:  # longer than the last save: pad, never truncate first
            payload += b" " * (size - len(payload))
        written = os.pwrite(fd, payload, 0)
        if written != len(payload):
            raise OSError(errno.ENOSPC, f"{target}: only {written} of {len(payload)} bytes written")
    finally:
        os.close(fd)
    return target


def _fields(record: Record) -> dict[str, object]:
    """The record as JSON-ready fields (``asdict`` deep-copies every value; a write saves
    the journal three times, and its values are only read here)."""
    return {name: getattr(record, name) for name in _FIELDS}


def load(common_dir: str, ref: str) -> Record | None:
    """The journal of ``ref``, None if there is none; JournalError if it cannot be read."""
    target = path(common_dir, ref)
    try:
        fd = open_file(target, os.O_RDONLY, 0)  # UnsafePathError for a link in its place
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(target, exc) from None
    try:
        with os.fdopen(fd, "r", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError) as exc:
        raise _unreadable(target, exc) from None
    if not text.strip():
        return None
    try:
        data = json.loads(text)
        record = Record(
            ref=str(data["ref"]),
            old=data.get("old"),
            new=data.get("new"),
            paths=[str(p) for p in data["paths"]],
            work_tree=data.get("work_tree"),
            index=data.get("index"),
            pid=int(data.get("pid", 0)),
            existed={str(k): bool(v) for k, v in dict(data.get("existed") or {}).items()},
            index_old=data.get("index_old"),
            index_new=data.get("index_new"),
            admin=data.get("admin"),
            index_in=data.get("index_in"),
        )
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise _unreadable(target, exc) from None
    if record.ref != ref:
        raise _unreadable(target, ValueError(f"it names {record.ref!r}, not {ref!r}"))
    return record


def _unreadable(target: Path, exc: BaseException) -> JournalError:
    return JournalError(
        f"the sync journal {target} cannot be read ({exc}); it records work-tree paths an "
        "interrupted write left behind. Check `git status` in the work tree, then remove "
        "the file; proctor leaves it in place and writes nothing to this branch until then"
    )


def remove(common_dir: str, ref: str) -> None:
    """Clear the journal (truncated to nothing: needs no free space, creates no file)."""
    try:  # never through a symbolic link in its place (save refused to write one)
        fd = os.open(path(common_dir, ref), os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return
        raise
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def pending(common_dir: str) -> bool:
    """Whether any journal holds a record (what a read asks on open: one listing)."""
    folder = Path(common_dir) / "proctor"
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return False
    for name in names:
        if name.startswith("sync-"):
            with contextlib.suppress(OSError):
                if os.stat(folder / name).st_size > 0:
                    return True
    return False
