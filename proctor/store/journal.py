"""The sync journal: what a write owes the work tree, kept until it is paid.

Written under the writer lock once ``index.lock`` is held (before anything else), then
again with the new commit just before the ref moves, and removed once the new index is
in place. A writer killed in between, or one whose sync failed (a full disk), leaves it;
the next proctor operation reads it to finish the sync (``worktree.recover``). A journal
that cannot be read is reported and left where it is, never deleted: it is the only
record of which paths are behind.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from proctor.store.checkout import Checkout
from proctor.store.errors import JournalError
from proctor.store.indexlock import LockId
from proctor.store.locks import ref_file, state_dir

__all__ = ["Record", "load", "pending", "private_index", "remove", "save"]


@dataclass
class Record:
    """One owed sync: ``ref`` moves (or moved) from ``old`` to ``new`` over ``paths``."""

    ref: str
    old: str | None
    new: str | None
    paths: list[str]
    work_tree: str | None = None
    index: str | None = None
    token: str = field(default_factory=lambda: f"proctor-lock {uuid.uuid4().hex}\n")
    lock: LockId | None = None
    pid: int = field(default_factory=os.getpid)


def path(common_dir: str, ref: str) -> Path:
    return ref_file(common_dir, ref, "sync", ".json")


def save(common_dir: str, record: Record) -> Path:
    """Write the journal atomically (temporary file, then rename)."""
    target = path(common_dir, record.ref)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load(common_dir: str, ref: str) -> Record | None:
    """The journal of ``ref``, None if there is none; JournalError if it cannot be read."""
    target = path(common_dir, ref)
    try:
        text = target.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(target, exc) from None
    try:
        data = json.loads(text)
        lock = data.get("lock")
        record = Record(
            ref=str(data["ref"]),
            old=data.get("old"),
            new=data.get("new"),
            paths=[str(p) for p in data["paths"]],
            work_tree=data.get("work_tree"),
            index=data.get("index"),
            token=str(data["token"]),
            lock=(int(lock[0]), int(lock[1])) if lock else None,
            pid=int(data.get("pid", 0)),
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
    path(common_dir, ref).unlink(missing_ok=True)


def pending(common_dir: str) -> bool:
    """Whether any journal exists (one directory listing; what a read asks on open)."""
    try:
        return any(name.startswith("sync-") for name in os.listdir(Path(common_dir) / "proctor"))
    except FileNotFoundError:
        return False


def private_index(common_dir: str, checkout: Checkout) -> Path:
    """A private copy of the index that ``git update-index`` edits while the real one is
    locked (its bytes then go into ``index.lock``)."""
    name = f"index-{os.getpid()}-{threading.get_ident()}"
    return state_dir(common_dir) / name
