"""The work tree and index of a checked-out store branch, changed before the ref moves.

``git commit`` reads HEAD and then the index *before* it takes ``index.lock``. So if the
ref moved first and the index followed, a commit reading in between would see proctor's
new HEAD with the old index, and commit a revert of proctor's work. The order here is
the other one: with ``index.lock`` held throughout, the touched files are written and the
new index is put in place (a rename of a separate file, so the lock stays held), and only
then does the ref move. A reader can then see the old HEAD with the new index, never the
reverse, and any git that wants to commit from what it read must first take the lock:
it fails while proctor holds it, and after that its compare-and-swap on HEAD fails.
A compare-and-swap proctor loses after the new index is in place keeps the lock into the
next try (``GitStore._publish_checked_out``), so no index proctor put in place is taken
back while git could take the lock. What stays open is git's own window: ``git commit``
reads the index before it locks it, and a write that lands wholly in between is undone in
the index that commit writes just before its HEAD update fails (docs/guarantees.md).

What the write replaces is kept as hard links (``.main.py.proctor-old`` beside the file,
``index.proctor-old`` beside the index): if the compare-and-swap is lost, or the write is
killed before the ref moved, the previous state is renamed back, which needs no free
space. Once the ref moved the links are dropped (``finish``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from proctor.core.errors import StoreError
from proctor.store import fs, indexfile
from proctor.store.checkout import Checkout
from proctor.store.git import run_git
from proctor.store.journal import Record
from proctor.store.objects import MODE_EXEC, MODE_FILE, MODE_TREE, blob_sha
from proctor.store.odb import ObjectStore
from proctor.store.perms import write_file

__all__ = [
    "INDEX_NEW",
    "INDEX_OLD",
    "finish",
    "plain_index",
    "publish_index",
    "rollback",
    "stage",
    "trailer",
]

INDEX_NEW = "index.proctor-new"
INDEX_OLD = "index.proctor-old"
_SECOND = 1_000_000_000


def trailer(data: bytes) -> str | None:
    """An index's checksum (its last 20 bytes, hex): what tells one index from another."""
    return data[-20:].hex() if len(data) >= 32 else None


def _file_mode(entry: tuple[str, str]) -> str:
    return entry[0] if entry[0] in (MODE_FILE, MODE_EXEC) else MODE_FILE


def stage(
    store: ObjectStore,
    checkout: Checkout,
    root_tree: str,
    record: Record,
    index_data: bytes,
    contents: Mapping[str, bytes | None],
    skip_worktree: set[str],
) -> str | None:
    """Write the touched files as they are in ``root_tree`` (keeping backups of what they
    replace) and build the new index in ``index.proctor-new``; returns its checksum.

    Nothing is visible to git's index readers yet (``publish_index`` does that).
    """
    base = checkout.work_tree
    regular: list[str] = []
    sparse: list[tuple[str, tuple[str, str]]] = []
    written: dict[str, tuple[int, str, os.stat_result]] = {}
    for path in record.paths:
        entry = store.entry_at(root_tree, path)
        existed = record.existed.get(path, False)
        if path in skip_worktree and not existed and entry is not None:
            sparse.append((path, entry))  # outside the sparse checkout: no file, by design
            continue
        if existed:
            fs.keep_backup(base, path)
        if entry is None or entry[0] == MODE_TREE:
            fs.remove_file(base, path, prune=False)  # the backup keeps its folder for now
            regular.append(path)
            continue
        mode = _file_mode(entry)
        data = contents.get(path)
        if data is None or blob_sha(data) != entry[1]:
            data = store.read_object(entry[1])[1]
        st = fs.write_file(base, path, data, mode == MODE_EXEC)
        written[path] = (int(mode, 8), entry[1], st)
        regular.append(path)
    target = checkout.index.with_name(INDEX_NEW)
    try:  # unchanged since it was read: the caller holds index.lock
        was: os.stat_result | None = os.stat(checkout.index)
    except FileNotFoundError:
        was = None
    if was is not None and len(written) == len(record.paths) and plain_index(store):
        data = _replaced(store, checkout, index_data, written, target, was.st_mtime_ns)
        if data is not None:
            return trailer(data)
    # Anything else is git's: ``update-index`` on a copy, named by GIT_INDEX_FILE. The
    # copy keeps the index's time: git tells racily clean entries by it, and smudges them.
    if index_data:
        write_file(target, index_data, store.shared)
        if was is not None:
            os.utime(target, ns=(was.st_atime_ns, was.st_mtime_ns))
    else:
        target.unlink(missing_ok=True)  # no index yet: git starts an empty one
    env = {"GIT_INDEX_FILE": str(target)}
    if regular:
        listing = "".join(p + "\0" for p in regular).encode()
        _update_index(["--add", "--remove", "-z", "--stdin"], base, listing, env)
    if sparse:
        args: list[str] = []
        for path, entry in sparse:
            args += ["--cacheinfo", _file_mode(entry), entry[1], path]
        _update_index([*args, "--skip-worktree", "--", *[p for p, _ in sparse]], base, None, env)
    return trailer(target.read_bytes())


def _replaced(
    store: ObjectStore,
    checkout: Checkout,
    index_data: bytes,
    written: dict[str, tuple[int, str, os.stat_result]],
    target: Path,
    old_ns: int,
) -> bytes | None:
    """The index (written at ``old_ns``) with the written files' entries replaced
    in-process, written to ``target``; None when git must make it.

    Entries git would take for racily clean in the old index and no longer in the new
    one are looked at first (``indexfile.replace_entries``), which depends on the second
    the new index is written in: it is checked once written, and made again in the rare
    case that a second went by meanwhile.
    """
    unchanged = _unchanged_in(checkout.work_tree)
    new_sec = time.time_ns() // _SECOND
    for _ in range(3):
        data = indexfile.replace_entries(index_data, written, (old_ns, new_sec), unchanged)
        if data is None:
            return None
        write_file(target, data, store.shared)
        written_sec = os.stat(target).st_mtime_ns // _SECOND
        if written_sec <= new_sec:
            return data
        new_sec = written_sec
    return None


def _unchanged_in(base: str) -> Callable[[str, str, int, int], bool]:
    """Whether the work-tree file at a path is as an index entry has it, as far as git
    could ever tell from the entry: its size or modification second differ (git sees
    that itself), or its bytes are the blob the entry names, read in chunks. Bytes that
    differ may still be what git would stage (a file it converts on the way in): git
    is asked then."""

    def unchanged(path: str, sha: str, size: int, sec: int) -> bool:
        full = os.path.join(base, path)
        try:
            st = os.lstat(full)
        except OSError:
            return True  # gone, or the way to it is: git sees that
        if not stat.S_ISREG(st.st_mode):
            return True  # git compares the mode
        if st.st_size & 0xFFFFFFFF != size or (st.st_mtime_ns // _SECOND) & 0xFFFFFFFF != sec:
            return True  # git compares these
        return len(sha) == 40 and _blob_id_of(full) == sha

    return unchanged


def _blob_id_of(path: str) -> str | None:
    """The blob id of the regular file at ``path``, read in chunks (a link there is not
    followed, a FIFO never waited on); None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        digest = hashlib.sha1(b"blob %d\0" % st.st_size)
        read = 0
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
            read += len(chunk)
        return digest.hexdigest() if read == st.st_size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def plain_index(store: ObjectStore) -> bool:
    """Whether the settings leave the index one ``indexfile`` may edit (not split, not
    sparse, no ``core.ignoreStat``, under which git marks the entries it updates as
    assumed unchanged). An index split without a setting (``git update-index
    --split-index``) says so itself, in its ``link`` extension, which ``indexfile``
    leaves to git; the shared index files a split left behind say nothing about the
    index now."""
    config = store.config
    return not any(
        config.get(key, "").lower() in ("true", "yes", "on", "1")
        for key in ("index.sparse", "core.splitindex", "core.ignorestat")
    )


def _update_index(args: list[str], cwd: str, listing: bytes | None, env: dict[str, str]) -> None:
    proc = run_git(["update-index", *args], cwd, input=listing, env=env)
    if proc.returncode != 0:
        raise StoreError(f"git update-index failed: {proc.stderr.decode(errors='replace').strip()}")


def publish_index(checkout: Checkout) -> None:
    """Put the new index in place (the lock stays held), keeping the old one as a link."""
    index = str(checkout.index)
    folder = os.path.dirname(index)
    old = os.path.join(folder, INDEX_OLD)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(old)
    with contextlib.suppress(FileNotFoundError):  # no index yet: nothing to keep
        os.link(index, old)
    os.rename(os.path.join(folder, INDEX_NEW), index)


def finish(store: ObjectStore, record: Record, *, leftovers: bool = True) -> list[str]:
    """The ref moved: drop the backups, and the folders deleted files left empty.
    ``leftovers`` False: the write itself is finishing, so no temporary file or new index
    of a killed one can be left (a recovery looks for them)."""
    base = record.work_tree or ""
    new_tree = store.commit_tree(record.new) if record.new else None
    clean = fs.settle if leftovers else fs.drop_backup
    for path in record.paths:
        clean(base, path)
        entry = store.entry_at(new_tree, path)
        if entry is None or entry[0] == MODE_TREE:
            fs.prune_empty_parents(base, path)
    if record.index:
        folder = os.path.dirname(record.index)
        names = (INDEX_OLD, INDEX_NEW, INDEX_NEW + ".lock") if leftovers else (INDEX_OLD,)
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
    return []


def _index_trailer(index: Path) -> str | None:
    try:
        with open(index, "rb") as fh:
            fh.seek(-20, os.SEEK_END)
            return fh.read(20).hex()
    except (FileNotFoundError, OSError):
        return None


def rollback(store: ObjectStore, record: Record) -> list[str]:
    """The ref did not move: put back what the write replaced, where it is still what the
    write left (anything changed since stays as it is, and is named in the warnings)."""
    base = record.work_tree or ""
    warnings: list[str] = []
    new_tree = store.commit_tree(record.new) if record.new else None
    for path in record.paths:
        fs.remove_tmp(base, path)
        entry = store.entry_at(new_tree, path)
        new_sha = entry[1] if entry and entry[0] != MODE_TREE else None
        local = fs.read_local(base, path)
        if local == fs.NOT_REGULAR:
            local_sha: str | None = "-"
        else:
            local_sha = None if local is None else blob_sha(local)
        backup = fs.has_backup(base, path)
        if local_sha != new_sha:  # the write never got here, or someone changed it since
            if backup and fs.backup_is_current(base, path):
                fs.drop_backup(base, path)
            elif backup:
                name = fs.backup_name(path.rsplit("/", 1)[-1])
                warnings.append(
                    f"{path} was changed after an interrupted write; its earlier version is "
                    f"kept beside it as {name}"
                )
            continue
        if backup:
            fs.restore_backup(base, path)
        elif not record.existed.get(path, False):
            fs.remove_file(base, path)
    if record.index:
        index = Path(record.index)
        current = _index_trailer(index)
        old = index.with_name(INDEX_OLD)
        if record.index_new is not None and current == record.index_new:
            if old.exists():
                os.replace(old, index)
            elif record.index_old is None:
                index.unlink(missing_ok=True)
        else:
            if record.index_new is not None and current != record.index_old:
                warnings.append(
                    f"{index} was rewritten after an interrupted write and is left as it is; "
                    "check `git status`"
                )
            old.unlink(missing_ok=True)
        for name in (INDEX_NEW, INDEX_NEW + ".lock"):
            index.with_name(name).unlink(missing_ok=True)
    return warnings
