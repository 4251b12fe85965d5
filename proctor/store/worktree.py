"""The checked-out store branch: refuse to overwrite local work, then bring it up to date.

When the store branch is checked out, a commit made without the index leaves the index
and files one version behind, and a later ``git commit -a`` would revert it. So before a
write the touched paths are checked for uncommitted work (read from the index file
directly where that is safe: one process fewer per write), and after it they are synced.
A write killed between moving the ref and the sync leaves a journal the next writer
finishes from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from proctor.core.errors import StoreError
from proctor.store.change import Change
from proctor.store.git import run_git
from proctor.store.locks import ref_file
from proctor.store.objects import MODE_EXEC, MODE_TREE, blob_sha
from proctor.store.odb import ObjectStore
from proctor.store.refs import read_ref


def checked_out_in(cwd: str, ref: str) -> str | None:
    """The work tree that has ``ref`` checked out, if any (git allows at most one)."""
    found: str | None = None
    proc = run_git(["worktree", "list", "--porcelain"], cwd)
    current: str | None = None
    for line in proc.stdout.decode().splitlines():
        if line.startswith("worktree "):
            current = line[9:]
        elif line == "bare":
            current = None
        elif line.startswith("branch ") and line[7:] == ref and current:
            found = current
    return found


def index_lookup(data: bytes, paths: list[str]) -> dict[str, str] | None:
    """Find the entries of ``paths`` in the bytes of a git index, without parsing it all.

    Entries of a version 2/3 index are padded to multiples of 8 bytes after a 12-byte
    header, so an entry for path P starts at an offset ≡ 4 (mod 8), ends its fixed part
    with a flags word holding len(P), and is followed by P and a NUL. Every occurrence of
    P-then-NUL is checked against all three; a path at a merge stage other than 0 is
    reported with the id of that stage (the write then sees it as not clean). Returns None
    for anything else (version 4's compressed paths, no index signature) so the caller can
    ask git instead.
    """
    if not data:
        return {}
    if len(data) < 12 or data[:4] != b"DIRC" or data[4:8] not in (b"\0\0\0\2", b"\0\0\0\3"):
        return None
    found: dict[str, str] = {}
    for path in paths:
        raw = path.encode("utf-8", "surrogateescape")
        needle = raw + b"\0"
        want = min(len(raw), 0xFFF)
        pos = data.find(needle, 12)
        while pos != -1:
            for fixed in (62, 64):  # 64: version 3 entries with extended flags
                start = pos - fixed
                if start < 12 or (start - 12) % 8:
                    continue
                flags = int.from_bytes(data[start + 60 : start + 62], "big")
                if flags & 0xFFF != want or bool(flags & 0x4000) != (fixed == 64):
                    continue
                found[path] = data[start + 40 : start + 60].hex()
            pos = data.find(needle, pos + 1)
    return found


def staged_ids(store: ObjectStore, work_tree: str, paths: list[str]) -> dict[str, str]:
    """The blob ids the index of ``work_tree`` holds for ``paths`` (absent: not staged).

    Read from the index file directly when it is a plain version 2 or 3 index of this
    work tree (one process fewer per write); ``git ls-files`` otherwise.
    """
    staged = None
    if (
        work_tree == store.work_tree
        and "GIT_INDEX_FILE" not in os.environ
        and not any(Path(store.common_dir).glob("sharedindex.*"))
    ):
        try:
            data = (Path(store.git_dir) / "index").read_bytes()
        except FileNotFoundError:
            data = b""
        staged = index_lookup(data, paths)
    if staged is not None:
        return staged
    staged = {}
    proc = run_git(["ls-files", "-s", "-z", "--", *[":(literal)" + p for p in paths]], work_tree)
    if proc.returncode != 0:
        raise StoreError(f"git ls-files failed: {proc.stderr.decode(errors='replace').strip()}")
    for record in proc.stdout.split(b"\0"):
        if record:
            meta, _, raw_path = record.partition(b"\t")
            staged[raw_path.decode("utf-8", "surrogateescape")] = meta.split()[1].decode()
    return staged


def local_state(
    store: ObjectStore, work_tree: str, paths: list[str]
) -> dict[str, tuple[str | None, bytes | None]]:
    """For each path: (id staged in the index or None, bytes in the work tree or None)."""
    staged = staged_ids(store, work_tree, paths)
    state: dict[str, tuple[str | None, bytes | None]] = {}
    base = Path(work_tree)
    for path in paths:
        try:
            local: bytes | None = (base / path).read_bytes()
        except FileNotFoundError:
            local = None
        except OSError:  # a directory or something unreadable stands there
            local = b"\0<not a regular file>"
        state[path] = (staged.get(path), local)
    return state


def dirty_paths(store: ObjectStore, work_tree: str, tip: str | None, change: Change) -> list[str]:
    """Touched paths whose local state the write would lose.

    A path is clean when its index entry and work-tree file both match the tip. A file
    edited in place and then handed to proctor (``--code procedures/x/main.py``, see
    ``Change.consumed``) holds exactly what is being committed or what was read to
    build it: nothing of the user's is lost, so it is not a conflict either, as long
    as the index holds nothing else.
    """
    if not change.edits:
        return []
    tip_tree = store.commit_tree(tip) if tip else None
    lost = []
    for path, (index_sha, local) in local_state(store, work_tree, change.paths).items():
        entry = store.entry_at(tip_tree, path)
        tip_sha = entry[1] if entry and entry[0] != MODE_TREE else None
        local_sha = None if local is None else blob_sha(local)
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


def sync_worktree(store: ObjectStore, work_tree: str, root_tree: str, paths: list[str]) -> None:
    """Bring ``paths`` in the work tree and index up to date with ``root_tree``."""
    base = Path(work_tree)
    for path in paths:
        target = base / path
        entry = store.entry_at(root_tree, path)
        if entry is None or entry[0] == MODE_TREE:
            try:
                target.unlink()
            except FileNotFoundError:
                pass
            parent = target.parent
            while parent != base:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.proctor-tmp")
        tmp.write_bytes(store.read_object(entry[1])[1])
        os.chmod(tmp, 0o755 if entry[0] == MODE_EXEC else 0o644)
        os.replace(tmp, target)
    listing = "".join(p + "\0" for p in paths).encode()
    proc = run_git(["update-index", "--add", "--remove", "-z", "--stdin"], work_tree, input=listing)
    if proc.returncode != 0:
        raise StoreError(
            f"committed, but the index was not updated: {proc.stderr.decode(errors='replace').strip()}"
        )


# The journal is written under the writer lock before the ref moves and removed after the
# sync, so a write killed in between is finished by the next writer (``recover``).


def write_journal(common_dir: str, ref: str, old: str | None, new: str, paths: list[str]) -> Path:
    """Record a sync about to be owed: ``ref`` moves from ``old`` to ``new`` over ``paths``."""
    path = ref_file(common_dir, ref, "sync")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"ref": ref, "old": old, "new": new, "paths": paths}))
    os.replace(tmp, path)
    return path


def recover(store: ObjectStore, ref: str, checked_out: Callable[[str], str | None]) -> list[str]:
    """Finish an interrupted work-tree sync; returns the paths brought up to date.

    Only paths still exactly as the interrupted writer left them (old or new version,
    in both index and file) are touched; anything the user changed since stays.
    ``checked_out`` finds the work tree of ``ref``; it is asked only when a journal exists.
    """
    journal = ref_file(store.common_dir, ref, "sync")
    try:
        data = json.loads(journal.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        journal.unlink(missing_ok=True)
        return []
    work_tree = checked_out(ref)
    fixed: list[str] = []
    if work_tree is not None and read_ref(store.common_dir, ref) == data.get("new"):
        old_tree = store.commit_tree(data["old"]) if data.get("old") else None
        new_tree = store.commit_tree(data["new"])
        for path, (index_sha, local) in local_state(store, work_tree, data["paths"]).items():
            versions = set()
            for tree in (old_tree, new_tree):
                entry = store.entry_at(tree, path)
                versions.add(entry[1] if entry and entry[0] != MODE_TREE else None)
            local_sha = None if local is None else blob_sha(local)
            if index_sha in versions and local_sha in versions:
                fixed.append(path)
        if fixed:
            sync_worktree(store, work_tree, new_tree, fixed)
    journal.unlink(missing_ok=True)
    return fixed
