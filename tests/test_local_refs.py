"""A branch moved in-process (``refs.LocalRefs``) against the same move made by git.

Each comparison runs the same writes in two repositories built alike: one where proctor
moves the branch itself, one where a ``reference-transaction`` hook (which only notes
that it ran) makes proctor leave the move to ``git update-ref``, as it must for a hook.
The refs, the reflogs (which files, which lines) and their modes must come out the same.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git

from proctor.core.errors import ProctorError
from proctor.store import Change, GitStore, format_ident
from proctor.store.locks import writer_lock
from proctor.store.refs import CasLost

AUTHOR = format_ident("Test Author", "author@example.com")
REF = "refs/heads/main"


def write(store: GitStore, n: int) -> str:
    edits: dict[str, bytes | None] = {f"procedures/p{n % 2}/main.py": f"x = {n}\n".encode()}
    change = Change(edits=edits, message=f"write {n}")
    return store.write(REF, lambda _tip: change, author=AUTHOR).commit


def make_repo(path: Path, bare: bool, config: dict[str, str], hooked: bool) -> Path:
    git(path.parent, "init", "-q", "-b", "main", *(["--bare"] if bare else []), path.name)
    for key, value in config.items():
        git(path, "config", key, value)
    if hooked:
        git_dir = path if bare else path / ".git"
        hook = git_dir / "hooks" / "reference-transaction"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(f'#!/bin/sh\necho "$1" >> "{path.parent}/{path.name}.hook-ran"\n')
        hook.chmod(0o755)
    return path


def reflogs(repo: Path, bare: bool) -> dict[str, object]:
    """The refs and reflogs, with object ids as their place in main's history and the
    times taken out (the two repositories' commits differ by their time stamps)."""
    git_dir = repo if bare else repo / ".git"
    order = git(repo, "rev-list", "--reverse", REF).split()
    label = {sha: f"c{i + 1}" for i, sha in enumerate(order)} | {"0" * 40: "zero"}
    out: dict[str, object] = {}
    ref_file = git_dir / REF
    out["ref"] = (label[ref_file.read_text().strip()], ref_file.read_text().endswith("\n"))
    out["ref mode"] = stat.filemode(ref_file.stat().st_mode)
    for path in sorted((git_dir / "logs").rglob("*")) if (git_dir / "logs").exists() else []:
        name = str(path.relative_to(git_dir))
        if path.is_dir():
            out[name] = stat.filemode(path.stat().st_mode)
            continue
        lines = []
        for line in path.read_text().splitlines():
            old, new, rest = line.split(" ", 2)
            lines.append((label[old], label[new], re.sub(r"> \d+ [+-]\d{4}\t", "> TIME\t", rest)))
        out[name] = (stat.filemode(path.stat().st_mode), lines)
    return out


CASES = {
    "work tree": (False, {}),
    "bare": (True, {}),
    "reflogs off": (False, {"core.logAllRefUpdates": "false"}),
    "reflogs always, bare": (True, {"core.logAllRefUpdates": "always"}),
    "shared with the group": (False, {"core.sharedRepository": "group"}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("reflogs_before", ["kept", "removed", "one left empty"])
def test_a_branch_moved_in_process_leaves_the_refs_and_reflogs_git_leaves(
    tmp_path: Path, case: str, reflogs_before: str
) -> None:
    bare, config = CASES[case]
    results = {}
    for hooked in (True, False):
        repo = make_repo(tmp_path / ("git" if hooked else "local"), bare, config, hooked)
        with GitStore(repo) as store:
            write(store, 1)  # the branch's first commit: a creation, always git's
            store.close()  # its update-ref process: a later one means git moved the ref
            logs = Path(store.common_dir) / "logs"
            if reflogs_before != "kept":  # made again where git makes them, with its modes
                shutil.rmtree(logs, ignore_errors=True)
            if reflogs_before == "one left empty":  # git appends to it, whatever the setting
                (logs / REF).parent.mkdir(parents=True)
                (logs / REF).touch()
            for n in (2, 3):
                write(store, n)
            moved_here = not store._updaters  # no update-ref process was needed
        results[hooked] = reflogs(repo, bare)
        assert moved_here is not hooked
    assert (tmp_path / "git.hook-ran").read_text().count("committed") == 3
    assert not (tmp_path / "local.hook-ran").exists()
    assert results[False] == results[True]
    assert results[False]["ref"] == ("c3", True)


def test_a_move_from_a_value_the_ref_no_longer_has_is_lost_and_leaves_no_lock(repo: Path) -> None:
    with GitStore(repo) as store:
        first = write(store, 1)
        second = write(store, 2)
        store.close()
        log = (repo / ".git/logs" / REF).read_bytes()
        head_log = (repo / ".git/logs/HEAD").read_bytes()
        with writer_lock(store.common_dir, REF), pytest.raises(CasLost):
            store.update_refs([(REF, first, first)], "proctor: test")
        assert not store._updaters
    assert git(repo, "rev-parse", REF).strip() == second
    assert not (repo / ".git" / (REF + ".lock")).exists()
    assert not (repo / ".git/HEAD.lock").exists()
    assert (repo / ".git/logs" / REF).read_bytes() == log
    assert (repo / ".git/logs/HEAD").read_bytes() == head_log


def test_two_stores_writing_in_turns_each_build_on_the_others_commit(repo: Path) -> None:
    """A store whose view of the tip is stale loses the compare-and-swap in-process and
    builds again on the new tip: no update lost, the history a straight line."""
    with GitStore(repo) as one, GitStore(repo) as two:
        write(one, 0)
        one.close()
        for n in range(1, 9):
            write(one if n % 2 else two, n)
        assert not one._updaters and not two._updaters
    history = git(repo, "log", "--format=%s", REF).split("\n")[:-1]
    assert history == [f"write {n}" for n in range(8, -1, -1)]
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("held", [REF + ".lock", "HEAD.lock"])
def test_a_lock_another_writer_holds_is_left_to_git_and_nothing_moves(
    repo: Path, held: str
) -> None:
    """A held lock is git's to report: the ref stays, the holder's lock is untouched."""
    with GitStore(repo) as store:
        tip = write(store, 1)
        log = (repo / ".git/logs" / REF).read_bytes()
        lock = repo / ".git" / held
        lock.write_text("someone else's\n")
        with pytest.raises(ProctorError):
            write(store, 2)
        assert lock.read_text() == "someone else's\n"
        lock.unlink()
        assert git(repo, "rev-parse", REF).strip() == tip
        assert (repo / ".git/logs" / REF).read_bytes() == log
        assert not (repo / ".git" / (REF + ".lock")).exists()
        assert git(repo, "status", "--porcelain") == ""
        write(store, 3)  # and the next write moves it again
    assert git(repo, "log", "-1", "--format=%s", REF).strip() == "write 3"


def _hooks_path(repo: Path) -> None:
    (repo / "hooks").mkdir()
    hook = repo / "hooks" / "reference-transaction"
    hook.write_text(f'#!/bin/sh\necho "$1" >> "{repo.parent}/ran"\n')
    hook.chmod(0o755)
    git(repo, "config", "core.hooksPath", "hooks")


def _linked(repo: Path) -> Path:
    git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    git(repo, "worktree", "add", "-q", "-b", "side", str(repo.parent / "linked"))
    return repo.parent / "linked"


@pytest.mark.parametrize("setup", ["core.hooksPath", "core.fsync", "linked", "committer date"])
def test_a_move_git_must_make_is_made_by_git(
    repo: Path, setup: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = repo
    if setup == "core.hooksPath":
        _hooks_path(repo)
    elif setup == "core.fsync":
        git(repo, "config", "core.fsync", "reference")
    elif setup == "linked":
        where = _linked(repo)
    else:
        monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-02T03:04:05+0100")
    ref = "refs/heads/side" if setup == "linked" else REF
    with GitStore(where) as store:
        for n in (1, 2):
            change = Change(edits={"f": f"{n}\n".encode()}, message=f"write {n}")
            store.write(ref, lambda _tip, change=change: change, author=AUTHOR)
        assert store._updaters, "the move was made in-process"
    assert git(repo, "log", "-1", "--format=%s", ref).strip() == "write 2"
    if setup == "core.hooksPath":
        assert (repo.parent / "ran").read_text().count("committed") == 2
    if setup == "committer date":
        assert "1767319445 +0100\t" in (repo / ".git/logs" / ref).read_text().splitlines()[-1]


def test_a_write_on_a_full_disk_leaves_no_ref_lock(repo: Path) -> None:
    """The ref lock is the last file a write makes before the ref moves: a file size limit
    that stops it leaves no lock behind and the ref where it was."""
    with GitStore(repo) as store:
        tip = write(store, 1)
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "from proctor.store import GitStore, Change, format_ident\n"
        "from proctor.store.locks import writer_lock\n"
        "store = GitStore(sys.argv[1])\n"
        "tip = store.read_ref('refs/heads/main')\n"
        "with writer_lock(store.common_dir, 'refs/heads/main'):\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))\n"
        "    try:\n"
        "        store.update_refs([('refs/heads/main', tip, tip)], 'proctor: test')\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "print('in-process' if not store._updaters else 'git')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(repo)], capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines() == [
        "StoreError cannot move refs/heads/main: File too large",
        "in-process",
    ], proc
    assert git(repo, "rev-parse", REF).strip() == tip
    assert not (repo / ".git" / (REF + ".lock")).exists()


def proc_pid(repo: Path) -> str:
    """The pid of the killed mover, as it left it in ``<repo>.pid``."""
    return (repo.parent / f"{repo.name}.pid").read_text()


KILLED_MOVER = """
import os, signal, sys
from pathlib import Path
from proctor.store import Change, GitStore, format_ident, refs

Path(sys.argv[1] + ".pid").write_text(str(os.getpid()))

where = sys.argv[2]
if where == "draft":  # the ref's lock made under its draft name, not yet in place
    refs.write_all = lambda fd, data: os.kill(os.getpid(), signal.SIGKILL)
elif where == "ref lock":  # the ref's lock in place, the ref not yet compared
    made = refs._make_lock

    def _then_die(kind, *args):
        made(kind, *args)
        os.kill(os.getpid(), signal.SIGKILL)

    refs._make_lock = _then_die
else:  # HEAD.lock taken too, no reflog line written yet
    refs.LocalRefs._log = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
with GitStore(sys.argv[1]) as store:
    store.write(
        "refs/heads/main",
        lambda _tip: Change(edits={"f": b"killed"}, message="killed"),
        author=format_ident("Test Author", "author@example.com"),
    )
"""


@pytest.mark.parametrize("where", ["draft", "ref lock", "HEAD.lock too"])
def test_the_locks_of_a_writer_killed_while_moving_the_ref_are_removed_by_the_next(
    repo: Path, where: str
) -> None:
    """A writer killed between taking the ref's lock and moving the ref leaves its locks,
    as a killed git does. The next write knows them for a dead writer's (their note in
    the writer lock it now holds) and moves the ref; git's own commands work again. A
    lock is made under a draft name, noted before it exists, and only then linked into
    place, so no instant leaves a lock the note does not name."""
    with GitStore(repo) as store:
        tip = write(store, 1)
    proc = subprocess.run([sys.executable, "-c", KILLED_MOVER, str(repo), where])
    assert proc.returncode == -9
    heads = repo / ".git" / "refs" / "heads"
    left = sorted(p.name for p in heads.iterdir() if p.name.endswith(".lock"))
    if where == "draft":
        assert left == [f".main.proctor-{proc_pid(repo)}.lock"], left
        # git's lock of a branch whose name is the draft's without its dot: not proctor's
        theirs = heads / left[0][1:]
        theirs.write_text("")
    else:
        assert left == ["main.lock"]
    assert (repo / ".git/HEAD.lock").exists() is (where == "HEAD.lock too")
    assert git(repo, "rev-parse", REF).strip() == tip
    with GitStore(repo) as store:
        write(store, 2)  # finishes the killed write's work-tree sync, then moves the ref
    assert git(repo, "log", "-1", "--format=%s", REF).strip() == "write 2"
    if where == "draft":
        assert sorted(p.name for p in heads.iterdir()) == ["main", theirs.name]
        theirs.unlink()
    assert [p.name for p in heads.iterdir()] == ["main"]
    assert not [p for p in (repo / ".git").iterdir() if p.name.endswith(".lock")]
    git(repo, "commit", "-q", "--allow-empty", "-m", "plain git")  # takes both locks
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("next_one", ["a read", "a release"])
def test_the_locks_of_a_killed_writer_are_removed_by_the_next_read_or_release(
    repo: Path, next_one: str
) -> None:
    """Not only the next plain write removes a killed writer's ref locks: opening the
    store for a read does (so git's own commands work again before proctor writes), and
    a write that git must move (a commit with its release tag) is not stuck on them."""
    from proctor.store import TagSpec

    with GitStore(repo) as store:
        tip = write(store, 1)
    proc = subprocess.run([sys.executable, "-c", KILLED_MOVER, str(repo), "HEAD.lock too"])
    assert proc.returncode == -9
    assert (repo / ".git" / (REF + ".lock")).exists() and (repo / ".git/HEAD.lock").exists()
    with GitStore(repo) as store:
        store.recover(REF)
        if next_one == "a release":
            change = Change(
                edits={"procedures/p0/main.py": b"x = 9\n"},
                message="release",
                tags=[TagSpec("procedures/p0/v1.0.0", "p0 1.0.0")],
            )
            store.write(REF, lambda _tip: change, author=AUTHOR)
            assert git(repo, "rev-parse", "procedures/p0/v1.0.0^{commit}") == git(
                repo, "rev-parse", REF
            )
        else:
            assert git(repo, "rev-parse", REF).strip() == tip
    assert not (repo / ".git" / (REF + ".lock")).exists()
    assert not (repo / ".git/HEAD.lock").exists()
    git(repo, "commit", "-q", "--allow-empty", "-m", "plain git")  # takes both locks
    assert git(repo, "status", "--porcelain") == ""


def test_a_lock_made_after_a_dead_writers_is_left_to_git(repo: Path) -> None:
    """The note names a file; a lock made since by someone else is not that file, and
    stays (git refuses, nothing moves), whatever the note says."""
    with GitStore(repo) as store:
        tip = write(store, 1)
    proc = subprocess.run([sys.executable, "-c", KILLED_MOVER, str(repo), "ref lock"])
    assert proc.returncode == -9
    lock = repo / ".git" / (REF + ".lock")
    inode = lock.stat().st_ino
    lock.unlink()
    for _ in range(50):  # another git's lock, just made; in the same inode if it comes so
        lock.touch()
        if lock.stat().st_ino == inode:
            break
        lock.unlink()
    else:
        lock.touch()
    with GitStore(repo) as store, pytest.raises(ProctorError):
        store.recover(REF)
        write(store, 2)
    assert lock.exists() and lock.read_bytes() == b""
    assert git(repo, "rev-parse", REF).strip() == tip


def test_an_empty_reason_is_refused_before_anything_moves(repo: Path) -> None:
    """git refuses a ref update with an empty reflog message; a write is refused for it
    before anything is made, whichever way its ref would have moved."""
    from proctor.core.errors import EXIT_USAGE

    with GitStore(repo) as store:
        tip = write(store, 1)
        with pytest.raises(ProctorError) as info:
            store.write(
                REF, lambda _t: Change(edits={"f": b"x"}, message="m"), author=AUTHOR, reason=" "
            )
    assert info.value.exit_code == EXIT_USAGE
    assert git(repo, "rev-parse", REF).strip() == tip


def test_a_file_system_without_hard_links_leaves_the_move_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process lock is linked into place; where the file system has no hard
    links (vfat, some network shares: here made to fail as they fail), git's way,
    an exclusive create, makes the move, and nothing of the attempt is left."""
    import errno
    import os

    repo = make_repo(tmp_path / "bare.git", True, {}, False)

    def no_links(*_args: object, **_kw: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    with GitStore(repo) as store:
        write(store, 1)
        monkeypatch.setattr(os, "link", no_links)
        tip = write(store, 2)
    monkeypatch.undo()
    assert git(repo, "rev-parse", REF).strip() == tip
    assert not [p for p in (repo / "refs/heads").iterdir() if p.name.endswith(".lock")]
