"""Honest outcomes: once the ref moved a write is applied, and what did not follow is a
warning naming the repair; before that, an error means nothing was written. Full disks
are real (``RLIMIT_FSIZE`` in a child process), kills are real (SIGKILL from git's
reference-transaction hook), half-done git operations are real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import IDENTITY, git

from proctor.core.errors import EXIT_USAGE, StoreError
from proctor.store import Change, GitStore, format_ident, journal
from proctor.store.errors import JournalError, MissingWorkTreeError, OperationInProgressError

REF = "refs/heads/main"
AUTHOR = format_ident("Test Author", "author@example.com")

LIMITED_WRITER = r"""
import json, resource, sys
from proctor.store import Change, GitStore, format_ident
from proctor.core.errors import ProctorError

repo, limit, path, size, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
data = b"x" * size if kind == "compressible" else __import__("os").urandom(size)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
with GitStore(repo) as store:
    try:
        r = store.write("refs/heads/main", lambda _t: Change(edits={path: data}, message="big"),
                        author=format_ident("Writer", "writer@example.com"))
        print(json.dumps({"commit": r.commit, "warnings": r.warnings, "synced": r.synced}))
    except ProctorError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                          "exit": exc.exit_code}))
"""

KILL_HOOK = """#!/bin/sh
# SIGKILL the writer at one state of its ref transaction: "prepared" (the ref is locked,
# not moved) or "committed" (the ref moved).
if [ "$1" = "$KILL_AT" ] && [ -n "$KILL_PID" ]; then kill -9 "$KILL_PID"; sleep 1; fi
exit 0
"""

KILLED_WRITER = r"""
import os, sys
os.environ["KILL_PID"] = str(os.getpid())
from proctor.store import Change, GitStore, format_ident
with GitStore(sys.argv[1]) as store:
    store.write("refs/heads/main",
                lambda _t: Change(edits={"procedures/a/main.py": b"new\n"}, message="m"),
                author=format_ident("Writer", "writer@example.com"))
sys.exit("still alive after the ref moved")
"""


def child_env() -> dict[str, str]:
    return {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture
def checkout(repo: Path) -> Path:
    (repo / "README.md").write_text("store\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def leftovers(repo: Path) -> list[str]:
    """Temporary files a write must never leave behind, on any path."""
    found = [str(p) for p in (repo / ".git/objects").rglob("tmp_obj_*")]
    found += [str(p) for p in repo.rglob("*.proctor-tmp")]
    found += [str(p) for p in repo.rglob("*.proctor-old")]
    found += [str(p) for p in (repo / ".git").glob("index.proctor-*")]
    return found


def run_limited(repo: Path, tmp_path: Path, limit: int, size: int, kind: str) -> dict:
    script = tmp_path / "limited.py"
    script.write_text(LIMITED_WRITER)
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(repo),
            str(limit),
            "procedures/big/main.py",
            str(size),
            kind,
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_full_disk_before_the_ref_moved_writes_nothing(checkout: Path, tmp_path: Path) -> None:
    """The objects do not fit (a file size limit, as a full disk would): an error saying
    nothing was written, the ref where it was, no temporary object left."""
    repo = checkout
    head = git(repo, "rev-parse", REF)
    out = run_limited(repo, tmp_path, limit=64 * 1024, size=1024 * 1024, kind="random")
    assert out.get("error") == "StoreError", out
    assert "nothing was written" in out["message"]
    assert git(repo, "rev-parse", REF) == head
    assert leftovers(repo) == []
    assert not (repo / ".git/index.lock").exists()
    assert not journal.pending(str(repo / ".git"))
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_full_disk_in_the_work_tree_writes_nothing(checkout: Path, tmp_path: Path) -> None:
    """The objects fit, the work-tree file does not: the work tree and index are changed
    before the ref moves, so the write is put back and nothing was written (no commit
    that the work tree does not show)."""
    repo = checkout
    head = git(repo, "rev-parse", REF)
    out = run_limited(repo, tmp_path, limit=64 * 1024, size=1024 * 1024, kind="compressible")
    assert out.get("error") == "StoreError", out
    assert "nothing was written" in out["message"]
    assert git(repo, "rev-parse", REF) == head
    assert leftovers(repo) == []
    assert not (repo / ".git/index.lock").exists()
    assert not journal.pending(str(repo / ".git"))
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def kill_at(
    repo: Path,
    tmp_path: Path,
    state: str,
    work_tree: Path | None = None,
    git_dir: Path | None = None,
) -> None:
    """Run KILLED_WRITER (in ``work_tree``, the repository's own by default) with git's
    reference-transaction hook killing it at ``state``; ``git_dir`` when it is not the
    repository's ``.git``."""
    git_dir = git_dir or repo / ".git"
    hook = git_dir / "hooks/reference-transaction"
    hook.write_text(KILL_HOOK)
    hook.chmod(0o755)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER)
    proc = subprocess.run(
        [sys.executable, str(script), str(work_tree or repo)],
        capture_output=True,
        env={**child_env(), "KILL_AT": state},
        timeout=60,
    )
    hook.unlink()
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # The orphaned ``git update-ref`` finishes its hook, then ends (taking its ref lock).
    deadline = time.monotonic() + 10
    while (git_dir / "refs/heads/main.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def killed_with_git_dir_apart(tmp_path: Path) -> Path:
    """A work tree whose git dir is ``tmp_path/gitdir`` (``--separate-git-dir``), seeded,
    with a write to it killed before its ref moved."""
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", "gitdir", "wt")
    wt = seeded(tmp_path / "wt")
    kill_at(wt, tmp_path, "prepared", git_dir=tmp_path / "gitdir")
    return wt


def seeded(repo: Path) -> Path:
    with GitStore(repo) as store:
        store.write(
            REF,
            lambda _t: Change(edits={"procedures/a/main.py": b"old\n"}, message="m"),
            author=AUTHOR,
        )
    return repo


def refused(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    user = subprocess.run(
        ["git", "commit", "-a", "-q", "-m", "user"], cwd=repo, capture_output=True, text=True
    )
    assert user.returncode != 0 and "index.lock" in user.stderr
    assert git(repo, "rev-parse", "HEAD") == head


def test_sigkill_after_the_ref_moved(checkout: Path, tmp_path: Path) -> None:
    """Killed the instant the ref moved: the work tree and index already hold the commit
    (so no revert can be committed from them); the stale lock keeps git from writing
    the index until the next operation cleans up."""
    repo = seeded(checkout)
    kill_at(repo, tmp_path, "committed")
    assert git(repo, "show", "HEAD:procedures/a/main.py") == "new\n"
    assert (repo / "procedures/a/main.py").read_text() == "new\n"
    assert git(repo, "show", ":procedures/a/main.py") == "new\n"  # the index
    assert (repo / ".git/index.lock").exists()
    refused(repo)
    with GitStore(repo) as store:
        result = store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert result.warnings == []
    assert (repo / "procedures/a/main.py").read_text() == "new\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert leftovers(repo) == [] and not (repo / ".git/index.lock").exists()


def test_sigkill_before_the_ref_moved_is_rolled_back(checkout: Path, tmp_path: Path) -> None:
    """Killed with the work tree and index written but the ref not moved: git cannot
    commit what the index holds, and a read puts the work tree and index back."""
    repo = seeded(checkout)
    head = git(repo, "rev-parse", REF)
    kill_at(repo, tmp_path, "prepared")
    assert git(repo, "rev-parse", REF) == head
    assert (repo / "procedures/a/main.py").read_text() == "new\n"  # written, not committed
    refused(repo)
    with GitStore(repo) as store:
        done = store.recover(REF)
    assert done.rolled_back and done.fixed == ["procedures/a/main.py"] and done.warnings == []
    assert (repo / "procedures/a/main.py").read_text() == "old\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert leftovers(repo) == [] and not (repo / ".git/index.lock").exists()
    assert git(repo, "rev-parse", REF) == head


def test_rollback_keeps_what_the_user_changed_since(checkout: Path, tmp_path: Path) -> None:
    repo = seeded(checkout)
    kill_at(repo, tmp_path, "prepared")
    (repo / "procedures/a/main.py").write_text("mine\n")
    with GitStore(repo) as store:
        done = store.recover(REF)
    [warning] = done.warnings
    assert "procedures/a/main.py" in warning and ".main.py.proctor-old" in warning
    assert (repo / "procedures/a/main.py").read_text() == "mine\n"
    assert (repo / "procedures/a/.main.py.proctor-old").read_text() == "old\n"


def test_lost_compare_and_swap_puts_the_work_tree_back_and_rebuilds(checkout: Path) -> None:
    """The ref moves (a writer that takes no index lock) after the work tree and index
    were staged: they are put back, the change is rebuilt on the new tip, and lands."""
    repo = seeded(checkout)
    seen: list[str] = []

    class Racing(GitStore):
        def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
            if not seen:
                seen.append((repo / "procedures/a/main.py").read_text())
                tip = git(repo, "rev-parse", REF).strip()
                other = git(repo, "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", "other")
                git(repo, "update-ref", REF, other.strip(), tip)
            super().update_refs(updates, reason)

    with Racing(repo) as store:
        result = store.write(
            REF,
            lambda _t: Change(edits={"procedures/a/main.py": b"new\n"}, message="m"),
            author=AUTHOR,
        )
    assert seen == ["new\n"]  # staged before the ref moved
    assert result.attempts == 2
    assert git(repo, "log", "-1", "--format=%s", f"{REF}~1").strip() == "other"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert leftovers(repo) == []


def test_unreadable_journal_is_reported_not_deleted(checkout: Path) -> None:
    repo = checkout
    with GitStore(repo) as store:
        store.write(REF, lambda _t: Change(edits={"f": b"1"}, message="m"), author=AUTHOR)
        path = journal.path(store.common_dir, REF)
        path.write_text("{not json")
        done = store.recover(REF)
        assert len(done.warnings) == 1 and str(path) in done.warnings[0]
        assert path.exists()
        head = git(repo, "rev-parse", REF)
        with pytest.raises(JournalError) as info:
            store.write(REF, lambda _t: Change(edits={"f": b"2"}, message="m"), author=AUTHOR)
        assert str(path) in str(info.value) and "remove" in str(info.value)
        assert isinstance(info.value, StoreError)
        assert path.exists()
        assert git(repo, "rev-parse", REF) == head
        path.unlink()
        store.write(REF, lambda _t: Change(edits={"f": b"2"}, message="m"), author=AUTHOR)


def conflict(repo: Path, command: list[str]) -> None:
    """Leave ``command`` (a merge, cherry-pick or revert of a conflicting change) half done."""
    (repo / "c.txt").write_text("base\n")
    git(repo, "add", "c.txt")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "switch", "-q", "-c", "side")
    (repo / "c.txt").write_text("side\n")
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "switch", "-q", "main")
    (repo / "c.txt").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main")
    proc = subprocess.run(["git", *command], cwd=repo, capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (["merge", "side"], "merge"),
        (["cherry-pick", "side"], "cherry-pick"),
        (["revert", "--no-edit", "HEAD~1"], "revert"),
        (["rebase", "side"], "rebase"),
    ],
)
def test_write_refused_while_an_operation_is_in_progress(
    checkout: Path, command: list[str], what: str
) -> None:
    repo = checkout
    conflict(repo, command)
    before = (git(repo, "rev-parse", REF), git(repo, "status", "--porcelain"))
    with GitStore(repo) as store:
        with pytest.raises(OperationInProgressError, match=what) as info:
            store.write(
                REF,
                lambda _t: Change(edits={"procedures/x/main.py": b"x"}, message="m"),
                author=AUTHOR,
            )
    assert info.value.exit_code == EXIT_USAGE
    assert "--abort" in str(info.value) and "nothing was written" in str(info.value)
    assert (git(repo, "rev-parse", REF), git(repo, "status", "--porcelain")) == before
    assert not (repo / "procedures").exists()


def test_recovery_warnings_ride_on_the_next_write(checkout: Path, tmp_path: Path) -> None:
    """What a recovery could not put back is told on the next write's result."""
    repo = seeded(checkout)
    kill_at(repo, tmp_path, "prepared")
    (repo / "procedures/a/main.py").write_text("mine\n")
    with GitStore(repo) as store:
        result = store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert result.commit and any("procedures/a/main.py" in w for w in result.warnings)
    assert (repo / "procedures/a/main.py").read_text() == "mine\n"


@pytest.mark.parametrize("state", ["prepared", "committed"])
def test_a_journal_of_a_work_tree_since_removed_does_not_stop_writes(
    checkout: Path, tmp_path: Path, state: str
) -> None:
    """A write killed while syncing a linked work tree leaves a journal naming it; once
    that work tree is removed (``git worktree remove``) there is nothing left to finish
    or put back. The next write says so in a warning and goes on, instead of failing on
    the missing folder every time."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    kill_at(repo, tmp_path, state, linked)
    assert journal.pending(str(repo / ".git"))
    git(repo, "worktree", "remove", "--force", str(linked))
    with GitStore(repo) as store:
        result = store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert any(str(linked) in w and "gone" in w for w in result.warnings), result.warnings
    assert not journal.pending(str(repo / ".git"))
    killed_landed = git(repo, "show", f"{REF}:procedures/a/main.py")
    assert killed_landed == ("new\n" if state == "committed" else "old\n")
    assert git(repo, "show", f"{REF}:procedures/b/main.py") == "b\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("how", ["folder gone", "empty mount point"])
def test_a_branch_checked_out_in_a_work_tree_that_is_not_there_is_not_moved(
    checkout: Path, tmp_path: Path, how: str
) -> None:
    """A linked work tree whose folder is gone but whose git dir git keeps (unmounted,
    or deleted without ``git worktree prune``) still has the branch checked out: a write
    is refused, naming it and the fix, as ``git branch -f`` refuses, rather than leave
    that work tree's index behind for a ``git commit`` there to revert. A write killed
    while syncing it waits for it too; once it is back, both go on."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    kill_at(repo, tmp_path, "prepared", linked)
    head = git(repo, "rev-parse", REF)
    away = tmp_path / "away"
    linked.rename(away)  # unmounted
    if how == "empty mount point":
        linked.mkdir()
    with GitStore(repo) as store:
        recovery = store.recover(REF)
        assert any(str(linked) in w and "not there" in w for w in recovery.warnings)
        with pytest.raises(MissingWorkTreeError) as info:
            store.write(
                REF,
                lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
                author=AUTHOR,
            )
    assert info.value.exit_code == EXIT_USAGE
    assert str(linked) in str(info.value) and "git worktree prune" in str(info.value)
    assert git(repo, "rev-parse", REF) == head
    assert journal.pending(str(repo / ".git"))
    if how == "empty mount point":
        assert list(linked.iterdir()) == []  # nothing was written into it
        linked.rmdir()
    away.rename(linked)  # mounted again
    with GitStore(repo) as store:
        assert store.recover(REF).rolled_back
        store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert git(linked, "status", "--porcelain", "--untracked-files=all") == ""
    assert (linked / "procedures/b/main.py").read_text() == "b\n"


def test_a_long_lived_store_finds_a_work_tree_git_moved(checkout: Path, tmp_path: Path) -> None:
    """``git worktree move`` keeps the work tree's name and changes where it is: a store
    opened before finds it where it is now, for every write after."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    first, second = tmp_path / "first", tmp_path / "second"
    git(repo, "worktree", "add", "-q", str(first), "main")

    def update(store: GitStore, text: bytes) -> None:
        store.write(
            REF, lambda _t: Change(edits={"procedures/a/main.py": text}, message="m"), author=AUTHOR
        )

    with GitStore(repo) as store:
        update(store, b"one\n")
        git(repo, "worktree", "move", str(first), str(second))
        update(store, b"two\n")
    assert (second / "procedures/a/main.py").read_text() == "two\n"
    assert git(second, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_journal_follows_its_work_tree_to_where_git_says_it_is_now(
    checkout: Path, tmp_path: Path
) -> None:
    """A write killed while syncing a linked work tree, which then comes back elsewhere
    (a volume mounted at another place, then ``git worktree repair``): the journal is
    finished there, not kept for the old place, nor written over by the next write."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    linked, elsewhere = tmp_path / "linked", tmp_path / "elsewhere"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    kill_at(repo, tmp_path, "prepared", linked)
    head = git(repo, "rev-parse", REF)
    linked.rename(elsewhere)
    git(elsewhere, "worktree", "repair")
    with GitStore(repo) as store:
        store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert git(repo, "rev-parse", f"{REF}~1") == head  # the killed write did not land
    assert not journal.pending(str(repo / ".git"))
    assert (elsewhere / "procedures/a/main.py").read_text() == "old\n"
    assert git(elsewhere, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_kept_journal_is_never_written_over(checkout: Path, tmp_path: Path) -> None:
    """A journal kept for a work tree that is not there is what lets that work tree be
    put right when it is back: a write to the branch from another work tree (git lets
    one check it out twice when told to) is refused rather than replace it."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    kill_at(repo, tmp_path, "prepared", linked)
    linked.rename(tmp_path / "away")
    git(repo, "switch", "-q", "--ignore-other-worktrees", "main")
    head = git(repo, "rev-parse", REF)
    with GitStore(repo) as store, pytest.raises(MissingWorkTreeError) as info:
        store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert info.value.exit_code == EXIT_USAGE and str(linked) in str(info.value)
    assert git(repo, "rev-parse", REF) == head
    record = journal.load(str(repo / ".git"), REF)
    assert record is not None and record.work_tree == str(linked)


def test_a_journal_never_touches_a_work_tree_added_since_under_the_same_name(
    checkout: Path, tmp_path: Path
) -> None:
    """A write killed while syncing a linked work tree that is then lost and pruned; git
    gives the next work tree added with the same folder name the same place for its git
    dir. The journal is not that work tree's: it is dropped, and that work tree left
    exactly as it is."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    git(repo, "branch", "feature")
    lost = tmp_path / "vol" / "linked"
    lost.parent.mkdir()
    git(repo, "worktree", "add", "-q", str(lost), "main")
    kill_at(repo, tmp_path, "prepared", lost)
    admin = repo / ".git/worktrees/linked"
    assert admin.is_dir()
    shutil.rmtree(lost.parent)  # the volume is lost
    git(repo, "worktree", "prune")
    again = tmp_path / "other" / "linked"
    again.parent.mkdir()
    git(repo, "worktree", "add", "-q", str(again), "feature")
    assert admin.is_dir()  # the same name again
    with GitStore(repo) as store:
        recovery = store.recover(REF)
    assert any("gone" in w for w in recovery.warnings), recovery.warnings
    assert not journal.pending(str(repo / ".git"))
    assert git(again, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_journal_follows_a_main_work_tree_moved_away_from_its_git_dir(
    tmp_path: Path,
) -> None:
    """A work tree whose git dir is elsewhere (``--separate-git-dir``) moves with nothing
    to repair: git finds it where it is. A write killed there before the move is rolled
    back where the work tree is now, and writes go on."""
    wt = killed_with_git_dir_apart(tmp_path)
    moved = tmp_path / "moved"
    wt.rename(moved)
    with GitStore(moved) as store:
        store.write(
            REF,
            lambda _t: Change(edits={"procedures/b/main.py": b"b\n"}, message="m"),
            author=AUTHOR,
        )
    assert (moved / "procedures/a/main.py").read_text() == "old\n"
    assert git(moved, "status", "--porcelain", "--untracked-files=all") == ""
    assert not journal.pending(str(tmp_path / "gitdir"))


def test_a_journal_of_a_moved_main_work_tree_is_not_followed_into_a_linked_one(
    tmp_path: Path,
) -> None:
    """The main work tree (its git dir kept apart) is moved away with a write owed to it;
    proctor is then run from a linked work tree of another branch. That is not where the
    main work tree went: it is left as it is, and the journal kept."""
    wt = killed_with_git_dir_apart(tmp_path)
    git(wt, "branch", "feature")
    linked = tmp_path / "linked"
    git(wt, "worktree", "add", "-q", str(linked), "feature")
    wt.rename(tmp_path / "away")
    with GitStore(linked) as store:
        recovery = store.recover(REF)
    assert recovery.kept_for == str(wt)
    assert git(linked, "status", "--porcelain", "--untracked-files=all") == ""
    assert journal.pending(str(tmp_path / "gitdir"))


@pytest.mark.parametrize("then", ["moved, repaired, lock removed by hand", "pruned, added again"])
def test_a_journal_tells_a_moved_work_tree_from_a_new_one_in_its_place(
    checkout: Path, tmp_path: Path, then: str
) -> None:
    """A work tree moved and repaired is the same work tree (its write is put right
    there, even with index.lock removed by hand as git suggests); one pruned and added
    again at the same place, on another branch, is a new one (left as it is, however
    the file system reuses the old one's inodes)."""
    repo = seeded(checkout)
    git(repo, "switch", "-q", "-c", "other")
    git(repo, "branch", "feature")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    kill_at(repo, tmp_path, "prepared", linked)
    admin = repo / ".git/worktrees/linked"
    if then.startswith("moved"):
        moved = tmp_path / "moved"
        linked.rename(moved)
        git(moved, "worktree", "repair")
        (admin / "index.lock").unlink()
        with GitStore(repo) as store:
            recovery = store.recover(REF)
        assert recovery.rolled_back and not any("gone" in w for w in recovery.warnings)
        assert (moved / "procedures/a/main.py").read_text() == "old\n"
        assert git(moved, "status", "--porcelain", "--untracked-files=all") == ""
    else:
        shutil.rmtree(linked)
        git(repo, "worktree", "prune")
        git(repo, "worktree", "add", "-q", str(linked), "feature")
        with GitStore(repo) as store:
            recovery = store.recover(REF)
        assert any("gone" in w for w in recovery.warnings), recovery.warnings
        assert git(linked, "status", "--porcelain", "--untracked-files=all") == ""
    assert not journal.pending(str(repo / ".git"))


def test_a_journal_follows_a_repository_moved_as_a_whole(checkout: Path, tmp_path: Path) -> None:
    """A write killed before its ref moved, then the whole repository moved (``mv``): the
    journal's paths are the old ones, but it is the same repository. The write is rolled
    back where the repository is now (no aborted write left staged behind index.lock)."""
    repo = seeded(checkout)
    head = git(repo, "rev-parse", REF)
    kill_at(repo, tmp_path, "prepared")
    moved = tmp_path / "moved"
    repo.rename(moved)
    with GitStore(moved) as store:
        recovery = store.recover(REF)
    assert recovery.rolled_back, recovery
    assert git(moved, "rev-parse", REF) == head
    assert (moved / "procedures/a/main.py").read_text() == "old\n"
    assert not (moved / ".git/index.lock").exists()
    assert git(moved, "status", "--porcelain", "--untracked-files=all") == ""
