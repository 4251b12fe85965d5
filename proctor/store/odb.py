"""The object database as the store sees it: cached reads, loose writes, tree edits.

Trees and commits never change, so they are cached by id: a write in a store of 10,000
procedures rewrites only the trees on the paths it touches, and where only ids change it
patches 20 bytes of the cached tree instead of re-serialising every entry. ``GitStore``
extends this class with refs, locks and the work tree; the snapshot and the work-tree sync
need only what is here.
"""

from __future__ import annotations

import os
import subprocess
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from proctor.core.errors import NotFoundError, StoreError, UsageError
from proctor.store.catfile import CatFile
from proctor.store.errors import UnsafePathError
from proctor.store.fs import check_path
from proctor.store.git import discover, read_config, run_git
from proctor.store.identity import IDENTITY_KEYS
from proctor.store.objects import (
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    MODE_TREE,
    Entry,
    Tree,
    commit_bytes,
    parse_tree_raw,
    serialize_tree_raw,
    tag_bytes,
    write_loose_object,
)
from proctor.store.perms import remember, shared_permission

#: The config keys read at open (lower-case, as ``git config`` prints them).
CONFIG_KEYS = (
    "extensions.objectformat",
    "core.autocrlf",
    "core.attributesfile",
    "gc.auto",
    "index.sparse",
    "core.splitindex",
    "core.ignorestat",
    "core.sharedrepository",
    # What decides whether a branch may be moved in-process (``refs.LocalRefs``).
    "core.logallrefupdates",
    "core.hookspath",
    "core.fsync",
    "core.fsyncobjectfiles",
    "extensions.refstorage",
    *IDENTITY_KEYS,
)


@dataclass(frozen=True)
class _NewFile:
    """A file an edit writes: its blob, and its mode (None: keep the tree's)."""

    mode: str | None
    sha: str


@dataclass
class TreeData:
    """A cached tree: its entries, raw bytes and id offsets.

    Keeping the bytes lets a write that only replaces ids in a large tree (an update in
    a store of 10,000 procedures) patch 20 bytes instead of re-serialising every entry.
    """

    entries: Tree
    raw: bytes
    offsets: dict[str, int]


class ObjectStore:
    """A repository's objects, read through one ``cat-file`` process and written in-process."""

    TREE_CACHE_SIZE = 4096
    BLOB_CACHE_BYTES = 4 * 1024 * 1024
    BLOB_CACHE_ITEM = 256 * 1024

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.work_tree, self.git_dir, self.common_dir = discover(path)
        self.cwd = self.work_tree or self.git_dir
        self.objects_dir = Path(self.common_dir) / "objects"
        # One process at open for every setting the store needs (object format, identity,
        # line endings, gc), rather than one per question later.
        self.config = read_config(self.cwd, CONFIG_KEYS)
        fmt = self.config.get("extensions.objectformat", "sha1").strip().lower()
        if fmt not in ("", "sha1"):
            raise UsageError(f"{self.cwd}: object format {fmt} is not supported")
        self.shared = shared_permission(self.config.get("core.sharedrepository"))
        remember(self.common_dir, self.shared)
        self._cat: CatFile | None = None
        self._trees: OrderedDict[str, TreeData] = OrderedDict()
        self._commit_trees: dict[str, str] = {}
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._blob_bytes = 0

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """End the ``cat-file`` process; a later read starts a new one."""
        if self._cat is not None:
            self._cat.close()
            self._cat = None

    @property
    def cat(self) -> CatFile:
        """The reader, started on first use so that opening a store spawns nothing."""
        if self._cat is None:
            self._cat = CatFile(self.cwd)
        return self._cat

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git in the repository; with ``check``, a failure is a StoreError."""
        proc = run_git(list(args), self.cwd, input=input, env=env)
        if check and proc.returncode != 0:
            raise StoreError(
                f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}"
            )
        return proc

    # -- object reads --------------------------------------------------------------------

    def read_object(self, sha: str) -> tuple[str, bytes]:
        """(type, content) of an object, or NotFoundError."""
        blob = self._blobs.get(sha)
        if blob is not None:
            self._blobs.move_to_end(sha)
            return "blob", blob
        obj = self.cat.read(sha)
        if obj is None:
            raise NotFoundError(f"missing object {sha}")
        if obj[1] == "blob":
            self._remember_blob(sha, obj[2])
        return obj[1], obj[2]

    def _remember_blob(self, sha: str, data: bytes) -> None:
        """Keep small blobs (objects never change): the next write of a procedure reads
        what the last one wrote without a round trip to ``cat-file``."""
        if len(data) > self.BLOB_CACHE_ITEM or sha in self._blobs:
            return
        self._blobs[sha] = data
        self._blob_bytes += len(data)
        while self._blob_bytes > self.BLOB_CACHE_BYTES:
            _old, dropped = self._blobs.popitem(last=False)
            self._blob_bytes -= len(dropped)

    def tag_target(self, tag_sha: str) -> str:
        """Peel an annotated tag object to the commit it names."""
        obj = self.cat.read(tag_sha)
        if obj is None:
            raise NotFoundError(f"missing object {tag_sha}")
        _sha, kind, data = obj
        if kind == "commit":
            return tag_sha
        if kind != "tag":
            raise StoreError(f"{tag_sha} is a {kind}, not a tag")
        first = data.split(b"\n", 1)[0]
        return first.split()[1].decode()

    def commit_tree(self, commit: str) -> str:
        """The root tree of a commit (commits never change, so this is cached)."""
        tree = self._commit_trees.get(commit)
        if tree is None:
            kind, data = self.read_object(commit)
            if kind != "commit":
                raise StoreError(f"{commit} is a {kind}, not a commit")
            tree = data[5:45].decode()
            self._commit_trees[commit] = tree
        return tree

    def read_tree(self, sha: str) -> Tree:
        """A tree's entries; trees are immutable, so they are cached by sha."""
        return self._tree_data(sha).entries

    def _tree_data(self, sha: str) -> TreeData:
        data = self._trees.get(sha)
        if data is not None:
            self._trees.move_to_end(sha)
            return data
        kind, raw = self.read_object(sha)
        if kind != "tree":
            raise StoreError(f"{sha} is a {kind}, not a tree")
        entries, offsets = parse_tree_raw(raw)
        return self._remember_tree(sha, TreeData(entries, raw, offsets))

    def read_trees(self, shas: list[str]) -> list[Tree]:
        """Many trees, with one pipelined round trip for those not cached."""
        found: dict[str, Tree] = {}
        for sha in shas:
            cached = self._trees.get(sha)
            if cached is not None:
                found[sha] = cached.entries
        missing = [sha for sha in dict.fromkeys(shas) if sha not in found]
        for sha, obj in zip(missing, self.cat.read_many(missing)):
            if obj is None or obj[1] != "tree":
                raise StoreError(f"{sha} is not a tree")
            entries, offsets = parse_tree_raw(obj[2])
            self._remember_tree(sha, TreeData(entries, obj[2], offsets))
            found[sha] = entries
        return [found[sha] for sha in shas]

    def _remember_tree(self, sha: str, data: TreeData) -> TreeData:
        self._trees[sha] = data
        if len(self._trees) > self.TREE_CACHE_SIZE:
            self._trees.popitem(last=False)
        return data

    def entry_at(self, root_tree: str | None, path: str) -> Entry | None:
        """The (mode, sha) of ``path`` inside a root tree, or None."""
        if root_tree is None:
            return None
        tree = self.read_tree(root_tree)
        parts = path.split("/")
        for part in parts[:-1]:
            entry = tree.get(part)
            if entry is None or entry[0] != MODE_TREE:
                return None
            tree = self.read_tree(entry[1])
        return tree.get(parts[-1])

    def tree_at(self, root_tree: str | None, path: str) -> Tree:
        """The entries of directory ``path`` (empty if absent)."""
        if root_tree is None:
            return {}
        if path in ("", "."):
            return self.read_tree(root_tree)
        entry = self.entry_at(root_tree, path.rstrip("/"))
        if entry is None or entry[0] != MODE_TREE:
            return {}
        return self.read_tree(entry[1])

    def read_blob(self, root_tree: str | None, path: str) -> bytes | None:
        """The content of file ``path`` in a root tree, or None if it is absent or a directory."""
        entry = self.entry_at(root_tree, path)
        if entry is None or entry[0] == MODE_TREE:
            return None
        return self.read_object(entry[1])[1]

    def read_blobs(self, shas: list[str]) -> list[bytes | None]:
        """Many blobs in one pipelined round trip (those not cached)."""
        found = {sha: self._blobs[sha] for sha in shas if sha in self._blobs}
        missing = [sha for sha in dict.fromkeys(shas) if sha not in found]
        for sha, obj in zip(missing, self.cat.read_many(missing)):
            if obj is not None:
                found[sha] = obj[2]
                if obj[1] == "blob":
                    self._remember_blob(sha, obj[2])
        return [found.get(sha) for sha in shas]

    # -- object writes -------------------------------------------------------------------

    def write_object(self, kind: str, data: bytes) -> str:
        """Write a loose object in-process; atomic by rename, idempotent by content."""
        sha = write_loose_object(self.objects_dir, kind, data, self.shared)
        if kind == "blob":
            self._remember_blob(sha, data)
        return sha

    def write_tree(self, tree: Tree) -> str:
        """Write a tree object (and cache it, as the next write builds on it)."""
        raw, offsets = serialize_tree_raw(tree)
        return self._store_tree(dict(tree), raw, offsets)

    def _store_tree(self, tree: Tree, raw: bytes, offsets: dict[str, int]) -> str:
        sha = self.write_object("tree", raw)
        self._remember_tree(sha, TreeData(tree, raw, offsets))
        return sha

    def apply_edits(
        self,
        root_tree: str | None,
        edits: Mapping[str, bytes | None],
        executable: Iterable[str] = (),
        modes: Mapping[str, str] | None = None,
        blob_ids: Mapping[str, str] | None = None,
    ) -> str:
        """A new root tree: ``root_tree`` with files written or deleted.

        Only the trees on the paths of the edits are rewritten; empty directories vanish
        as git expects. A file's mode is ``modes[path]``, else executable if listed in
        ``executable``, else the mode the file has in ``root_tree`` (an update keeps a
        ``100755`` main.py executable), else ``100644``. ``blob_ids`` gives ids already
        written for some paths (content normalised by git). A path through a file or a
        symbolic link in the tree is refused (UnsafePathError).
        """
        exec_paths = set(executable)
        for path in edits:
            self._check_parents(root_tree, check_path(path))
        nested: dict[str, object] = {}
        for path, content in edits.items():
            parts = path.split("/")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})  # type: ignore[assignment]
                if not isinstance(node, dict):
                    raise UnsafePathError(f"{path}: a file stands where a directory is needed")
            if isinstance(node.get(parts[-1]), dict):
                raise UnsafePathError(f"{path}: a directory stands where the file goes")
            if content is None:
                node[parts[-1]] = None
                continue
            mode = (modes or {}).get(path) or (MODE_EXEC if path in exec_paths else None)
            if mode not in (None, MODE_FILE, MODE_EXEC):
                raise UsageError(f"{path}: unsupported mode {mode}")
            blob = (blob_ids or {}).get(path) or self.write_object("blob", content)
            node[parts[-1]] = _NewFile(mode, blob)
        root = self._rewrite(root_tree, nested, "")
        return root if root is not None else self.write_tree({})

    def _check_parents(self, root_tree: str | None, path: str) -> None:
        """Refuse, before any object is written, a path beneath a file or a symbolic
        link of the tree (git would have to replace it with a directory)."""
        parts = path.split("/")
        tree = self.read_tree(root_tree) if root_tree else {}
        for i, part in enumerate(parts[:-1]):
            entry = tree.get(part)
            if entry is None:
                return
            if entry[0] != MODE_TREE:
                kind = "a symbolic link" if entry[0] == MODE_LINK else "a file"
                where = "/".join(parts[: i + 1])
                raise UnsafePathError(
                    f"{where} is {kind} in the tree, so {path} cannot be written beneath it "
                    "(nothing was written)"
                )
            tree = self.read_tree(entry[1])

    def _rewrite(self, tree_sha: str | None, nested: dict[str, object], prefix: str) -> str | None:
        data = self._tree_data(tree_sha) if tree_sha else None
        tree = dict(data.entries) if data else {}
        patches: list[tuple[str, str]] = []
        structural = data is None
        for name, change in nested.items():
            old = tree.get(name)
            new: Entry | None
            if change is None:
                new = None
            elif isinstance(change, _NewFile):
                keep = old[0] if old and old[0] in (MODE_FILE, MODE_EXEC) else MODE_FILE
                new = (change.mode or keep, change.sha)
            else:
                if old is not None and old[0] != MODE_TREE:
                    kind = "a symbolic link" if old[0] == MODE_LINK else "a file"
                    raise UnsafePathError(
                        f"{prefix}{name} is {kind} in the tree, so nothing can be written "
                        "beneath it (nothing was written)"
                    )
                sub = old[1] if old else None
                new_sub = self._rewrite(sub, change, f"{prefix}{name}/")  # type: ignore[arg-type]
                new = None if new_sub is None else (MODE_TREE, new_sub)
            if new == old:
                continue
            if new is None:
                del tree[name]
                structural = True
            elif old is not None and old[0] == new[0]:
                tree[name] = new
                patches.append((name, new[1]))
            else:
                tree[name] = new
                structural = True
        if not tree:
            return None
        if data is not None and not structural:
            if not patches:
                return tree_sha
            raw = bytearray(data.raw)
            for name, sha in patches:
                off = data.offsets[name]
                raw[off : off + 20] = bytes.fromhex(sha)
            return self._store_tree(tree, bytes(raw), data.offsets)
        raw_new, offsets = serialize_tree_raw(tree)
        return self._store_tree(tree, raw_new, offsets)

    def write_commit(
        self, tree: str, parents: list[str], message: str, author: str, committer: str
    ) -> str:
        """Write a commit object; the ref is moved separately, by compare-and-swap."""
        sha = self.write_object("commit", commit_bytes(tree, parents, message, author, committer))
        self._commit_trees[sha] = tree  # no read back of what was just written
        return sha

    def write_tag(self, target: str, name: str, tagger: str, message: str) -> str:
        """Write an annotated tag object; its ref is created separately, create-only."""
        return self.write_object("tag", tag_bytes(target, name, tagger, message))
