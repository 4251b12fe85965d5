"""The git store: reads at any revision, one commit per write, published by compare-and-swap.

Why not GitPython for writes: it has no compare-and-swap on refs, its ``index.commit``
loses updates under concurrency, and it spawns one process per object written. Here:

* objects are written as loose objects in-process (zlib + sha1, atomically renamed into
  place), never through the user's index or work tree;
* reads go through one long-lived ``git cat-file --batch`` process and an in-memory cache
  of (immutable) tree objects, so a store with 10,000 procedures is not re-parsed on every
  write;
* a ref moves only by ``git update-ref --stdin`` with the expected old value, so a commit
  and its release tag move together or not at all;
* proctor's writers to one ref queue on a lock file (flock), so compare-and-swap only
  arbitrates against other git writers; when the store branch is checked out the touched
  paths are checked for uncommitted work before publishing and brought up to date after,
  so ``git status`` stays clean and nothing of the user's is overwritten.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from proctor.core.errors import (
    ConcurrencyError,
    DirtyWorkTreeError,
    NotARepositoryError,
    NotFoundError,
    StoreError,
    UsageError,
)

ZERO_SHA = "0" * 40
LARGE_TREE = 64 * 1024
MODE_FILE = "100644"
MODE_EXEC = "100755"
MODE_TREE = "40000"

# A tree entry: (mode, sha, is_tree). Trees map a name to an entry.
Entry = tuple[str, str]
Tree = dict[str, Entry]


@dataclass(frozen=True)
class TagSpec:
    """An annotated tag to create (never move) together with the commit."""

    name: str  # e.g. "procedures/greet/v1.0.0" (without refs/tags/)
    message: str
    target: str | None = None  # a commit sha; None means "the commit this write makes"


@dataclass
class Change:
    """What one write does: file edits (bytes to write, None to delete) and tags.

    ``message`` is the commit subject and body; trailers are added by the store.
    A change with no edits makes no commit (a release only creates its tag).
    """

    edits: dict[str, bytes | None] = field(default_factory=dict)
    message: str = ""
    tags: list[TagSpec] = field(default_factory=list)
    executable: set[str] = field(default_factory=set)
    # Work-tree files (repo-relative path -> bytes read) whose content this change took
    # as input: if such a file still holds exactly that, committing the change loses
    # nothing of the user's even where the committed form differs (e.g. reformatted JSON).
    consumed: dict[str, bytes] = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        return sorted(self.edits)


@dataclass(frozen=True)
class WriteResult:
    commit: str | None  # the new commit, or None when the change had no edits
    parent: str | None
    tags: list[str]
    attempts: int


_HELD_LOCKS = threading.local()


class _CasLost(Exception):
    """The ref moved between read and publish; the write may be rebuilt on the new tip."""


def _run_git(
    args: list[str], cwd: str, *, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, env=env, check=False
    )


def discover(path: str | os.PathLike[str]) -> tuple[str | None, str, str]:
    """Find the repository around ``path``: (work tree or None if bare, git dir, common dir)."""
    p = Path(path)
    if not p.exists():
        raise NotARepositoryError(f"{path}: no such directory")
    if p.is_file():
        p = p.parent
    proc = _run_git(
        ["rev-parse", "--is-bare-repository", "--absolute-git-dir", "--git-common-dir"], str(p)
    )
    if proc.returncode != 0:
        raise NotARepositoryError(f"{path}: not a git repository")
    bare, git_dir, common = proc.stdout.decode().splitlines()[:3]
    common_path = Path(common)
    if not common_path.is_absolute():
        common_path = (p / common_path).resolve()
    work_tree: str | None = None
    if bare != "true":
        top = _run_git(["rev-parse", "--show-toplevel"], str(p))
        if top.returncode == 0:
            work_tree = top.stdout.decode().strip()
    return work_tree, git_dir, str(common_path)


def format_ident(name: str, email: str, when: float | None = None) -> str:
    """A git identity line value: ``Name <email> 1700000000 +0100``."""
    ts = int(when if when is not None else time.time())
    offset = time.localtime(ts).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return f"{name} <{email}> {ts} {sign}{offset // 60:02d}{offset % 60:02d}"


def tree_sort_key(item: tuple[str, Entry]) -> bytes:
    """git orders tree entries by name, with a sub-tree compared as ``name/``."""
    name, (mode, _sha) = item
    key = name.encode()
    return key + b"/" if mode == MODE_TREE else key


def serialize_tree_raw(tree: Tree) -> tuple[bytes, dict[str, int]]:
    """The tree object's bytes, and where each entry's 20-byte id sits in them."""
    parts = []
    offsets: dict[str, int] = {}
    pos = 0
    for name, (mode, sha) in sorted(tree.items(), key=tree_sort_key):
        head = mode.encode() + b" " + name.encode() + b"\0"
        pos += len(head)
        offsets[name] = pos
        pos += 20
        parts.append(head + bytes.fromhex(sha))
    return b"".join(parts), offsets


def serialize_tree(tree: Tree) -> bytes:
    return serialize_tree_raw(tree)[0]


def parse_tree_raw(data: bytes) -> tuple[Tree, dict[str, int]]:
    tree: Tree = {}
    offsets: dict[str, int] = {}
    i = 0
    n = len(data)
    find = data.index
    while i < n:
        space = find(b" ", i)
        nul = find(b"\0", space)
        mode = data[i:space].decode()
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        tree[name] = (MODE_TREE if mode == "40000" else mode, data[nul + 1 : nul + 21].hex())
        offsets[name] = nul + 1
        i = nul + 21
    return tree, offsets


def parse_tree(data: bytes) -> Tree:
    return parse_tree_raw(data)[0]


@dataclass
class _TreeData:
    """A cached tree: its entries, raw bytes and id offsets.

    Keeping the bytes lets a write that only replaces ids in a large tree (an update in
    a store of 10,000 procedures) patch 20 bytes instead of re-serialising every entry.
    """

    entries: Tree
    raw: bytes
    offsets: dict[str, int]


class CatFile:
    """One long-lived ``git cat-file --batch`` process: every read without a new spawn."""

    def __init__(self, cwd: str) -> None:
        self._proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Lock()

    def read(self, spec: str) -> tuple[str, str, bytes] | None:
        """(sha, type, content) of an object named by ``spec`` (sha or ``rev:path``)."""
        return self.read_many([spec])[0]

    def read_many(self, specs: list[str]) -> list[tuple[str, str, bytes] | None]:
        """Pipeline many requests: one write, then read the answers in order."""
        if not specs:
            return []
        assert self._proc.stdin is not None and self._proc.stdout is not None
        out: list[tuple[str, str, bytes] | None] = []
        with self._lock:
            payload = "".join(s + "\n" for s in specs).encode()
            writer: threading.Thread | None = None
            if len(payload) > 32768:
                # Write from a thread while reading answers here: git blocks on a full
                # stdout pipe while we would block on a full stdin pipe.
                writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
                writer.start()
            else:
                self._write(payload)
            stdout = self._proc.stdout
            for _ in specs:
                header = stdout.readline()
                if not header:
                    raise StoreError("git cat-file stopped unexpectedly")
                parts = header.split()
                if len(parts) == 2 and parts[1] in (b"missing", b"ambiguous"):
                    out.append(None)
                    continue
                if len(parts) != 3:
                    out.append(None)
                    continue
                size = int(parts[2])
                body = stdout.read(size)
                stdout.read(1)
                out.append((parts[0].decode(), parts[1].decode(), body))
            if writer is not None:
                writer.join()
        return out

    def _write(self, payload: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(payload)
        self._proc.stdin.flush()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class GitStore:
    """A repository opened as a store. Close it (or use ``with``) to end its git process."""

    TREE_CACHE_SIZE = 4096
    # Loose objects written in-process never trigger git's own ``gc --auto`` (only porcelain
    # commands do), so a store written only by proctor asks for it every this many writes.
    GC_EVERY = 500

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.work_tree, self.git_dir, self.common_dir = discover(path)
        self.cwd = self.work_tree or self.git_dir
        self.objects_dir = Path(self.common_dir) / "objects"
        fmt = _run_git(["config", "--get", "extensions.objectformat"], self.cwd)
        if fmt.returncode == 0 and fmt.stdout.strip() not in (b"", b"sha1"):
            raise UsageError(
                f"{self.cwd}: object format {fmt.stdout.decode().strip()} is not supported"
            )
        self._cat: CatFile | None = None
        self._trees: OrderedDict[str, _TreeData] = OrderedDict()
        self._commit_trees: dict[str, str] = {}
        self._checked_out: dict[str, str | None] = {}
        self._writes = 0

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        if self._cat is not None:
            self._cat.close()
            self._cat = None

    def __enter__(self) -> GitStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cat(self) -> CatFile:
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
        proc = _run_git(list(args), self.cwd, input=input, env=env)
        if check and proc.returncode != 0:
            raise StoreError(
                f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}"
            )
        return proc

    # -- refs ----------------------------------------------------------------------------

    def head_ref(self) -> str | None:
        """The branch HEAD points to (``refs/heads/x``), or None when HEAD is detached."""
        proc = self.git("symbolic-ref", "-q", "HEAD", check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip()

    def read_ref(self, ref: str) -> str | None:
        """The sha a ref points at now, read from the ref files (no process spawned).

        Loose refs are written by rename, so a read sees a whole value; packed refs are
        consulted when there is no loose file.
        """
        loose = Path(self.common_dir) / ref
        try:
            value = loose.read_text().strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            value = ""
        if value.startswith("ref: "):
            return self.read_ref(value[5:])
        if len(value) == 40:
            return value
        packed = Path(self.common_dir) / "packed-refs"
        try:
            with packed.open() as fh:
                for line in fh:
                    if line.endswith(" " + ref + "\n"):
                        return line[:40]
        except FileNotFoundError:
            pass
        return None

    def resolve(self, rev: str) -> str:
        """Resolve any revision expression to a commit sha, or raise NotFoundError."""
        if "\0" in rev or rev.startswith("-"):
            raise UsageError(f"invalid revision {rev!r}")
        proc = self.git(
            "rev-parse", "--verify", "-q", "--end-of-options", rev + "^{commit}", check=False
        )
        if proc.returncode != 0:
            raise NotFoundError(f"unknown revision {rev!r}")
        return proc.stdout.decode().strip()

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

    # -- object reads --------------------------------------------------------------------

    def read_object(self, sha: str) -> tuple[str, bytes]:
        obj = self.cat.read(sha)
        if obj is None:
            raise NotFoundError(f"missing object {sha}")
        return obj[1], obj[2]

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

    def _tree_data(self, sha: str) -> _TreeData:
        data = self._trees.get(sha)
        if data is not None:
            self._trees.move_to_end(sha)
            return data
        kind, raw = self.read_object(sha)
        if kind != "tree":
            raise StoreError(f"{sha} is a {kind}, not a tree")
        entries, offsets = parse_tree_raw(raw)
        return self._remember_tree(sha, _TreeData(entries, raw, offsets))

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
            self._remember_tree(sha, _TreeData(entries, obj[2], offsets))
            found[sha] = entries
        return [found[sha] for sha in shas]

    def _remember_tree(self, sha: str, data: _TreeData) -> _TreeData:
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
        entry = self.entry_at(root_tree, path)
        if entry is None or entry[0] == MODE_TREE:
            return None
        return self.read_object(entry[1])[1]

    def read_blobs(self, shas: list[str]) -> list[bytes | None]:
        """Many blobs in one pipelined round trip."""
        return [None if r is None else r[2] for r in self.cat.read_many(shas)]

    # -- object writes -------------------------------------------------------------------

    def write_object(self, kind: str, data: bytes) -> str:
        """Write a loose object in-process; atomic by rename, idempotent by content."""
        header = f"{kind} {len(data)}\0".encode()
        sha = hashlib.sha1(header + data).hexdigest()
        directory = self.objects_dir / sha[:2]
        final = directory / sha[2:]
        if final.exists():
            return sha
        directory.mkdir(exist_ok=True)
        tmp = directory / f"tmp_obj_{os.getpid()}_{threading.get_ident()}_{sha[2:8]}"
        # Large trees are mostly incompressible ids; storing them uncompressed costs ~1.5x
        # the disk until the next gc packs them, and saves tens of ms per write.
        level = 0 if kind == "tree" and len(data) > LARGE_TREE else 1
        with open(tmp, "wb") as fh:
            fh.write(zlib.compress(header + data, level))
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        return sha

    def write_tree(self, tree: Tree) -> str:
        raw, offsets = serialize_tree_raw(tree)
        return self._store_tree(dict(tree), raw, offsets)

    def _store_tree(self, tree: Tree, raw: bytes, offsets: dict[str, int]) -> str:
        sha = self.write_object("tree", raw)
        self._remember_tree(sha, _TreeData(tree, raw, offsets))
        return sha

    def apply_edits(
        self,
        root_tree: str | None,
        edits: Mapping[str, bytes | None],
        executable: Iterable[str] = (),
    ) -> str:
        """A new root tree: ``root_tree`` with files written or deleted.

        Only the trees on the paths of the edits are rewritten; empty directories vanish
        as git expects.
        """
        exec_paths = set(executable)
        nested: dict[str, object] = {}
        for path, content in edits.items():
            parts = path.split("/")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})  # type: ignore[assignment]
                if not isinstance(node, dict):
                    raise UsageError(f"{path}: a file stands where a directory is needed")
            if content is None:
                node[parts[-1]] = None
            else:
                mode = MODE_EXEC if path in exec_paths else MODE_FILE
                node[parts[-1]] = (mode, self.write_object("blob", content))
        sha = self._rewrite(root_tree, nested)
        return sha if sha is not None else self.write_tree({})

    def _rewrite(self, tree_sha: str | None, nested: dict[str, object]) -> str | None:
        data = self._tree_data(tree_sha) if tree_sha else None
        tree = dict(data.entries) if data else {}
        patches: list[tuple[str, str]] = []
        structural = data is None
        for name, change in nested.items():
            old = tree.get(name)
            new: Entry | None
            if change is None:
                new = None
            elif isinstance(change, tuple):
                new = change
            else:
                sub = old[1] if old and old[0] == MODE_TREE else None
                new_sub = self._rewrite(sub, change)  # type: ignore[arg-type]
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
        lines = [f"tree {tree}"] + [f"parent {p}" for p in parents]
        lines += [f"author {author}", f"committer {committer}", "", message]
        body = "\n".join(lines)
        if not body.endswith("\n"):
            body += "\n"
        return self.write_object("commit", body.encode())

    def write_tag(self, target: str, name: str, tagger: str, message: str) -> str:
        body = f"object {target}\ntype commit\ntag {name}\ntagger {tagger}\n\n{message}"
        if not body.endswith("\n"):
            body += "\n"
        return self.write_object("tag", body.encode())

    # -- publishing ----------------------------------------------------------------------

    def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
        """Move refs in one transaction: ``(ref, new, expected_old)``.

        ``expected_old`` None means "must not exist" (create-only, used for tags and the
        first commit of a branch). Raises _CasLost when any ref is not where expected.
        """
        lines = ["start"]
        for ref, new, old in updates:
            lines.append(f"update {ref} {new} {old or ZERO_SHA}")
        lines += ["prepare", "commit", ""]
        proc = self.git(
            "update-ref", "-m", reason, "--stdin", input="\n".join(lines).encode(), check=False
        )
        if proc.returncode == 0:
            return
        for ref, _new, old in updates:
            if self.read_ref(ref) != old:
                raise _CasLost(ref)
        raise StoreError(f"git update-ref failed: {proc.stderr.decode(errors='replace').strip()}")

    # -- work tree -----------------------------------------------------------------------

    def checked_out_in(self, ref: str) -> str | None:
        """The work tree that has ``ref`` checked out, if any (git allows at most one)."""
        if ref in self._checked_out:
            return self._checked_out[ref]
        found: str | None = None
        proc = self.git("worktree", "list", "--porcelain", check=False)
        current: str | None = None
        for line in proc.stdout.decode().splitlines():
            if line.startswith("worktree "):
                current = line[9:]
            elif line == "bare":
                current = None
            elif line.startswith("branch ") and line[7:] == ref and current:
                found = current
        self._checked_out[ref] = found
        return found

    def _lock_path(self, ref: str, kind: str) -> Path:
        digest = hashlib.sha1(ref.encode()).hexdigest()[:16]
        return Path(self.common_dir) / f"proctor-{kind}-{digest}"

    @contextmanager
    def _writer_lock(self, ref: str) -> Iterator[None]:
        """Serialise proctor's writers to one ref across processes (flock).

        Compare-and-swap alone keeps the ref correct, but under many writers a loser keeps
        losing; queueing here leaves CAS to arbitrate only against writers that are not
        proctor (a ``git commit``, a fetch). The kernel drops the lock when its holder
        dies, even by SIGKILL, so a crash never leaves the store locked.
        """
        path = self._lock_path(ref, "write")
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

    def staged_ids(self, work_tree: str, paths: list[str]) -> dict[str, str]:
        """The blob ids the index of ``work_tree`` holds for ``paths`` (absent: not staged).

        Read from the index file directly when it is a plain version 2 or 3 index of this
        work tree (one process fewer per write); ``git ls-files`` otherwise.
        """
        staged = None
        if (
            work_tree == self.work_tree
            and "GIT_INDEX_FILE" not in os.environ
            and not any(Path(self.common_dir).glob("sharedindex.*"))
        ):
            try:
                data = (Path(self.git_dir) / "index").read_bytes()
            except FileNotFoundError:
                data = b""
            staged = index_lookup(data, paths)
        if staged is not None:
            return staged
        staged = {}
        proc = _run_git(
            ["ls-files", "-s", "-z", "--", *[":(literal)" + p for p in paths]], work_tree
        )
        if proc.returncode != 0:
            raise StoreError(f"git ls-files failed: {proc.stderr.decode(errors='replace').strip()}")
        for record in proc.stdout.split(b"\0"):
            if record:
                meta, _, raw_path = record.partition(b"\t")
                staged[raw_path.decode("utf-8", "surrogateescape")] = meta.split()[1].decode()
        return staged

    def _local_state(
        self, work_tree: str, paths: list[str]
    ) -> dict[str, tuple[str | None, bytes | None]]:
        """For each path: (id staged in the index or None, bytes in the work tree or None)."""
        staged = self.staged_ids(work_tree, paths)
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

    def dirty_paths(self, work_tree: str, tip: str | None, change: Change) -> list[str]:
        """Touched paths whose local state the write would lose.

        A path is clean when its index entry and work-tree file both match the tip. A file
        edited in place and then handed to proctor (``--code procedures/x/main.py``, see
        ``Change.consumed``) holds exactly what is being committed or what was read to
        build it: nothing of the user's is lost, so it is not a conflict either, as long
        as the index holds nothing else.
        """
        if not change.edits:
            return []
        tip_tree = self.commit_tree(tip) if tip else None
        lost = []
        for path, (index_sha, local) in self._local_state(work_tree, change.paths).items():
            entry = self.entry_at(tip_tree, path)
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

    # A write killed between moving the ref and syncing the work tree would leave the
    # checkout one version behind (and ``git commit -a`` would revert it). The journal,
    # written under the writer lock before the ref moves and removed after the sync, lets
    # the next writer finish the sync.

    def _write_journal(self, ref: str, old: str | None, new: str, paths: list[str]) -> Path:
        path = self._lock_path(ref, "sync")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ref": ref, "old": old, "new": new, "paths": paths}))
        os.replace(tmp, path)
        return path

    def recover(self, ref: str) -> list[str]:
        """Finish an interrupted work-tree sync; returns the paths brought up to date.

        Only paths still exactly as the interrupted writer left them (old or new version,
        in both index and file) are touched; anything the user changed since stays.
        """
        journal = self._lock_path(ref, "sync")
        try:
            data = json.loads(journal.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            journal.unlink(missing_ok=True)
            return []
        work_tree = self.checked_out_in(ref)
        fixed: list[str] = []
        if work_tree is not None and self.read_ref(ref) == data.get("new"):
            old_tree = self.commit_tree(data["old"]) if data.get("old") else None
            new_tree = self.commit_tree(data["new"])
            for path, (index_sha, local) in self._local_state(work_tree, data["paths"]).items():
                versions = set()
                for tree in (old_tree, new_tree):
                    entry = self.entry_at(tree, path)
                    versions.add(entry[1] if entry and entry[0] != MODE_TREE else None)
                local_sha = None if local is None else blob_sha(local)
                if index_sha in versions and local_sha in versions:
                    fixed.append(path)
            if fixed:
                self.sync_worktree(work_tree, new_tree, fixed)
        journal.unlink(missing_ok=True)
        return fixed

    def sync_worktree(self, work_tree: str, root_tree: str, paths: list[str]) -> None:
        """Bring ``paths`` in the work tree and index up to date with ``root_tree``."""
        base = Path(work_tree)
        for path in paths:
            target = base / path
            entry = self.entry_at(root_tree, path)
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
            tmp.write_bytes(self.read_object(entry[1])[1])
            os.chmod(tmp, 0o755 if entry[0] == MODE_EXEC else 0o644)
            os.replace(tmp, target)
        listing = "".join(p + "\0" for p in paths).encode()
        proc = _run_git(
            ["update-index", "--add", "--remove", "-z", "--stdin"], work_tree, input=listing
        )
        if proc.returncode != 0:
            raise StoreError(
                f"committed, but the index was not updated: {proc.stderr.decode(errors='replace').strip()}"
            )

    # -- the write loop ------------------------------------------------------------------

    def write(
        self,
        ref: str,
        build: Callable[[str | None], Change],
        *,
        author: str,
        committer: str | None = None,
        trailers: Mapping[str, str] | None = None,
        max_attempts: int = 8,
        reason: str = "proctor",
    ) -> WriteResult:
        """Build a change on the current tip and publish it by compare-and-swap.

        ``build(tip)`` is called with the tip commit (None for an unborn branch) and must
        return the Change; it is called again, on the new tip, after a lost race in which
        none of the touched paths changed, so the caller's submission criteria are re-run
        there. If a touched path did change, ConcurrencyError carries the expected and
        actual tips. Retries use jittered exponential backoff and are bounded.
        """
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        attempt = _Attempt(self, ref, build, author, committer, trailers, reason)
        retrying = Retrying(
            stop=stop_after_attempt(max_attempts),
            wait=wait_random_exponential(multiplier=0.005, max=0.25),
            retry=retry_if_exception_type(_CasLost),
            reraise=False,
        )
        try:
            with self._writer_lock(ref):
                self.recover(ref)
                attempt.base = self.read_ref(ref)
                result = retrying(attempt)
        except RetryError:
            raise ConcurrencyError(
                f"{ref} kept moving; gave up after {max_attempts} attempts",
                expected=attempt.base,
                actual=self.read_ref(ref),
            ) from None
        self._writes += 1
        if self._writes % self.GC_EVERY == 0:
            # Returns at once below git's thresholds; packing is safe beside writers.
            self.git("gc", "--auto", "--quiet", check=False)
        return result

    def _ensure_unchanged(self, base: str | None, tip: str | None, paths: list[str]) -> None:
        base_tree = self.commit_tree(base) if base else None
        tip_tree = self.commit_tree(tip) if tip else None
        for path in paths:
            if self.entry_at(base_tree, path) != self.entry_at(tip_tree, path):
                raise ConcurrencyError(
                    f"{path} was changed by someone else (expected version {short(base)}, "
                    f"found {short(tip)})",
                    expected=base,
                    actual=tip,
                )

    def _publish(
        self,
        ref: str,
        tip: str | None,
        change: Change,
        author: str,
        committer: str | None,
        trailers: Mapping[str, str] | None,
        reason: str,
        work_tree: str | None,
        attempts: int,
    ) -> WriteResult:
        if work_tree is not None and change.edits:
            # A git commit in the work tree since the build moved the ref and the files
            # together: lose the race here rather than call its files uncommitted.
            if self.read_ref(ref) != tip:
                raise _CasLost(ref)
            dirty = self.dirty_paths(work_tree, tip, change)
            if dirty:
                raise DirtyWorkTreeError(
                    "uncommitted changes in "
                    + ", ".join(dirty)
                    + "; commit or stash them first (nothing was written)"
                )
        updates: list[tuple[str, str, str | None]] = []
        commit: str | None = None
        message = add_trailers(change.message, trailers or {})
        if change.edits:
            base_tree = self.commit_tree(tip) if tip else None
            new_tree = self.apply_edits(base_tree, change.edits, change.executable)
            commit = self.write_commit(
                new_tree, [tip] if tip else [], message, author, committer or author
            )
            updates.append((ref, commit, tip))
        elif tip is not None:
            updates.append((ref, tip, tip))  # verify the tip the change was built on
        tag_names = []
        for tag in change.tags:
            target = tag.target or commit
            if target is None:
                raise UsageError(f"tag {tag.name} has nothing to point at")
            tag_ref = "refs/tags/" + tag.name
            if self.read_ref(tag_ref) is not None:
                raise UsageError(f"tag {tag.name} already exists; releases are never moved")
            tag_obj = self.write_tag(
                target, tag.name, committer or author, add_trailers(tag.message, trailers or {})
            )
            updates.append((tag_ref, tag_obj, None))
            tag_names.append(tag.name)
        if not updates:
            raise UsageError("nothing to write")
        if work_tree is None or commit is None:
            self.update_refs(updates, reason)
        else:
            journal = self._write_journal(ref, tip, commit, change.paths)
            try:
                self.update_refs(updates, reason)
            except BaseException:
                journal.unlink(missing_ok=True)
                raise
            self.sync_worktree(work_tree, self.commit_tree(commit), change.paths)
            journal.unlink(missing_ok=True)
        return WriteResult(commit=commit, parent=tip, tags=tag_names, attempts=attempts)


@dataclass
class _Attempt:
    """One try of a write; remembers what the previous try built on and touched."""

    store: GitStore
    ref: str
    build: Callable[[str | None], Change]
    author: str
    committer: str | None
    trailers: Mapping[str, str] | None
    reason: str
    base: str | None = None
    paths: list[str] | None = None
    count: int = 0

    def __call__(self) -> WriteResult:
        self.count += 1
        store = self.store
        tip = store.read_ref(self.ref)
        if self.paths is not None and tip != self.base:
            store._ensure_unchanged(self.base, tip, self.paths)
        change = self.build(tip)
        self.paths, self.base = change.paths, tip
        return store._publish(
            self.ref,
            tip,
            change,
            self.author,
            self.committer,
            self.trailers,
            self.reason,
            store.checked_out_in(self.ref),
            self.count,
        )


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


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def add_trailers(message: str, trailers: Mapping[str, str]) -> str:
    """Append ``Key: value`` trailers after a blank line, as ``git interpret-trailers`` reads them."""
    message = message.rstrip("\n")
    if not trailers:
        return message + "\n"
    block = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    return f"{message}\n\n{block}\n"


def short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


class Snapshot:
    """A read-only view of the store at one commit (None: the branch has no commit yet)."""

    def __init__(self, store: GitStore, commit: str | None) -> None:
        self.store = store
        self.commit = commit
        self.tree = store.commit_tree(commit) if commit else None

    def read(self, path: str) -> bytes | None:
        return self.store.read_blob(self.tree, path)

    def read_text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8")

    def entry(self, path: str) -> Entry | None:
        return self.store.entry_at(self.tree, path)

    def listdir(self, path: str) -> Tree:
        return self.store.tree_at(self.tree, path)

    def exists(self, path: str) -> bool:
        return self.entry(path) is not None
