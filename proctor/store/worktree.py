"""The checked-out store branch: refuse to overwrite local work, and recover.

When the store branch is checked out, the touched paths are checked for uncommitted
work before anything is written (their index entries read from the index file directly
where that is safe: one process fewer per write), holding git's ``index.lock``
(``indexlock``). ``staging`` then changes the work tree and index before the ref moves.
A write interrupted on the way (killed, or the disk filled up) leaves its journal and
the lock: git refuses to write the index meanwhile, and the next proctor operation
finishes the write or rolls it back (``recover``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from proctor.core.errors import StoreError
from proctor.store import fs, indexfile, journal, staging
from proctor.store.change import Change
from proctor.store.checkout import Checkout, work_tree_there
from proctor.store.git import leads_back, run_git, same_path
from proctor.store.indexlock import IndexLock
from proctor.store.locks import state_dir
from proctor.store.objects import MODE_TREE, blob_sha
from proctor.store.odb import ObjectStore
from proctor.store.refs import read_ref

__all__ = [
    "IndexEntry",
    "Recovery",
    "admin_identity",
    "dirty_paths",
    "index_entries",
    "index_lookup",
    "local_state",
    "recover",
    "repair_hint",
    "staged_entries",
    "staged_ids",
]


@dataclass(frozen=True)
class IndexEntry:
    """What the index holds for a path: its blob id, and whether it is outside a sparse
    checkout (skip-worktree: git keeps no file for it in the work tree)."""

    sha: str
    skip_worktree: bool = False


def index_entries(data: bytes, paths: list[str]) -> dict[str, IndexEntry] | None:
    """Find the entries of ``paths`` in the bytes of a git index, in-process.

    The entries are walked once per index (``indexfile.layout``: the write that follows
    finds them without a second walk), and a name counts only where an entry starts. A
    path at a merge stage other than 0 is reported with the id of its last stage (the
    write then sees it as not clean). Returns None for anything else (version 4's
    compressed paths, a split or sparse index, entries out of order, a huge index, no
    index signature) so the caller can ask git.
    """
    if not data:
        return {}
    found_layout = indexfile.layout(data)
    if found_layout is None:
        return None
    found: dict[str, IndexEntry] = {}
    for path in paths:
        hits = indexfile.entries_named(data, found_layout, path.encode("utf-8", "surrogateescape"))
        if hits:
            start, flags = hits[-1]
            extended = int.from_bytes(data[start + 62 : start + 64], "big") if flags & 0x4000 else 0
            found[path] = IndexEntry(data[start + 40 : start + 60].hex(), bool(extended & 0x4000))
    return found


def index_lookup(data: bytes, paths: list[str]) -> dict[str, str] | None:
    """``index_entries`` as path -> blob id."""
    entries = index_entries(data, paths)
    return None if entries is None else {p: e.sha for p, e in entries.items()}


def read_index(store: ObjectStore, checkout: Checkout) -> bytes:
    """The bytes of the work tree's index (empty when there is none yet)."""
    try:
        return checkout.index.read_bytes()
    except FileNotFoundError:
        return b""


def staged_entries(
    store: ObjectStore, checkout: Checkout, paths: list[str], data: bytes | None = None
) -> dict[str, IndexEntry]:
    """The index entries of ``paths`` in ``checkout`` (absent: not staged).

    Read from the index bytes directly when they are a plain version 2 or 3 index
    (one process fewer per write); ``git ls-files`` otherwise (version 4, a split or
    sparse index).
    """
    found = None
    if store.config.get("index.sparse", "").lower() != "true":
        if data is None:
            data = read_index(store, checkout)
        found = index_entries(data, paths)
    if found is not None:
        return found
    found = {}
    proc = run_git(
        ["ls-files", "-s", "-t", "-z", "--", *[":(literal)" + p for p in paths]],
        checkout.work_tree,
    )
    if proc.returncode != 0:
        raise StoreError(f"git ls-files failed: {proc.stderr.decode(errors='replace').strip()}")
    for record in proc.stdout.split(b"\0"):
        if record:
            meta, _, raw_path = record.partition(b"\t")
            tag, _mode, sha = meta.split()[:3]
            found[raw_path.decode("utf-8", "surrogateescape")] = IndexEntry(
                sha.decode(), tag == b"S"
            )
    return found


def staged_ids(store: ObjectStore, work_tree: str, paths: list[str]) -> dict[str, str]:
    """The blob ids the index of ``work_tree`` holds for ``paths`` (absent: not staged)."""
    checkout = Checkout(work_tree, _git_dir_of(store, work_tree))
    return {p: e.sha for p, e in staged_entries(store, checkout, paths).items()}


def _git_dir_of(store: ObjectStore, work_tree: str) -> str:
    if work_tree == store.work_tree:
        return store.git_dir
    gitfile = Path(work_tree) / ".git"
    if gitfile.is_file():
        return str(Path(work_tree) / gitfile.read_text().strip().removeprefix("gitdir: "))
    return str(gitfile)


def local_state(
    store: ObjectStore,
    checkout: Checkout,
    paths: list[str],
    data: bytes | None = None,
) -> dict[str, tuple[IndexEntry | None, bytes | None]]:
    """For each path: (its index entry or None, bytes in the work tree or None)."""
    staged = staged_entries(store, checkout, paths, data)
    return {p: (staged.get(p), fs.read_local(checkout.work_tree, p)) for p in paths}


def _local_ids(
    store: ObjectStore, checkout: Checkout, state: dict[str, tuple[IndexEntry | None, bytes | None]]
) -> dict[str, str | None]:
    """The blob id each work-tree file would be staged as (None: no file)."""
    return {p: None if local is None else blob_sha(local) for p, (_e, local) in state.items()}


def dirty_paths(
    store: ObjectStore,
    checkout: Checkout,
    tip: str | None,
    change: Change,
    data: bytes | None = None,
    local_ids: Callable[[dict[str, bytes]], dict[str, str]] | None = None,
) -> list[str]:
    """Touched paths whose local state the write would lose.

    A path is clean when its index entry and work-tree file both match the tip (a
    skip-worktree entry has no file by design: the index alone decides). A file edited
    in place and then handed to proctor (``--code procedures/x/main.py``, see
    ``Change.consumed``) holds exactly what is being committed or what was read to build
    it: nothing of the user's is lost, so it is not a conflict either, as long as the
    index holds nothing else. ``local_ids`` hashes work-tree files as git would stage
    them (line-ending conversion); plain ``blob_sha`` without it.
    """
    if not change.edits:
        return []
    tip_tree = store.commit_tree(tip) if tip else None
    state = local_state(store, checkout, change.paths, data)
    ids = _local_ids(store, checkout, state)
    if local_ids is not None:
        present = {p: b for p, (_e, b) in state.items() if b is not None and b != fs.NOT_REGULAR}
        ids.update(local_ids(present))
    lost = []
    for path, (entry, local) in state.items():
        tip_entry = store.entry_at(tip_tree, path)
        tip_sha = tip_entry[1] if tip_entry and tip_entry[0] != MODE_TREE else None
        index_sha = entry.sha if entry else None
        local_sha = ids[path]
        if entry is not None and entry.skip_worktree and local is None:
            local_sha = index_sha  # outside the sparse checkout: no file, by design
        if index_sha == tip_sha and local_sha == tip_sha:
            continue
        new = change.edits.get(path)
        given = change.consumed.get(path)
        if local != new and (local is None or given != local):
            lost.append(path)
            continue
        accepted = {None, tip_sha}
        accepted.update(blob_sha(b) for b in (new, given) if b is not None)
        if index_sha not in accepted:
            lost.append(path)
    return sorted(lost)


def repair_hint(lock: Path) -> str:
    """How a user finishes what an interrupted write left: the next proctor command
    does it, or git by hand."""
    return (
        "run any proctor command (e.g. `proctor status`) and it finishes or rolls back the "
        f"interrupted write; by hand: check `git status`, then rm '{lock}'"
    )


@dataclass
class Recovery:
    """What ``recover`` did: the paths it finished or rolled back, and what to tell."""

    fixed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rolled_back: bool = False
    kept_for: str | None = None  # the work tree, not there, whose journal was kept


def admin_identity(admin: Path) -> str | None:
    """Which git dir of a work tree this is, made once per ``git worktree add``: its
    folder (device:inode) and, for a linked one, its ``commondir`` file's inode and
    change time (a folder, or its inode, may come back for the next work tree under
    the same name; a file made at another time may not). None if it is not there."""
    try:
        st = os.stat(admin)
    except OSError:
        return None
    folder = f"{st.st_dev}:{st.st_ino}"
    try:
        made = os.stat(admin / "commondir")
    except OSError:
        return folder
    return f"{folder}:{made.st_ino}:{made.st_ctime_ns}"


def _belongs(work_tree: str, admin: Path) -> bool:
    """Whether ``work_tree`` is the work tree of the git dir ``admin`` (its ``.git``
    leads there: not a clone made in its place, not another work tree)."""
    return work_tree_there(work_tree) and leads_back(work_tree, str(admin))


def _where_git_has_it(admin: Path) -> str | None:
    """Where git now has the linked work tree whose git dir is ``admin`` (its ``gitdir``
    file names the work tree's ``.git``); None for the main one."""
    try:
        dot_git = (admin / "gitdir").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    dot_git = dot_git.strip()
    if not os.path.isabs(dot_git):
        dot_git = os.path.join(admin, dot_git)
    return os.path.dirname(os.path.normpath(dot_git))


def recover(store: ObjectStore, ref: str, lock_timeout: float) -> Recovery:
    """Finish or roll back a write to ``ref`` that was interrupted, from its journal (the
    caller holds the writer lock of ``ref``, so the writer that left it is gone).

    The ref moved: the write is complete but for its backups and ``index.lock``, which
    are removed. It did not: what the write changed in the work tree and index is put
    back where it is still as the write left it (``staging.rollback``). A work tree
    removed since leaves nothing to do either way but say so. An unreadable journal
    raises JournalError and is left in place.
    """
    record = journal.load(store.common_dir, ref)
    if record is None:
        return Recovery()
    if record.index is None or record.work_tree is None:
        journal.remove(store.common_dir, ref)
        return Recovery()
    index = Path(record.index)
    if not index.parent.is_dir() and record.index_in and record.admin is not None:
        # The whole repository moved: the same git dir, found from the one open now.
        here = Path(store.common_dir) / record.index_in
        if admin_identity(here.parent) == record.admin:
            index = here
            record.index = str(here)
    # A git dir git made since under the same name (the work tree pruned, another added)
    # is not the one this write touched.
    replaced = record.admin is not None and admin_identity(index.parent) != record.admin
    if not index.parent.is_dir() or replaced:
        # The work tree was removed (``git worktree remove``, or ``prune``; perhaps another
        # added since under its name): nothing of it is left to finish or put back, and
        # the ref is whole either way.
        left = None if replaced else IndexLock.adopt(index, ref)
        if left is not None:
            left.release()
        journal.remove(store.common_dir, ref)
        return Recovery(
            warnings=[
                f"the work tree {record.work_tree}, which an interrupted write was bringing "
                "up to date, is gone: there was nothing left to finish there"
            ]
        )
    if not _belongs(record.work_tree, index.parent) and record.admin is not None:
        if same_path(str(index.parent), store.common_dir):  # the main work tree, moved
            opened_in_main = same_path(store.git_dir, store.common_dir)
            moved = store.work_tree if opened_in_main else None
        else:  # back elsewhere (``git worktree repair``)
            moved = _where_git_has_it(index.parent)
        if moved is not None and _belongs(moved, index.parent):
            record.work_tree = moved
    if not _belongs(record.work_tree, index.parent):  # unmounted, say: kept until back
        return Recovery(
            kept_for=record.work_tree,
            warnings=[
                f"the work tree {record.work_tree}, which an interrupted write was bringing "
                "up to date, is not there; that is finished when it is back (or dropped "
                "after `git worktree prune`)"
            ],
        )
    lock = IndexLock.adopt(index, ref)
    if lock is None:
        if record.new is None:  # nothing was touched (and no lock of its own is left)
            journal.remove(store.common_dir, ref)
            return Recovery()
        lock = IndexLock.acquire(
            index, lock_timeout, ref, state_dir(store.common_dir), tip=record.new
        )
    result = Recovery(fixed=list(record.paths))
    try:
        if record.new is not None and read_ref(store.common_dir, ref) == record.new:
            result.warnings += staging.finish(store, record)
        elif record.new is not None:
            result.warnings += staging.rollback(store, record)
            result.rolled_back = True
        else:
            result.fixed = []
    except BaseException:
        lock.abandon()
        raise
    lock.release()
    journal.remove(store.common_dir, ref)
    return result
