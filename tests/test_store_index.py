"""The in-process index update (``indexfile``) against git: the index proctor writes for
an update is the one ``git update-index`` would write, stat data and cache-tree included,
and a plain ``git commit`` after it commits proctor's files, not a stale tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import IDENTITY, git

from proctor.store import Change, GitStore, format_ident

REF = "refs/heads/main"
AUTHOR = format_ident("Test Author", "author@example.com")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", **extra}


@pytest.fixture
def populated(repo: Path) -> Path:
    for name in ("alpha", "beta", "gamma"):
        for leaf in ("main.py", "metadata.json"):
            path = repo / "procedures" / name / leaf
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{name} {leaf}\n")
    (repo / "deep/a/b").mkdir(parents=True)
    (repo / "deep/a/b/c.txt").write_text("c\n")
    (repo / "z.txt").write_text("z\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    assert b"TREE" in (repo / ".git/index").read_bytes()  # a cache-tree to keep right
    return repo


def ls_debug(repo: Path, index: Path) -> str:
    return subprocess.run(
        ["git", "ls-files", "-s", "--debug"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env(GIT_INDEX_FILE=str(index)),
        check=True,
    ).stdout


def traced(repo: Path, tmp_path: Path, edits: dict[str, bytes | None]) -> str:
    trace = tmp_path / "trace.txt"
    trace.unlink(missing_ok=True)
    os.environ["GIT_TRACE"] = str(trace)
    try:
        with GitStore(repo) as store:
            store.write(REF, lambda _t: Change(edits=edits, message="m"), author=AUTHOR)
    finally:
        del os.environ["GIT_TRACE"]
    return trace.read_text() if trace.exists() else ""


def test_update_writes_the_index_git_would(populated: Path, tmp_path: Path) -> None:
    repo = populated
    before = tmp_path / "index.before"
    shutil.copy(repo / ".git/index", before)
    paths = ["procedures/beta/main.py", "procedures/beta/metadata.json", "deep/a/b/c.txt"]
    trace = traced(repo, tmp_path, {p: f"new {p}\n".encode() for p in paths})
    assert "update-index" not in trace  # done in-process
    # git, from the same old index and the same files, writes the same entries.
    theirs = tmp_path / "index.git"
    shutil.copy(before, theirs)
    subprocess.run(
        ["git", "update-index", "--", *paths],
        cwd=repo,
        env=env(GIT_INDEX_FILE=str(theirs)),
        check=True,
    )
    assert ls_debug(repo, repo / ".git/index") == ls_debug(repo, theirs)
    assert subprocess.run(["git", "diff-files", "--quiet"], cwd=repo).returncode == 0  # stat-clean
    assert git(repo, "write-tree").strip() == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert git(repo, "status", "--porcelain") == ""


def test_plain_commit_after_an_in_process_update_keeps_proctor_files(populated: Path) -> None:
    """A stale cache-tree would make the next ``git commit`` write the old folders back."""
    repo = populated
    with GitStore(repo) as store:
        store.write(
            REF,
            lambda _t: Change(edits={"procedures/alpha/main.py": b"v2\n"}, message="m"),
            author=AUTHOR,
        )
    (repo / "user.txt").write_text("user\n")
    git(repo, "add", "user.txt")
    git(repo, "commit", "-q", "-m", "user")
    assert git(repo, "show", "HEAD:procedures/alpha/main.py") == "v2\n"
    assert git(repo, "diff", "--name-only", "HEAD~1", "HEAD") == "user.txt\n"


def test_new_or_deleted_paths_are_left_to_git(populated: Path, tmp_path: Path) -> None:
    repo = populated
    trace = traced(repo, tmp_path, {"procedures/delta/main.py": b"d\n"})
    assert "update-index" in trace
    trace = traced(repo, tmp_path, {"procedures/gamma/main.py": None})
    assert "update-index" in trace
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "write-tree").strip() == git(repo, "rev-parse", "HEAD^{tree}").strip()


def test_untracked_cache_and_other_optional_extensions(populated: Path, tmp_path: Path) -> None:
    repo = populated
    git(repo, "config", "core.untrackedCache", "true")
    git(repo, "update-index", "--untracked-cache")
    git(repo, "status", "--porcelain")  # fills the untracked cache
    (repo / "untracked.txt").write_text("u\n")
    traced(repo, tmp_path, {"procedures/alpha/main.py": b"v3\n"})
    assert git(repo, "status", "--porcelain") == "?? untracked.txt\n"
    assert git(repo, "write-tree").strip() == git(repo, "rev-parse", "HEAD^{tree}").strip()


@pytest.mark.parametrize("how", ["update-index --split-index", "core.splitIndex", "index.sparse"])
def test_a_split_or_sparse_index_is_left_to_git(populated: Path, tmp_path: Path, how: str) -> None:
    """``git update-index --split-index`` splits the index with no setting saying so: the
    index itself (its ``link`` extension) is what tells, and git writes such an index."""
    repo = populated
    if how == "update-index --split-index":
        git(repo, "update-index", "--split-index")
        assert list((repo / ".git").glob("sharedindex.*"))
    elif how == "core.splitIndex":
        git(repo, "config", "core.splitIndex", "true")
        git(repo, "update-index", "--split-index")
    else:
        git(repo, "config", "index.sparse", "true")
    trace = traced(repo, tmp_path, {"procedures/alpha/main.py": b"v4\n"})
    if how != "index.sparse":  # a sparse index needs a sparse checkout to be one
        assert "update-index" in trace
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", ":procedures/alpha/main.py") == "v4\n"
    assert git(repo, "write-tree").strip() == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert git(repo, "fsck", "--strict", "--no-dangling", check=False) == ""
    # Back to one file: lingering shared index files do not make it split.
    git(repo, "update-index", "--no-split-index")
    git(repo, "config", "--unset-all", "core.splitIndex", check=False)
    git(repo, "config", "--unset-all", "index.sparse", check=False)
    trace = traced(repo, tmp_path, {"procedures/alpha/main.py": b"v5\n"})
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", ":procedures/alpha/main.py") == "v5\n"


def test_invalidate_walks_nested_folders() -> None:
    from proctor.store.indexfile import _invalidate

    sha = b"\x01" * 20
    body = (
        b"\x005 2\n"
        + sha  # root: 5 entries, 2 subtrees
        + b"a\x002 1\n"
        + sha
        + b"b\x001 0\n"
        + sha  # a/b
        + b"c\x002 0\n"
        + sha  # c
    )
    out = _invalidate(body, ["a/b/x.txt"])
    assert out == b"\x00-1 2\n" + b"a\x00-1 1\n" + b"b\x00-1 0\n" + b"c\x002 0\n" + sha
    assert _invalidate(body, ["c/y"]) == (
        b"\x00-1 2\n" + b"a\x002 1\n" + sha + b"b\x001 0\n" + sha + b"c\x00-1 0\n"
    )


def test_paths_with_link_in_their_names_do_not_make_an_index_split(repo: Path) -> None:
    """A split index is told by its ``link`` extension, found by walking the extensions'
    headers; the same four bytes in a path (a procedure named ``link``, a file ``blink``)
    are not taken for one."""
    from proctor.store import indexfile

    def _may_be_split(data: bytes) -> bool:
        indexfile._LAYOUTS.clear()
        return indexfile.layout(data) is None

    for name in ("link", "blinker", "x"):
        path = repo / "procedures" / name / "link"
        path.parent.mkdir(parents=True)
        path.write_text("link\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    assert not _may_be_split((repo / ".git/index").read_bytes())
    git(repo, "update-index", "--split-index")
    assert _may_be_split((repo / ".git/index").read_bytes())
    git(repo, "update-index", "--no-split-index")
    assert not _may_be_split((repo / ".git/index").read_bytes())


def test_an_index_this_process_wrote_is_searched_and_gives_the_walks_bytes(repo: Path) -> None:
    """A second write to an index this process wrote finds its entries by searching the
    bytes (the entries' end is known by the checksum); the result is byte for byte what
    the walk over every entry gives, names that end other names included."""
    from proctor.store import indexfile

    paths = ["a/main.py", "procedures/a/main.py", "x" * 150 + "/" + "y" * 150 + "/main.py", "z.txt"]
    for path in paths:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(path[:10] + "\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    start = (repo / ".git/index").read_bytes()
    st = (repo / "z.txt").lstat()
    sha = "1" * 40

    def change(*names: str) -> dict[str, tuple[int, str, os.stat_result]]:
        return dict.fromkeys(names, (0o100644, sha, st))

    indexfile._LAYOUTS.clear()
    first = indexfile.replace_entries(start, change("a/main.py"))
    assert first is not None
    known = indexfile._LAYOUTS[first[-20:]]
    assert first[known.end : known.end + 4] == b"TREE"  # where the walk found the entries end
    for names in (["procedures/a/main.py"], ["a/main.py", paths[2]], ["nope/main.py"]):
        indexfile._LAYOUTS[first[-20:]] = known
        searched = indexfile.replace_entries(first, change(*names))
        indexfile._LAYOUTS.clear()
        walked = indexfile.replace_entries(first, change(*names))
        assert searched == walked
        assert (searched is None) == (names == ["nope/main.py"])


def crafted_index(repo: Path, written: str) -> bytes:
    """An index with a gitlink whose name ends in ``written`` and whose bytes, 16 past
    its entry's start, look like the start of an entry for ``written``: a file mode (in
    the gitlink's id, which git takes as it is given) and a flags word holding the
    length of ``written`` (in the gitlink's name)."""
    length = len(written.encode())
    assert 0x100 <= length < 0xFFF and b"\0" not in length.to_bytes(2, "big")
    decoy = "d" * 14 + length.to_bytes(2, "big").decode("latin-1") + written
    (repo / "z.txt").write_text("z\n")
    git(repo, "add", "z.txt")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,000081a4{'5' * 32},{decoy}")
    git(repo, "commit", "-q", "-m", "init")
    return (repo / ".git/index").read_bytes()


def test_a_name_that_ends_another_entrys_is_not_taken_for_an_entry(repo: Path) -> None:
    """A write to an index this process wrote searches the bytes for each path's name;
    a hit counts only where an entry starts. An entry whose name ends with a new path
    (and whose other bytes look like an entry's start there) is not that path's entry:
    the new path is git's to add, and the index is not written over the other entry."""
    from proctor.store import indexfile
    from proctor.store.worktree import index_lookup

    written = "w/" + "x" * 258
    start = crafted_index(repo, written)
    st = (repo / "z.txt").lstat()
    indexfile._LAYOUTS.clear()
    first = indexfile.replace_entries(start, {"z.txt": (0o100644, "1" * 40, st)})
    assert first is not None
    assert indexfile.replace_entries(first, {written: (0o100644, "2" * 40, st)}) is None
    indexfile._LAYOUTS.clear()
    assert indexfile.replace_entries(first, {written: (0o100644, "2" * 40, st)}) is None
    # Read as the dirty check reads it: not staged, as git says.
    assert index_lookup(first, [written, "z.txt"]) == {"z.txt": "1" * 40}
    assert git(repo, "ls-files", "--", written) == ""


@pytest.mark.parametrize(
    ("index_after", "path"),
    [(0.0, "procedures/p/main.py"), (0.5, "procedures/p/main.py"), (0.5, "procedures/q/main.py")],
)
def test_a_racily_clean_entry_is_smudged_as_git_does_when_the_index_is_rewritten(
    repo: Path, index_after: float, path: str
) -> None:
    """An entry whose file changed in the second the index was written (same size) is
    told apart from a clean one only while its time is not older than the index's. An
    index written later must mark such an entry as git does (size 0), or the change no
    longer shows and ``git commit -a`` commits the old content. The index written in the
    same clock tick as the file, or later in the same second (git compares seconds);
    the index updated in-process, or by git (a new path) on a copy of it, which must
    keep the index's time for git to know the entry for racy."""
    base = repo / "procedures/p/main.py"
    base.parent.mkdir(parents=True)
    base.write_text("x = 1\n")
    (repo / "F").write_text("aaaa\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    past = int(time.time()) - 60
    for _ in range(50):  # the add and the edit within one second (ctime is kept in seconds)
        start = int(time.time())
        (repo / "F").write_text("bbbb\n")
        os.utime(repo / "F", (past, past))
        git(repo, "add", "F")
        (repo / "F").write_text("cccc\n")  # same size, and the same times as the entry:
        os.utime(repo / "F", (past, past))
        at = past + index_after  # ... racily clean against the index
        os.utime(repo / ".git/index", (at, at))
        if int(time.time()) == start:
            break
    assert git(repo, "diff-files", "--name-only").split() == ["F"]
    with GitStore(repo) as store:
        store.write(
            REF,
            lambda _t: Change(edits={path: b"x = 2\n"}, message="m"),
            author=AUTHOR,
        )
    assert git(repo, "diff-files", "--name-only").split() == ["F"]
    git(repo, "commit", "-q", "-a", "-m", "all")
    assert git(repo, "show", "HEAD:F") == "cccc\n"


def test_an_entry_racy_to_the_nanosecond_is_looked_at_for_a_git_that_counts_them() -> None:
    """A git built with USE_NSEC compares times to the nanosecond: an entry changed at or
    after the old index's nanosecond, in the same second as the new index, is racy in
    the old index and not in the new one for that git. Its file is looked at (and git
    makes the index when it is not found unchanged); one changed before the old index,
    in an earlier second, is not looked at."""
    import struct

    from proctor.store import indexfile

    def entry(name: bytes, sec: int, nsec: int) -> bytes:
        fixed = struct.pack(
            ">10I20sH", sec, nsec, sec, nsec, 1, 2, 0o100644, 0, 0, 5, b"\x11" * 20, len(name)
        )
        body = fixed + name
        return body + b"\0" * (8 - len(body) % 8)

    base = 1_800_000_000
    names = [b"a.txt", b"b.txt", b"c.txt"]
    entries = entry(names[0], base, 0) + entry(names[1], base + 5, 700)
    entries += entry(names[2], base + 5, 100)
    data = b"DIRC" + struct.pack(">II", 2, 3) + entries
    data += __import__("hashlib").sha1(data).digest()
    st = os.stat(__file__)
    files = {"a.txt": (0o100644, "2" * 40, st)}
    racy = ((base + 5) * 1_000_000_000 + 500, base + 5)  # old index: +5 s 500 ns; new: +5 s
    seen: list[tuple[str, int, int]] = []

    def found(answer: bool):  # type: ignore[no-untyped-def]
        def unchanged(path: str, _sha: str, size: int, sec: int) -> bool:
            seen.append((path, size, sec))
            return answer

        return unchanged

    assert indexfile.replace_entries(data, files, racy, found(False)) is None  # git's to do
    assert seen == [("b.txt", 5, base + 5)]  # changed after the old index, to the nanosecond
    seen.clear()
    out = indexfile.replace_entries(data, files, racy, found(True))
    assert out is not None and seen == [("b.txt", 5, base + 5)]
    # The next write to the index written here finds its recent entries without a walk,
    # and looks at what a walk would: b.txt and c.txt now leave the racy second.
    later = ((base + 5) * 1_000_000_000 + 900, base + 6)
    results = []
    for cached in (True, False):
        if not cached:
            indexfile._LAYOUTS.clear()
        seen.clear()
        again = indexfile.replace_entries(
            out, {"a.txt": (0o100644, "3" * 40, st)}, later, found(True)
        )
        results.append((again, sorted(seen)))
    assert results[0] == results[1]
    assert [p for p, _size, _sec in results[0][1]] == ["b.txt", "c.txt"]


def test_a_racily_clean_file_git_converts_is_not_marked_changed(repo: Path) -> None:
    """A file git converts on the way in (``core.autocrlf``) differs byte for byte from
    the blob its entry names while being unchanged. Racily clean, it is left to git to
    judge, as git judges it: after a proctor write, git's plumbing sees no change."""
    git(repo, "config", "core.autocrlf", "true")
    (repo / "base.txt").write_text("base\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    past = int(time.time()) - 60
    (repo / "doc.txt").write_bytes(b"one\r\ntwo\r\n")
    os.utime(repo / "doc.txt", (past, past))
    git(repo, "add", "doc.txt")
    os.utime(repo / ".git/index", (past, past))  # doc.txt is racily clean
    with GitStore(repo) as store:
        store.write(
            REF, lambda _t: Change(edits={"base.txt": b"base 2\n"}, message="m"), author=AUTHOR
        )
    assert subprocess.run(["git", "diff-files", "--quiet"], cwd=repo).returncode == 0
    assert git(repo, "show", ":doc.txt") == "one\ntwo\n"


def fast_imported(repo: Path, paths: list[str]) -> None:
    """One commit holding ``paths`` (each file's text is its path), checked out."""
    stream = bytearray(b"commit refs/heads/main\ncommitter T <t@x> 1700000000 +0000\ndata 2\nm\n")
    for path in paths:
        data = path.encode() + b"\n"
        stream += b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(stream), check=True)
    git(repo, "reset", "-q", "--hard", "main")


def cache_tree(data: bytes) -> bytes:
    """The body of an index's TREE extension (after its entries, found by git's layout)."""
    from proctor.store import indexfile

    indexfile._LAYOUTS.clear()
    found = indexfile.layout(data)
    assert found is not None and data[found.end : found.end + 4] == b"TREE"
    size = int.from_bytes(data[found.end + 4 : found.end + 8], "big")
    return data[found.end + 8 : found.end + 8 + size]


def test_a_large_index_is_updated_in_process_as_git_would(repo: Path, tmp_path: Path) -> None:
    """An index of thousands of entries is still updated here (a binary search over the
    names, which git keeps in byte order: ``a-b`` < ``a.b`` < ``a/…`` < ``a0``), and the
    result is the index ``git update-index`` writes from the same old one."""
    paths = [f"procedures/p{i:04d}/{leaf}" for i in range(2600) for leaf in ("main.py", "m.json")]
    tricky = ["procedures/a-b/main.py", "procedures/a.b/main.py", "procedures/a/b/main.py"]
    paths += [*tricky, "procedures/a/main.py", "procedures/a0/main.py", "zz.txt"]
    fast_imported(repo, sorted(paths))
    time.sleep(1.05)  # no entry racily clean: both sides see the same stat data
    before = tmp_path / "index.before"
    shutil.copy(repo / ".git/index", before)
    from proctor.store import indexfile

    assert int.from_bytes(before.read_bytes()[8:12], "big") > 5000
    assert indexfile.MAX_ENTRIES > 5000
    changed = ["procedures/a/main.py", "procedures/a.b/main.py", "procedures/p0000/m.json"]
    changed += ["zz.txt"]
    trace = traced(repo, tmp_path, {p: f"new {p}\n".encode() for p in changed})
    assert "update-index" not in trace and "ls-files" not in trace  # done in-process
    theirs = tmp_path / "index.git"
    shutil.copy(before, theirs)
    subprocess.run(
        ["git", "update-index", "--", *changed],
        cwd=repo,
        env=env(GIT_INDEX_FILE=str(theirs)),
        check=True,
    )
    assert ls_debug(repo, repo / ".git/index") == ls_debug(repo, theirs)
    # The same folders invalidated in the cache-tree, the others' ids kept.
    ours = cache_tree((repo / ".git/index").read_bytes())
    assert ours == cache_tree(theirs.read_bytes())
    assert ours.count(b"\0-1 ") == 5  # the root, procedures, and a, a.b, p0000 in it
    assert git(repo, "write-tree").strip() == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert git(repo, "status", "--porcelain") == ""
    for path in ("procedures/a-b/main.py", "procedures/a/b/main.py", "procedures/a0/main.py"):
        assert git(repo, "show", f":{path}") == path + "\n"  # the neighbours untouched


def test_an_index_out_of_git_order_is_left_to_git(repo: Path) -> None:
    """Two entries swapped (and the checksum made right again): the binary search could
    miss an entry there, so the index is not read here at all."""
    import hashlib

    from proctor.store import indexfile
    from proctor.store.worktree import index_entries

    fast_imported(repo, ["a.txt", "b.txt", "c.txt"])
    data = (repo / ".git/index").read_bytes()
    found = indexfile.layout(data)
    assert found is not None and len(found.starts) == 3
    assert index_entries(data, ["b.txt"]) is not None
    first, second, third = found.starts
    assert second - first == third - second  # same length: they can change places
    body = data[:first] + data[second:third] + data[first:second] + data[third:-20]
    swapped = body + hashlib.sha1(body).digest()
    assert indexfile.layout(swapped) is None
    assert index_entries(swapped, ["b.txt"]) is None
