"""A repository several users write to (``core.sharedRepository``).

git makes what it creates in such a repository group-writable (folders set-gid) whatever
the writer's umask; proctor's own files in the git dir (the writer lock, the sync journal,
the new index, metrics, the outbox, the run log and its caches) must be made the same
way, or the first user's proctor locks every other user out of the store. The first test
reads the modes one user's commands leave; the second acts as two users (it needs root
to switch between them) and has each write, run and read what the other made.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN, GREET, git

GROUP = 10000
USERS = (10001, 10002)


def loose_modes(git_dir: Path) -> list[str]:
    """Every file and folder proctor keeps in ``git_dir`` (its state folder and the
    index) that another member of the group could not write, as ``mode path`` lines.
    A read-only file (a lock seed) is read-only for its owner too, as git's objects are."""
    found = []
    paths = [git_dir / "proctor", *(git_dir / "proctor").rglob("*")]
    paths += [p for p in (git_dir / "index",) if p.exists()]
    for path in paths:
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        folder_open = stat.S_ISDIR(st.st_mode) and mode & 0o2070 == 0o2070
        file_open = not stat.S_ISDIR(st.st_mode) and (not mode & 0o200 or mode & 0o060 == 0o060)
        if not (folder_open or file_open):
            found.append(f"{mode:04o} {path.relative_to(git_dir)}")
    return found


def test_proctors_files_in_a_shared_repository_are_made_as_git_makes_its_own(
    tmp_path: Path,
) -> None:
    """One user, umask 022, a repository made with ``git init --shared=group``: after a
    write with a side effect, a run and a cached reply, nothing proctor made in the git
    dir is closed to the group."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", "--shared=group", str(repo))
    (repo / "proctor.toml").write_text('[side-effects.log]\nevents = ["action.*"]\n')
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "Configure a log effect")
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for args in (
        ["procedure", "create", "greet", "--code", str(code)],
        ["run", "greet", "-p", "name=ana"],
    ):
        proc = subprocess.run(
            [str(BIN / "proctor"), *args], cwd=repo, env=env, umask=0o022,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    assert loose_modes(repo / ".git") == []
    old = os.umask(0o022)
    try:
        from proctor.llm.backends import Reply, Request
        from proctor.llm.cache import ResponseCache, default_cache_dir

        cache = ResponseCache(default_cache_dir(repo / ".git"), 0o660)
        request = Request(messages=({"role": "user", "content": "hi"},), model="m")
        cache.put(cache.key_for("fake", request), request, Reply(text="hello"))
    finally:
        os.umask(old)
    names = {p.name for p in (repo / ".git" / "proctor").iterdir()}
    assert {"metrics", "outbox.sqlite", "checked", "llm-cache"} <= names, names
    assert any(n.startswith("write-") for n in names) and any(n.startswith("sync-") for n in names)
    assert loose_modes(repo / ".git") == []


# -- two users ------------------------------------------------------------------------------


class Users:
    """Run commands as the users of ``USERS`` (group ``GROUP``), each with a HOME whose
    git config trusts the repository (``safe.directory``: it is another user's) and names
    the user."""

    def __init__(self, base: Path, umask: int) -> None:
        self.base = base
        self.umask = umask
        self.env_extra: dict[str, str] = {}  # added to the next commands' environment
        for uid in USERS:
            home = base / f"home-{uid}"
            home.mkdir()
            (home / ".gitconfig").write_text(
                f"[safe]\n\tdirectory = *\n[user]\n\tname = User {uid}\n"
                f"\temail = u{uid}@example.com\n"
            )
            os.chown(home, uid, GROUP)

    def run(self, uid: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        umask = self.umask

        def become() -> None:
            os.setgroups([])
            os.setgid(GROUP)
            os.setuid(uid)
            os.umask(umask)

        env = {
            "HOME": str(self.base / f"home-{uid}"),
            "PATH": f"{BIN}:/usr/bin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            **self.env_extra,
        }
        return subprocess.run(
            list(args), cwd=cwd, env=env, preexec_fn=become,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def ok(self, uid: int, *args: str, cwd: Path) -> str:
        proc = self.run(uid, *args, cwd=cwd)
        assert proc.returncode == 0, f"{uid}: {' '.join(args)}\n{proc.stdout}{proc.stderr}"
        return proc.stdout


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A folder other users can reach (pytest's tmp_path is root's alone), removed after."""
    if os.geteuid() != 0:
        pytest.skip("acting as two users needs root")
    probe = subprocess.run(
        [sys.executable, "-c", "import proctor"],
        preexec_fn=lambda: (os.setgroups([]), os.setgid(GROUP), os.setuid(USERS[0])),
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"another user cannot run this interpreter: {probe.stderr.decode()[-200:]}")
    base = Path(tempfile.mkdtemp(prefix="proctor-shared-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize(
    ("layout", "umask"),
    [("bare", 0o022), ("work-tree", 0o002)],
    ids=["bare-umask-022", "work-tree-umask-002"],
)
def test_two_users_write_run_and_read_one_shared_repository(
    shared_base: Path, layout: str, umask: int
) -> None:
    """Two users of one group take turns on a ``--shared=group`` repository: each creates,
    updates the other's procedure and runs it, and every command succeeds (before, the
    second user's first write stopped at the first user's lock file). A bare store with
    the usual umask 022 (a team's server); a checked-out one whose users share a work tree
    with umask 002, as git asks of them, where a plain ``git commit`` goes on after."""
    a, b = USERS
    users = Users(shared_base, umask)
    repo = shared_base / "store"
    repo.mkdir()
    os.chown(repo, a, GROUP)
    bare = ["--bare"] if layout == "bare" else []
    users.ok(a, "git", "init", "-q", "-b", "main", "--shared=group", *bare, ".", cwd=repo)
    code = shared_base / "greet.py"
    code.write_text(GREET)
    code.chmod(0o644)
    users.ok(a, "proctor", "init", cwd=repo)
    users.ok(a, "proctor", "procedure", "create", "one", "--code", str(code), cwd=repo)
    users.ok(b, "proctor", "procedure", "create", "two", "--code", str(code), cwd=repo)
    for uid, name in ((b, "one"), (a, "two")):
        users.ok(uid, "proctor", "procedure", "update", name, "--code", str(code),
                 "--description", f"by {uid}", cwd=repo)  # fmt: skip
    # A file made before the repository was shared (or by an older proctor) names its
    # owner and the fix; the owner's next command shares it.
    git_dir = repo if bare else repo / ".git"
    (lock,) = (git_dir / "proctor").glob("write-*.lock")
    lock.chmod(0o644)
    (git_dir / "proctor").chmod(0o755)
    refused = users.run(b, "proctor", "procedure", "delete", "one", cwd=repo)
    assert refused.returncode == 1, refused.stderr  # failed, as a stale index.lock fails
    assert f"{lock}: permission denied (mode 0644, owner uid {a})" in refused.stderr
    assert "core.sharedRepository" in refused.stderr and "nothing was written" in refused.stderr
    assert "Traceback" not in refused.stderr
    users.ok(a, "proctor", "procedure", "show", "one", cwd=repo)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644  # a read takes no write lock
    users.ok(a, "proctor", "procedure", "update", "one", "--code", str(code),
             "--description", "by the owner", cwd=repo)  # fmt: skip
    assert stat.S_IMODE(lock.stat().st_mode) == 0o664
    assert stat.S_IMODE((git_dir / "proctor").stat().st_mode) == 0o2775
    # Metrics are counted after the commit: the write is applied, the warning says why.
    metrics_lock = git_dir / "proctor" / "metrics" / "lock"
    metrics_lock.chmod(0o644)
    counted = users.run(b, "proctor", "procedure", "update", "one", "--code", str(code),
                        "--description", "metrics aside", cwd=repo)  # fmt: skip
    assert counted.returncode == 0 and "applied" in counted.stdout, counted.stderr
    assert f"permission denied (mode 0644, owner uid {a})" in counted.stderr
    assert "plugin metrics" in counted.stderr and "core.sharedRepository" in counted.stderr
    users.ok(a, "proctor", "run", "one", "-p", "name=a", cwd=repo)
    users.ok(b, "proctor", "run", "one", "-p", "name=b", cwd=repo)
    runs = json.loads(users.ok(a, "proctor", "runs", "one", "--json", cwd=repo))
    rows = runs["runs"] if isinstance(runs, dict) else runs
    assert sorted(r["actor"] for r in rows) == [f"u{a}@example.com", f"u{b}@example.com"]
    authors = users.ok(b, "git", "log", "--format=%ae", "main", cwd=repo).split()
    assert authors.count(f"u{a}@example.com") >= 3 and authors.count(f"u{b}@example.com") == 3
    if not bare:
        assert users.ok(b, "git", "status", "--porcelain", cwd=repo) == ""
        (repo / "notes.txt").write_text("b's notes\n")
        os.chown(repo / "notes.txt", b, GROUP)
        users.ok(b, "git", "add", "notes.txt", cwd=repo)
        users.ok(b, "git", "commit", "-q", "-m", "Notes", cwd=repo)
        users.ok(a, "proctor", "procedure", "update", "two", "--code", str(code),
                 "--description", "again", cwd=repo)  # fmt: skip
        assert users.ok(a, "git", "status", "--porcelain", cwd=repo) == ""
    assert users.ok(b, "git", "fsck", "--strict", "--no-dangling", cwd=repo) == ""
    assert loose_modes(git_dir) == []


def test_a_work_tree_folder_the_user_cannot_write_is_named_and_nothing_is_written(
    shared_base: Path,
) -> None:
    """The work tree is the users' own, as it is for git: a second user whose write needs
    a folder there that only the first may write is refused with that folder's full
    path (the file system names only its last part), exit 1, the branch unmoved."""
    a, b = USERS
    users = Users(shared_base, 0o002)
    repo = shared_base / "store"
    repo.mkdir()
    os.chown(repo, a, GROUP)  # 0755: the checkout's top folder is a's alone
    users.ok(a, "git", "init", "-q", "-b", "main", "--shared=group", ".", cwd=repo)
    code = shared_base / "greet.py"
    code.write_text(GREET)
    code.chmod(0o644)
    users.ok(a, "proctor", "init", cwd=repo)
    head = users.ok(a, "git", "rev-parse", "HEAD", cwd=repo)
    refused = users.run(b, "proctor", "procedure", "create", "greet", "--code", str(code), cwd=repo)
    assert refused.returncode == 1, refused.stderr
    assert f"Permission denied: '{repo}/procedures'" in refused.stderr
    assert "nothing was written" in refused.stderr and "Traceback" not in refused.stderr
    assert users.ok(a, "git", "rev-parse", "HEAD", cwd=repo) == head
    assert users.ok(a, "git", "status", "--porcelain", "--untracked-files=all", cwd=repo) == ""


def test_state_left_by_a_command_run_as_root_names_root_and_the_chown_that_fixes_it(
    shared_base: Path,
) -> None:
    """``sudo proctor ...`` once in a user's repository leaves proctor's state owned by
    root; the user's next write is refused (exit 1, nothing written) with the file or
    folder, its owner, and the ``chown`` that gives it back, which then lets it write."""
    a = USERS[0]
    users = Users(shared_base, 0o022)
    repo = shared_base / "store"
    repo.mkdir()
    os.chown(repo, a, GROUP)
    users.ok(a, "git", "init", "-q", "-b", "main", ".", cwd=repo)
    code = shared_base / "greet.py"
    code.write_text(GREET)
    code.chmod(0o644)
    users.ok(a, "proctor", "procedure", "create", "greet", "--code", str(code), cwd=repo)
    state = repo / ".git" / "proctor"
    (lock,) = state.glob("write-*.lock")
    for path in [state, *state.rglob("*")]:
        os.lchown(path, 0, 0)  # what a command run as root would have made
    head = users.ok(a, "git", "rev-parse", "HEAD", cwd=repo)
    args = ["procedure", "update", "greet", "--code", str(code), "--description", "x"]
    refused = users.run(a, "proctor", *args, cwd=repo)
    assert refused.returncode == 1, refused.stderr
    assert f"{lock}: permission denied (mode 0644, owner uid 0)" in refused.stderr
    assert f"sudo chown -R {a} '{state}'" in refused.stderr
    assert "nothing was written" in refused.stderr and "Traceback" not in refused.stderr
    assert users.ok(a, "git", "rev-parse", "HEAD", cwd=repo) == head
    lock.unlink()  # the folder, not a file, is what refuses now
    refused = users.run(a, "proctor", *args, cwd=repo)
    assert refused.returncode == 1, refused.stderr
    assert f"(the folder {state}: mode 0755, owner uid 0)" in refused.stderr, refused.stderr
    assert f"sudo chown -R {a} '{state}'" in refused.stderr
    subprocess.run(["chown", "-R", str(a), str(state)], check=True)
    users.ok(a, "proctor", *args, cwd=repo)
    assert users.ok(a, "git", "rev-parse", "HEAD", cwd=repo) != head


KILL_HOOK = """#!/bin/sh
if [ "$1" = "$KILL_AT" ] && [ -n "$KILL_PID" ]; then kill -9 "$KILL_PID"; sleep 1; fi
exit 0
"""

KILLED_UPDATE = r"""
import os, sys
os.environ["KILL_PID"] = str(os.getpid())
from proctor.cli import main
sys.exit(main(["procedure", "update", "one", "--code", sys.argv[1]]))
"""


@pytest.mark.parametrize("state", ["prepared", "committed"])
def test_a_write_killed_as_one_user_is_finished_by_the_other(shared_base: Path, state: str) -> None:
    """The first user's write is SIGKILLed with its sync journal and ``index.lock`` in
    place (before the ref moved, or just after); the second user's next command, a
    read, finishes or undoes it from the first user's journal: the work tree, the index
    and the branch agree, nothing of the write is left behind, and writing goes on."""
    a, b = USERS
    users = Users(shared_base, 0o002)
    repo = shared_base / "store"
    repo.mkdir()
    os.chown(repo, a, GROUP)
    repo.chmod(0o2775)
    users.ok(a, "git", "init", "-q", "-b", "main", "--shared=group", ".", cwd=repo)
    code = shared_base / "greet.py"
    code.write_text(GREET)
    changed = shared_base / "changed.py"
    changed.write_text(GREET.replace("hello", "howdy"))
    for path in (code, changed):
        path.chmod(0o644)
    users.ok(a, "proctor", "procedure", "create", "one", "--code", str(code), cwd=repo)
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(KILL_HOOK)
    hook.chmod(0o755)
    script = shared_base / "killed.py"
    script.write_text(KILLED_UPDATE)
    script.chmod(0o644)
    users.env_extra = {"KILL_AT": state}
    killed = users.run(a, sys.executable, str(script), str(changed), cwd=repo)
    users.env_extra = {}
    hook.unlink()
    assert killed.returncode == -9, killed.stderr
    for _ in range(200):  # the orphaned update-ref ends after its hook
        if not (repo / ".git" / "refs" / "heads" / "main.lock").exists():
            break
        time.sleep(0.05)
    assert (repo / ".git" / "index.lock").exists()
    users.ok(b, "proctor", "procedure", "list", cwd=repo)
    assert not (repo / ".git" / "index.lock").exists()
    assert users.ok(b, "git", "status", "--porcelain", "--untracked-files=all", cwd=repo) == ""
    expected = "howdy" if state == "committed" else "hello"
    assert expected in (repo / "procedures" / "one" / "main.py").read_text()
    assert not [p for p in repo.rglob("*") if ".proctor-" in p.name]
    users.ok(b, "proctor", "procedure", "update", "one", "--code", str(code),
             "--description", "after the crash", cwd=repo)  # fmt: skip
    assert users.ok(a, "git", "status", "--porcelain", cwd=repo) == ""
