"""The git store against git itself: object formats, refs, create-only tags, work-tree sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import git

from proctor.core.errors import DirtyWorkTreeError, NotFoundError, UsageError
from proctor.store import Change, GitStore, Snapshot, TagSpec, format_ident

AUTHOR = format_ident("Test Author", "author@example.com")


def write(
    store: GitStore, edits: dict[str, bytes | None], ref: str = "refs/heads/main", **kw: object
):
    return store.write(ref, lambda tip: Change(edits=edits, message="m", **kw), author=AUTHOR)


def test_tree_order_and_ids_match_git(repo: Path) -> None:
    # Names whose order differs between plain byte order and git's tree order.
    names = ["a", "a.b", "a-b", "a0", "b", "é.txt", "x y"]
    edits = {f"{n}/f" if n == "a" else n: n.encode() for n in names}
    with GitStore(repo) as store:
        result = write(store, edits)
        tree = store.commit_tree(result.commit)
    assert git(repo, "fsck", "--strict", "--no-dangling") == ""
    listing = git(repo, "ls-tree", tree)
    rebuilt = subprocess.run(
        ["git", "mktree"], cwd=repo, input=listing, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert rebuilt == tree
    assert git(repo, "show", "HEAD:a/f") == "a"
    assert git(repo, "show", "HEAD:é.txt") == "é.txt"


def test_delete_removes_empty_directories(repo: Path) -> None:
    with GitStore(repo) as store:
        write(store, {"procedures/a/main.py": b"1", "procedures/b/main.py": b"2"})
        write(store, {"procedures/a/main.py": None})
        assert not (repo / "procedures/a").exists()
        assert git(repo, "ls-tree", "-r", "--name-only", "HEAD") == "procedures/b/main.py\n"
        write(store, {"procedures/b/main.py": None, "keep": b"k"})
        assert git(repo, "ls-tree", "-r", "--name-only", "HEAD") == "keep\n"
        assert not (repo / "procedures").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_executable_bit(repo: Path) -> None:
    with GitStore(repo) as store:
        store.write(
            "refs/heads/main",
            lambda tip: Change(
                edits={"run.sh": b"#!/bin/sh\n"}, message="m", executable={"run.sh"}
            ),
            author=AUTHOR,
        )
    assert git(repo, "ls-files", "-s", "run.sh").startswith("100755 ")
    assert (repo / "run.sh").stat().st_mode & 0o111
    assert git(repo, "status", "--porcelain") == ""


def test_read_many_reads_the_blobs_of_a_fresh_store_in_one_round_trip(repo: Path) -> None:
    """An update reads a procedure's two files: one request to ``cat-file`` for both
    (after the trees on their way), what two ``read`` calls give, None where no file is."""
    with GitStore(repo) as store:
        tip = write(store, {"p/x/a": b"A", "p/x/b": b"B", "p/y/c": b"C"}).commit
    with GitStore(repo) as store:
        snap = Snapshot(store, tip)
        assert snap.listdir("p/x")  # the trees on the way are read (and cached)
        sent: list[bytes] = []
        cat = store.cat
        real = cat._write
        cat._write = lambda payload: (sent.append(payload), real(payload))[1]  # type: ignore[method-assign]
        assert snap.read_many(["p/x/a", "p/x/b", "p/x/none", "p/x", "p/x/a"]) == [
            b"A",
            b"B",
            None,
            None,
            b"A",
        ]
        assert len(sent) == 1 and sent[0].count(b"\n") == 2, sent
        assert snap.read_many(["p/x/a", "p/x/b"]) == [b"A", b"B"]
        assert len(sent) == 1  # now cached
        assert snap.read_many([]) == []


def test_reads_at_any_revision_and_packed_refs(repo: Path) -> None:
    with GitStore(repo) as store:
        first = write(store, {"f": b"one"}).commit
        second = write(store, {"f": b"two"}).commit
        assert Snapshot(store, first).read("f") == b"one"
        assert Snapshot(store, second).read("f") == b"two"
        assert store.resolve("HEAD~1") == first
        with pytest.raises(NotFoundError):
            store.resolve("no-such-branch")
        with pytest.raises(UsageError):
            store.resolve("--output=/tmp/x")
    git(repo, "pack-refs", "--all")
    git(repo, "gc", "-q")
    assert not (repo / ".git/refs/heads/main").exists()
    with GitStore(repo) as store:
        assert store.read_ref("refs/heads/main") == second
        assert Snapshot(store, first).read("f") == b"one"  # now from a pack
        third = write(store, {"f": b"three"}).commit
        assert store.read_ref("refs/heads/main") == third


def test_tags_are_create_only_and_move_with_the_commit(repo: Path) -> None:
    with GitStore(repo) as store:
        first = write(store, {"f": b"1"}, tags=[TagSpec("rel/v1", "first")])
        assert git(repo, "rev-parse", "rel/v1^{commit}").strip() == first.commit
        assert git(repo, "cat-file", "-t", "rel/v1").strip() == "tag"
        head = git(repo, "rev-parse", "HEAD")
        with pytest.raises(UsageError, match="already exists"):
            write(store, {"f": b"2"}, tags=[TagSpec("rel/v1", "again")])
        assert git(repo, "rev-parse", "HEAD") == head
        assert git(repo, "rev-parse", "rel/v1^{commit}").strip() == first.commit


def test_dirty_path_refused_before_any_write(repo: Path) -> None:
    with GitStore(repo) as store:
        write(store, {"f": b"1", "g": b"1"})
        (repo / "f").write_text("mine")
        objects_before = sorted(p.name for p in (repo / ".git/objects").rglob("*") if p.is_file())
        head = git(repo, "rev-parse", "HEAD")
        with pytest.raises(DirtyWorkTreeError, match="uncommitted changes in f"):
            write(store, {"f": b"2"})
        assert git(repo, "rev-parse", "HEAD") == head
        assert (repo / "f").read_text() == "mine"
        # Writing another path is fine and keeps the user's edit.
        write(store, {"g": b"2"})
        assert (repo / "f").read_text() == "mine"
        assert git(repo, "status", "--porcelain") == " M f\n"
    assert objects_before  # objects existed; the refused write added no commit


def test_user_index_is_untouched_for_other_paths(repo: Path) -> None:
    with GitStore(repo) as store:
        write(store, {"f": b"1"})
        (repo / "staged.txt").write_text("staged by the user")
        git(repo, "add", "staged.txt")
        write(store, {"procedures/x/main.py": b"x"})
    assert git(repo, "status", "--porcelain") == "A  staged.txt\n"
    assert git(repo, "show", "HEAD:procedures/x/main.py") == "x"
    assert "staged.txt" not in git(repo, "ls-tree", "--name-only", "HEAD")


def test_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    with GitStore(bare) as store:
        assert store.work_tree is None
        result = write(store, {"procedures/a/main.py": b"a"})
    assert git(bare, "rev-parse", "refs/heads/main").strip() == result.commit
    assert git(bare, "fsck", "--strict", "--no-dangling") == ""


def test_trailers_are_parsed_by_git(repo: Path) -> None:
    with GitStore(repo) as store:
        store.write(
            "refs/heads/main",
            lambda tip: Change(edits={"f": b"1"}, message="Subject\n\nBody."),
            author=AUTHOR,
            trailers={"Proctor-Action": "x.y", "Proctor-Actor": "me"},
        )
    assert (
        git(repo, "log", "-1", "--format=%(trailers:key=Proctor-Action,valueonly)").strip() == "x.y"
    )
    assert git(repo, "log", "-1", "--format=%s").strip() == "Subject"


def test_file_edited_in_place_and_committed_as_is(repo: Path) -> None:
    """Handing proctor the very file you edited loses nothing, so it is not refused."""
    with GitStore(repo) as store:
        write(store, {"f": b"1"})
        (repo / "f").write_text("2")
        result = write(store, {"f": b"2"})
        assert git(repo, "show", "HEAD:f") == "2"
        assert git(repo, "status", "--porcelain") == ""
        # Staged something else, then edited: the staged content would be lost.
        (repo / "f").write_text("staged")
        git(repo, "add", "f")
        (repo / "f").write_text("3")
        with pytest.raises(DirtyWorkTreeError):
            write(store, {"f": b"3"})
        assert git(repo, "rev-parse", "HEAD").strip() == result.commit


def test_writes_ask_git_to_pack_when_git_would(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process writes never trigger git's own ``gc --auto``; the store asks for it when
    the loose objects git samples (``objects/17``) pass ``gc.auto`` / 256, as porcelain
    commands do, and never with ``gc.auto = 0``."""
    from test_store_env import contents_in_bucket

    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))

    def gc_runs() -> int:
        if not trace.exists():
            return 0
        return sum(
            1
            for line in trace.read_text().splitlines()
            if "git gc --auto" in line and "built-in" in line
        )

    bucket = contents_in_bucket("17", 4)
    with GitStore(repo) as store:
        for i in range(5):  # default gc.auto: 27 loose objects in objects/17 needed
            write(store, {f"f{i}": bucket[i % 2].encode() + str(i).encode()})
        assert gc_runs() == 0
    git(repo, "config", "gc.auto", "0")
    with GitStore(repo) as store:
        write(store, {"a": bucket[0].encode(), "b": bucket[1].encode()})
        assert gc_runs() == 0
    git(repo, "config", "gc.auto", "1")
    git(repo, "config", "gc.autoDetach", "false")
    with GitStore(repo) as store:
        write(store, {"c": bucket[2].encode(), "d": bucket[3].encode()})
        assert gc_runs() == 1
    assert not list((repo / ".git/objects/17").glob("*"))
    assert git(repo, "fsck", "--strict", "--no-dangling") == ""


def test_index_lookup_agrees_with_git(repo: Path) -> None:
    """Reading index entries in-process gives what ``git ls-files -s`` gives."""
    from proctor.store.worktree import index_lookup

    files = [
        "procedures/a/main.py",
        "x/procedures/a/main.py",
        "procedures/a/main.pyc",
        "procedures/ab/main.py",
        "é/ü.py",
        "deep/" + "d" * 120 + "/f.py",
    ]
    for f in files:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        (repo / f).write_text(f)
    git(repo, "add", "--", *files[:-1])
    git(repo, "add", "-N", files[-1])  # intent-to-add: an extended-flags entry (version 3)
    wanted = files + ["procedures/zz/main.py", "procedures/a"]

    data = (repo / ".git/index").read_bytes()
    assert data[4:8] == b"\0\0\0\3"
    ours = index_lookup(data, wanted)
    assert ours is not None
    expected = {}
    for line in subprocess.run(
        ["git", "ls-files", "-s", "-z", "--", *wanted], cwd=repo, capture_output=True, check=True
    ).stdout.split(b"\0"):
        if line:
            meta, _, path = line.partition(b"\t")
            expected[path.decode()] = meta.split()[1].decode()
    assert ours == expected
    assert "procedures/zz/main.py" not in ours and "procedures/a" not in ours
    # Version 4 compresses paths: the lookup declines and git is asked instead.
    git(repo, "update-index", "--index-version", "4")
    assert index_lookup((repo / ".git/index").read_bytes(), wanted) is None
    with GitStore(repo) as store:
        assert store.staged_ids(str(repo), wanted) == expected
    assert index_lookup(b"", wanted) == {}


def test_store_names_importable_from_package_and_old_module() -> None:
    """``proctor.store`` is the public face; ``proctor.store.gitstore`` keeps the names that
    code outside the store imported from it, as the very same objects."""
    import proctor.store as package
    import proctor.store.gitstore as old

    for name in package.__all__:
        assert getattr(old, name) is getattr(package, name), name
    for name in ("GitStore", "Change", "TagSpec", "WriteResult", "Snapshot", "index_lookup"):
        assert name in old.__all__, name
    assert not hasattr(old, "serialize_tree") and not hasattr(old, "parse_tree")


def test_closing_a_long_lived_git_waits_for_its_exit_without_polling_sleeps(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store's ``cat-file --batch`` and ``update-ref --stdin`` end when their stdin
    closes; the close is woken by the exit itself (a pidfd), not by sleeps between looks."""
    import time

    store = GitStore(repo)
    commit = write(store, {"a.txt": b"a\n"}).commit
    assert Snapshot(store, commit).read("a.txt") == b"a\n"  # cat-file --batch runs
    assert "git" in _children()

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s waiting for git to exit")

    monkeypatch.setattr(time, "sleep", no_sleep)
    store.close()
    monkeypatch.undo()
    assert _children() == []


def test_a_process_that_does_not_exit_when_its_stdin_closes_is_killed() -> None:
    from proctor.store.git import end_process

    proc = subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.close()
    end_process(proc, timeout=0.2)
    assert proc.returncode == -9


def _children() -> list[str]:
    """The names of this process's live (not zombie) children."""
    import os

    names = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            state, ppid = fields[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == os.getpid() and state != "Z":
            names.append(name)
    return names
