"""The store and the file system: no write through a symbolic link, modes kept, line
endings as git normalises them, sparse checkouts, and where the branch is checked out
asked afresh on every write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git

from proctor.core.errors import EXIT_USAGE, StoreError
from proctor.store import Change, GitStore, format_ident
from proctor.store.errors import UnsafePathError

REF = "refs/heads/main"
AUTHOR = format_ident("Test Author", "author@example.com")


def write(store: GitStore, edits: dict[str, bytes | None], **kw: object):
    return store.write(REF, lambda _t: Change(edits=edits, message="m", **kw), author=AUTHOR)


def objects(repo: Path) -> set[str]:
    return {str(p) for p in (repo / ".git/objects").rglob("*") if p.is_file()}


@pytest.fixture
def checkout(repo: Path) -> Path:
    (repo / "README.md").write_text("store\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def assert_refused_untouched(repo: Path, elsewhere: Path, edits: dict[str, bytes | None]) -> None:
    head = git(repo, "rev-parse", REF)
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    before = objects(repo)
    with GitStore(repo) as store, pytest.raises(UnsafePathError) as info:
        write(store, edits)
    assert info.value.exit_code == EXIT_USAGE
    assert "symbolic link" in str(info.value) and "nothing was written" in str(info.value)
    assert list(elsewhere.iterdir()) == []
    assert git(repo, "rev-parse", REF) == head
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == status
    assert objects(repo) == before
    assert not (repo / ".git/index.lock").exists()


def test_committed_symlinked_directory_is_not_written_through(
    checkout: Path, tmp_path: Path
) -> None:
    repo = checkout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, repo / "procedures")
    git(repo, "add", "procedures")
    git(repo, "commit", "-q", "-m", "a link")
    assert_refused_untouched(repo, elsewhere, {"procedures/x/main.py": b"x"})
    assert_refused_untouched(repo, elsewhere, {"procedures/x/main.py": None})


def test_untracked_symlink_below_is_not_written_through(checkout: Path, tmp_path: Path) -> None:
    repo = checkout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "procedures").mkdir()
    os.symlink(elsewhere, repo / "procedures" / "x")
    assert_refused_untouched(repo, elsewhere, {"procedures/x/main.py": b"x"})


def test_symlink_in_place_of_the_file_is_not_followed(checkout: Path, tmp_path: Path) -> None:
    repo = checkout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "procedures/x").mkdir(parents=True)
    os.symlink(elsewhere / "target", repo / "procedures/x/main.py")
    assert_refused_untouched(repo, elsewhere, {"procedures/x/main.py": b"x"})


def test_symlink_in_the_tree_refused_in_a_bare_store(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    with GitStore(bare) as store:
        link = store.write_object("blob", b"/elsewhere")
        tree = store.write_tree({"procedures": ("120000", link)})
        commit = store.write_commit(tree, [], "link\n", AUTHOR, AUTHOR)
        store.update_refs([(REF, commit, None)], "test")
        before = {str(p) for p in (bare / "objects").rglob("*") if p.is_file()}
        with pytest.raises(UnsafePathError, match="symbolic link in the tree"):
            write(store, {"procedures/x/main.py": b"x"})
        with pytest.raises(UnsafePathError):
            write(store, {"procedures/x/main.py": None})
        assert store.read_ref(REF) == commit
    assert {str(p) for p in (bare / "objects").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("path", ["../x", "a/../b", ".git/config", "a//b", "/abs", "a/.GIT/x"])
def test_paths_git_refuses_are_refused(checkout: Path, path: str) -> None:
    with GitStore(checkout) as store, pytest.raises(UnsafePathError):
        write(store, {path: b"x"})
    assert git(checkout, "status", "--porcelain") == ""


def test_executable_main_py_stays_executable_on_update(checkout: Path) -> None:
    repo = checkout
    (repo / "procedures/x").mkdir(parents=True)
    (repo / "procedures/x/main.py").write_text("#!/usr/bin/env python3\n")
    os.chmod(repo / "procedures/x/main.py", 0o755)
    git(repo, "add", "procedures/x/main.py")
    git(repo, "commit", "-q", "-m", "exec")
    with GitStore(repo) as store:
        write(store, {"procedures/x/main.py": b"#!/usr/bin/env python3\nprint(1)\n"})
        assert git(repo, "ls-tree", "HEAD", "procedures/x/main.py").startswith("100755 ")
        assert os.stat(repo / "procedures/x/main.py").st_mode & 0o111
        assert git(repo, "status", "--porcelain") == ""
        # Said explicitly, the mode changes; a new file defaults to 100644.
        write(
            store, {"procedures/x/main.py": b"print(2)\n"}, modes={"procedures/x/main.py": "100644"}
        )
        assert git(repo, "ls-tree", "HEAD", "procedures/x/main.py").startswith("100644 ")
        write(store, {"procedures/y/main.py": b"print(3)\n"})
        assert git(repo, "ls-tree", "HEAD", "procedures/y/main.py").startswith("100644 ")
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("setting", ["true", "input"])
def test_autocrlf_content_committed_as_git_normalises_it(checkout: Path, setting: str) -> None:
    repo = checkout
    git(repo, "config", "core.autocrlf", setting)
    with GitStore(repo) as store:
        write(store, {"procedures/x/main.py": b"def run():\r\n    return 1\r\n"})
    assert (
        git(repo, "cat-file", "blob", "HEAD:procedures/x/main.py") == "def run():\n    return 1\n"
    )
    assert git(repo, "status", "--porcelain") == ""
    # What `git add` of the same bytes would have staged.
    expected = (
        subprocess.run(
            ["git", "hash-object", "--path", "procedures/x/main.py", "--stdin"],
            cwd=repo,
            input=b"def run():\r\n    return 1\r\n",
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    assert git(repo, "rev-parse", "HEAD:procedures/x/main.py").strip() == expected


def test_autocrlf_checkout_is_not_an_uncommitted_change(checkout: Path) -> None:
    """A file git checked out with CRLF (autocrlf=true) holds no local change."""
    repo = checkout
    (repo / "procedures/x").mkdir(parents=True)
    (repo / "procedures/x/main.py").write_bytes(b"def run():\n    return 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "lf")
    git(repo, "config", "core.autocrlf", "true")
    (repo / "procedures/x/main.py").unlink()
    git(repo, "checkout", "--", "procedures/x/main.py")
    assert b"\r\n" in (repo / "procedures/x/main.py").read_bytes()
    assert git(repo, "status", "--porcelain") == ""
    with GitStore(repo) as store:
        write(store, {"procedures/x/main.py": b"def run():\n    return 2\n"})
    assert git(repo, "show", "HEAD:procedures/x/main.py") == "def run():\n    return 2\n"
    assert git(repo, "status", "--porcelain") == ""


def test_sparse_checkout_paths_outside_the_cone_are_not_dirty(checkout: Path) -> None:
    repo = checkout
    for name in ("a", "b"):
        (repo / f"procedures/{name}").mkdir(parents=True)
        (repo / f"procedures/{name}/main.py").write_text(f"{name}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "two")
    git(repo, "sparse-checkout", "set", "procedures/a")
    assert not (repo / "procedures/b").exists()
    with GitStore(repo) as store:
        write(store, {"procedures/b/main.py": b"b2\n", "procedures/a/main.py": b"a2\n"})
    assert git(repo, "show", "HEAD:procedures/b/main.py") == "b2\n"
    assert not (repo / "procedures/b").exists()  # still outside the cone
    assert (repo / "procedures/a/main.py").read_text() == "a2\n"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "ls-files", "-t", "procedures/b/main.py").startswith("S ")
    git(repo, "sparse-checkout", "disable")
    assert (repo / "procedures/b/main.py").read_text() == "b2\n"
    assert git(repo, "status", "--porcelain") == ""


def test_git_switch_is_seen_by_a_long_lived_store(checkout: Path) -> None:
    """After ``git switch`` the store branch is no longer checked out: its next write
    must not touch the work tree (another branch's files) or its index."""
    repo = checkout
    with GitStore(repo) as store:
        write(store, {"procedures/x/main.py": b"1\n"})
        git(repo, "switch", "-q", "-c", "other")
        git(repo, "rm", "-q", "-r", "procedures")
        git(repo, "commit", "-q", "-m", "other has none")
        write(store, {"procedures/x/main.py": b"2\n"})
        assert not (repo / "procedures").exists()
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
        assert git(repo, "show", "main:procedures/x/main.py") == "2\n"
        git(repo, "switch", "-q", "main")
        assert (repo / "procedures/x/main.py").read_text() == "2\n"
        (repo / "procedures/x/main.py").write_text("mine\n")
        # Checked out again: the check for uncommitted work is back.
        with pytest.raises(Exception, match="uncommitted changes"):
            write(store, {"procedures/x/main.py": b"3\n"})
        assert (repo / "procedures/x/main.py").read_text() == "mine\n"


def test_worktree_list_failing_is_an_error_not_not_checked_out(
    checkout: Path, tmp_path: Path
) -> None:
    """With a linked work tree the store asks ``git worktree list`` where the branch is
    (with none, the main work tree it was opened in is the whole list); git failing there
    stops the write before anything is written."""
    repo = checkout
    git(repo, "worktree", "add", "-q", "-b", "elsewhere", str(tmp_path / "linked"))
    with GitStore(repo) as store:
        head = git(repo, "rev-parse", REF)
        before = objects(repo)
        config = (repo / ".git/config").read_text()
        (repo / ".git/config").write_text(config + "\n[broken\n")
        try:
            with pytest.raises(StoreError, match="worktree list"):
                write(store, {"f": b"1"})
        finally:
            (repo / ".git/config").write_text(config)
        assert git(repo, "rev-parse", REF) == head
        assert objects(repo) == before
        assert not (repo / "f").exists()


@pytest.mark.parametrize("kind", ["sync-journal", "write-lock", "metrics-log", "metrics-lock"])
def test_a_symlink_in_place_of_proctors_own_state_is_not_followed(
    checkout: Path, tmp_path: Path, kind: str
) -> None:
    """``.git/proctor/`` holds files every write opens for writing (the sync journal, the
    writer lock, the metrics log and its lock). A symbolic link put there (by another user
    of a shared repository, say) is never followed: the file it points to is neither
    written, truncated nor given other permissions. The journal and the lock are opened
    before the commit, so the write is refused with exit 2 and nothing written; metrics
    are counted after it, so the write is applied and the warning names the link."""
    import stat

    repo = checkout
    greet = tmp_path / "greet.py"
    greet.write_text('def run(name: str) -> str:\n    return "hi " + name\n')
    from conftest import run_cli

    first = run_cli("procedure", "create", "greet", "--code", str(greet), cwd=repo)
    assert first.code == 0, first.err
    state = repo / ".git" / "proctor"
    planted = {
        "sync-journal": next(state.glob("sync-*.json")),
        "write-lock": next(state.glob("write-*.lock")),
        "metrics-log": state / "metrics" / "increments.jsonl",
        "metrics-lock": state / "metrics" / "lock",
    }[kind]
    for target_text in ("", "precious\n"):
        target = tmp_path / f"target-{len(target_text)}"
        target.write_text(target_text)
        target.chmod(0o600)
        planted.unlink(missing_ok=True)
        os.symlink(target, planted)
        head = git(repo, "rev-parse", REF)
        greet.write_text(f'def run(name: str) -> str:\n    return "ho{len(target_text)} " + name\n')
        result = run_cli("procedure", "update", "greet", "--code", str(greet), cwd=repo)
        assert "symbolic link" in result.err and str(planted) in result.err
        assert "Traceback" not in result.err
        assert target.read_text() == target_text
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert git(repo, "status", "--porcelain") == ""
        if kind.startswith("metrics"):
            assert result.code == 0 and "applied" in result.out, (result.code, result.err)
            assert result.err.startswith("event handler of plugin metrics failed")
        else:
            assert result.code == 2, (result.code, result.err)
            assert "nothing was written" in result.err
            assert git(repo, "rev-parse", REF) == head


def test_the_outbox_and_the_run_log_are_not_opened_through_a_symbolic_link(
    checkout: Path, tmp_path: Path
) -> None:
    """SQLite opens its files by name, so the two databases in ``.git/proctor/`` (the
    side-effect outbox, the default run log) are looked at before they are opened: a
    link there is refused and the database it points to is left as it was."""
    import asyncio
    import sqlite3

    from proctor.plugins.side_effects.outbox import Outbox
    from proctor.runs.log.store import RunLog, RunLogError

    state = checkout / ".git" / "proctor"
    state.mkdir(exist_ok=True)
    elsewhere = tmp_path / "other.sqlite"
    with sqlite3.connect(elsewhere) as db:
        db.execute("CREATE TABLE mine (x)")
    before = elsewhere.read_bytes()
    os.symlink(elsewhere, state / "outbox.sqlite")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        Outbox(checkout / ".git").rows()
    log = RunLog(None, state)
    os.symlink(elsewhere, log.path)
    with pytest.raises(RunLogError, match="symbolic link"):
        asyncio.run(log.arecent("greet", limit=1))
    assert elsewhere.read_bytes() == before


def test_a_long_lived_workspace_makes_its_state_folder_again_when_it_is_removed(
    checkout: Path,
) -> None:
    """The state folders are made once per process; removing ``.git/proctor`` between
    two writes of one Workspace (by hand, by a clean-up script) does not break the next
    write: its lock, journal and metrics are made again where they belong."""
    import shutil

    from proctor import Workspace

    code = 'def run(name: str) -> str:\n    return "hi " + name\n'
    with Workspace.open(checkout, actor="ana@example.com") as ws:
        first = ws.execute("procedure.create", {"name": "greet", "code": code})
        assert first.status == "applied", first
        state = checkout / ".git" / "proctor"
        assert (state / "metrics").is_dir()
        shutil.rmtree(state)
        second = ws.execute("procedure.update", {"name": "greet", "code": code.replace("hi", "ho")})
        assert second.status == "applied", second
        assert second.warnings == [], second.warnings
    assert next(state.glob("write-*.lock")).is_file()
    assert next(state.glob("sync-*.json")).read_text() == ""
    assert (state / "metrics" / "increments.jsonl").read_text().count("\n") == 1
    assert git(checkout, "show", f"{REF}:procedures/greet/main.py").count("ho ") == 1
    assert git(checkout, "status", "--porcelain") == ""


def test_a_state_folder_looked_up_while_another_thread_adds_one_is_no_error() -> None:
    """The table of state folders a process made is shared by its threads: one looking
    a folder up (to make it again) while another adds one must not fail. The other
    thread's addition is made here at the worst moment, from inside the look-up."""
    from proctor.store import perms

    class AddsOneWhenCompared(type(Path())):  # type: ignore[misc]
        def __eq__(self, other: object) -> bool:
            perms._FOLDERS[("/elsewhere", (str(len(perms._FOLDERS)),), 0)] = Path("/x")
            return False

        __hash__ = Path.__hash__

    saved = dict(perms._FOLDERS)
    try:
        perms._FOLDERS[("/repo/.git", ("a",), 0)] = AddsOneWhenCompared("/repo/.git/proctor/a")
        assert perms._remake_folder("/repo/.git/proctor/b/file") is False
    finally:
        perms._FOLDERS.clear()
        perms._FOLDERS.update(saved)


@pytest.mark.parametrize("swapped", ["procedures/greet", "procedures"])
def test_a_folder_swapped_for_a_link_during_a_write_is_not_written_through(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    """A write walks to each folder once and keeps its descriptor. Another process that
    moves the procedure's folder out of the work tree after the write looked at it, and
    puts a link to it in its place, must not have the write follow the folder there: the
    kept descriptor is used only while the path still leads to it."""
    from proctor.store import journal, worktree

    repo = checkout
    write(repo_store := GitStore(repo), {"procedures/greet/main.py": b"print(1)\n"})
    repo_store.close()
    head = git(repo, "rev-parse", REF)
    moved = tmp_path / "moved"
    real = worktree.dirty_paths

    def then_swap(*args: object, **kw: object) -> list[str]:
        found = real(*args, **kw)  # type: ignore[arg-type]
        os.rename(repo / swapped, moved)  # the other process, at the worst time
        os.symlink(moved, repo / swapped)
        return found

    monkeypatch.setattr(worktree, "dirty_paths", then_swap)
    with GitStore(repo) as store, pytest.raises(UnsafePathError, match="symbolic link"):
        write(store, {"procedures/greet/main.py": b"print(2)\n"})
    inside = moved if swapped == "procedures/greet" else moved / "greet"
    assert sorted(p.name for p in inside.iterdir()) == ["main.py"]
    assert (inside / "main.py").read_bytes() == b"print(1)\n"
    assert git(repo, "rev-parse", REF) == head
    assert git(repo, "diff", "--cached", "--name-only") == ""  # the index as it was
    assert not (repo / ".git/index.lock").exists()
    assert journal.load(str(repo / ".git"), REF) is None  # nothing owed to the work tree


def test_a_file_name_too_long_for_its_temporary_name_is_refused_before_anything(
    checkout: Path,
) -> None:
    """A work-tree file is written under a temporary name 13 bytes longer than its own,
    beside a backup under another: a name that fits the file system's limit but leaves
    no room for those is refused before anything is written (as a name over the limit
    is), not half-written with git's ``index.lock`` left behind."""
    repo = checkout
    limit = os.pathconf(repo, "PC_NAME_MAX")
    head = git(repo, "rev-parse", REF)
    too_long = "procedures/x/" + "n" * (limit - 13 - 3 + 1) + ".py"
    with GitStore(repo) as store, pytest.raises(UnsafePathError) as info:
        write(store, {too_long: b"x = 1\n"})
    assert info.value.exit_code == EXIT_USAGE and "nothing was written" in str(info.value)
    assert git(repo, "rev-parse", REF) == head
    assert not (repo / ".git/index.lock").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    fits = "procedures/x/" + "n" * (limit - 13 - 3) + ".py"
    with GitStore(repo) as store:
        write(store, {fits: b"x = 1\n"})
    assert git(repo, "show", f"{REF}:{fits}") == "x = 1\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("mover", ["in-process", "git"])
def test_a_head_that_is_a_symbolic_link_is_read_as_the_ref_it_names(
    checkout: Path, mover: str
) -> None:
    """git still reads a ``HEAD`` that is a symbolic link to ``refs/heads/x`` (what
    ``core.preferSymlinkRefs`` made) as a symbolic ref. The branch is then checked out:
    a write brings the work tree and index with it (no staged revert for a plain
    ``git commit``), and the ref's move logs HEAD's reflog line as git's does."""
    repo = checkout
    if mover == "git":  # a reference-transaction hook leaves every move to git
        hook = repo / ".git/hooks/reference-transaction"
        hook.write_text("#!/bin/sh\n")
        hook.chmod(0o755)
    (repo / ".git/HEAD").unlink()
    os.symlink("refs/heads/main", repo / ".git/HEAD")
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main\n"
    lines = len(git(repo, "reflog", "show", "HEAD").splitlines())
    with GitStore(repo) as store:
        assert store.head_ref() == REF
        write(store, {"procedures/greet/main.py": b"print(1)\n"})
        write(store, {"procedures/greet/main.py": b"print(2)\n"})
    assert (repo / "procedures/greet/main.py").read_bytes() == b"print(2)\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert len(git(repo, "reflog", "show", "HEAD").splitlines()) == lines + 2
    assert (repo / ".git/HEAD").is_symlink()


@pytest.mark.parametrize("shape", ["wide", "deep"])
def test_a_write_to_many_folders_keeps_few_descriptors(
    checkout: Path, tmp_path: Path, shape: str
) -> None:
    """A write keeps the folders it walked to open, but only so many descriptors: one
    touching 300 folders, or 20 folders 16 deep, works under a limit of 256 open files,
    as git's own would."""
    if shape == "wide":
        paths = "f'procedures/p{i}/src/main.py' for i in range(300)"
    else:
        paths = "f'procedures/p{i}/' + 'd/' * 16 + 'main.py' for i in range(20)"
    script = tmp_path / "many.py"
    script.write_text(
        "import resource, sys\n"
        "from proctor.store import Change, GitStore, format_ident\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit("
        "resource.RLIMIT_NOFILE)[1]))\n"
        f"edits = dict.fromkeys(({paths}), b'x = 1\\n')\n"
        "with GitStore(sys.argv[1]) as store:\n"
        "    store.write('refs/heads/main', lambda _t: Change(edits=edits, message='many'),\n"
        "                author=format_ident('A', 'a@example.com'))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script), str(checkout)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    last = (
        "procedures/p299/src/main.py"
        if shape == "wide"
        else "procedures/p19/" + "d/" * 16 + "main.py"
    )
    assert git(checkout, "show", f"{REF}:{last}") == "x = 1\n"
    assert git(checkout, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("side", [".main.py.proctor-tmp", ".main.py.proctor-old"])
def test_a_file_under_a_name_a_write_uses_is_not_removed(checkout: Path, side: str) -> None:
    """A work-tree file is written by way of two names beside it (its temporary file and
    its backup). A file of the user's under one of them is not removed or replaced: the
    write is refused, naming it, before anything is written."""
    repo = checkout
    with GitStore(repo) as store:
        write(store, {"procedures/x/main.py": b"x = 1\n"})
    mine = repo / "procedures/x" / side
    mine.write_text("mine\n")
    head = git(repo, "rev-parse", REF)
    with GitStore(repo) as store, pytest.raises(UnsafePathError) as info:
        write(store, {"procedures/x/main.py": b"x = 2\n"})
    assert info.value.exit_code == EXIT_USAGE and side in str(info.value)
    assert mine.read_text() == "mine\n"
    assert git(repo, "rev-parse", REF) == head
    assert (repo / "procedures/x/main.py").read_text() == "x = 1\n"
    assert not (repo / ".git/index.lock").exists()


def test_a_change_naming_a_file_as_a_write_names_its_temporary_file_is_refused(
    checkout: Path,
) -> None:
    """The names a write makes beside a file are proctor's: a change that would commit a
    file under one of them (which writing its neighbour would remove) is refused."""
    repo = checkout
    head = git(repo, "rev-parse", REF)
    for side in (".main.py.proctor-tmp", ".main.py.proctor-old"):
        edits: dict[str, bytes | None] = {
            "procedures/x/main.py": b"x = 1\n",
            f"procedures/x/{side}": b"mine\n",
        }
        with GitStore(repo) as store, pytest.raises(UnsafePathError) as info:
            write(store, edits)
        assert info.value.exit_code == EXIT_USAGE and side in str(info.value)
    assert git(repo, "rev-parse", REF) == head
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_committed_file_named_like_a_backup_can_still_be_deleted(checkout: Path) -> None:
    """Only a change that touches a file together with the name it is written by is
    refused: a committed file that merely looks like a backup (of no file the change
    writes) is deleted like any other."""
    repo = checkout
    odd = "procedures/x/.notes.proctor-old"
    with GitStore(repo) as store:
        write(store, {"procedures/x/main.py": b"x = 1\n", odd: b"notes\n"})
        write(store, {"procedures/x/main.py": None, odd: None})
    assert git(repo, "ls-tree", "-r", "--name-only", REF, "procedures") == ""
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
