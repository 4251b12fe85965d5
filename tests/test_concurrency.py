"""Concurrency and crash behaviour of the store, with real processes against real repositories.

Why real processes: the store's guarantees (compare-and-swap publishing, the work-tree
lock, atomic loose-object writes) are about what several OS processes see of one
repository, and about what a process killed at an arbitrary instant leaves behind.
Threads in one interpreter would share the GIL and the store's caches and prove little.

Every worker is a small script run with ``sys.executable``; workers wait on a file signal
so their writes really overlap. Nothing here asserts timing: speed lives in
``bench/bench_store.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proctor.store import journal

IDENTITY = {
    "GIT_AUTHOR_NAME": "Concurrency Test",
    "GIT_AUTHOR_EMAIL": "concurrency@example.com",
    "GIT_COMMITTER_NAME": "Concurrency Test",
    "GIT_COMMITTER_EMAIL": "concurrency@example.com",
}

#: Generous: a loaded 2-core CI box may be slow, but a hung worker must not hang the suite.
TIMEOUT = 180.0

STORE_REF = "refs/heads/store"

# -- the worker ----------------------------------------------------------------------------

WORKER = r'''
"""A proctor writer in its own process: waits for the go signal, writes, reports JSON."""
import json
import os
import signal
import sys
import time
from pathlib import Path

mode, repo, signals, ident = sys.argv[1:5]
args = sys.argv[5:]
signals = Path(signals)

from proctor import Workspace
from proctor.core.errors import ConcurrencyError, ProctorError


def code(value):
    return f"def run(x: int) -> int:\n    return x + {value}\n"


def wait_for(path):
    deadline = time.monotonic() + 300
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.002)


def report(path, data):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


ws = Workspace.open(repo, actor=f"worker-{ident}@example.com")
try:
    if mode == "create":
        # Distinct procedures per worker: no write conflicts with another; none may be lost.
        count = int(args[0])
        (signals / f"ready-{ident}").touch()
        wait_for(signals / "go")
        out = {"ok": [], "errors": [], "attempts": []}
        for i in range(count):
            name = f"w{ident}_p{i}"
            try:
                r = ws.execute("procedure.create", {"name": name, "code": code(i)})
                out["ok"].append(name)
                out["attempts"].append(r.attempts)
            except ProctorError as exc:
                out["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
        report(signals / f"result-{ident}.json", out)

    elif mode == "expected":
        # Rounds of: read the current version, wait for all, update with that version.
        name, rounds = args[0], int(args[1])
        for rnd in range(rounds):
            version = ws.procedures.latest_version(name)
            (signals / f"ready-{rnd}-{ident}").touch()
            wait_for(signals / f"go-{rnd}")
            try:
                r = ws.execute("procedure.update", {
                    "name": name, "code": code(f"{rnd} * 100 + {ident}"),
                    "expected_version": version})
                out = {"status": r.status, "commit": r.commit, "read": version}
            except ConcurrencyError as exc:
                out = {"status": "conflict", "expected": exc.expected, "actual": exc.actual,
                       "read": version}
            except ProctorError as exc:
                out = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            report(signals / f"result-{rnd}-{ident}.json", out)

    elif mode == "once":
        # One update; the repository's reference-transaction hook SIGKILLs this process
        # the instant the ref has moved, i.e. after publishing and before anything else.
        os.environ["PROCTOR_TEST_KILL_PID"] = str(os.getpid())
        (signals / f"writing-{ident}").touch()
        ws.execute("procedure.update", {"name": args[0], "code": code(args[1]),
                                        "description": f"value {args[1]}"})
        sys.exit("still alive after the ref moved")

    elif mode == "once-here":
        # The same, with the ref moved in this process (no hook): SIGKILL the instant the
        # rename of the ref's lock over the ref has returned.
        real_rename = os.rename

        def rename_then_die(src, dst, *a, **kw):
            real_rename(src, dst, *a, **kw)
            if str(src).endswith(".lock") and "/refs/heads/" in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)

        os.rename = rename_then_die
        (signals / f"writing-{ident}").touch()
        ws.execute("procedure.update", {"name": args[0], "code": code(args[1]),
                                        "description": f"value {args[1]}"})
        sys.exit("still alive after the ref moved")

    elif mode == "stream":
        # Update the same few procedures for ever, changing main.py and metadata.json
        # together, until killed. Each commit's description names the code's value.
        names = args[0].split(",")
        start = int(args[1])
        i = start
        while True:
            name = names[i % len(names)]
            ws.execute("procedure.update", {"name": name, "code": code(i),
                                            "description": f"value {i}"})
            if i == start:
                (signals / f"writing-{ident}").touch()
            i += 1
finally:
    ws.close()
'''


# -- helpers -------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of every process we start: a git identity, no system git config."""
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    for key in ("PROCTOR_ACTOR", "PROCTOR_DISABLE_PLUGINS", "PROCTOR_STRICT_PLUGINS"):
        env.pop(key, None)
    return env


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env=child_env(), timeout=TIMEOUT
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def code_for(value: object) -> str:
    """The same code the worker writes, so tests can check a tree against it."""
    return f"def run(x: int) -> int:\n    return x + {value}\n"


@dataclass
class Store:
    """A repository prepared for a test: where it is and which ref proctor writes."""

    path: Path
    ref: str
    worktree: bool  # is the store branch checked out in a work tree?
    initial: str  # the commit made by git before proctor wrote anything


def make_store(base: Path, worktree: bool) -> Store:
    """A repo with one initial commit (made by git, not proctor).

    ``worktree``: the store branch is ``main``, checked out. Otherwise a committed
    proctor.toml on ``main`` points proctor at ``refs/heads/store``, a branch no work tree
    has checked out, so only compare-and-swap stands between writers.
    """
    path = base / ("wt-repo" if worktree else "ref-repo")
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", IDENTITY["GIT_AUTHOR_NAME"])
    git(path, "config", "user.email", IDENTITY["GIT_AUTHOR_EMAIL"])
    if worktree:
        (path / "README.md").write_text("store\n")
        git(path, "add", "README.md")
    else:
        (path / "proctor.toml").write_text(f'store-ref = "{STORE_REF}"\n')
        git(path, "add", "proctor.toml")
    git(path, "commit", "-q", "-m", "Initial commit")
    if not worktree:
        git(path, "branch", "store", "main")
    initial = git(path, "rev-parse", "HEAD").strip()
    return Store(path, "refs/heads/main" if worktree else STORE_REF, worktree, initial)


@pytest.fixture(params=[True, False], ids=["checked-out", "not-checked-out"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(tmp_path, worktree=request.param)


class Workers:
    """Worker processes sharing one signal directory; all killed at the end, by pid."""

    def __init__(self, tmp: Path) -> None:
        self.script = tmp / "worker.py"
        self.script.write_text(WORKER)
        self.signals = tmp / "signals"
        self.signals.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, mode: str, repo: Path, ident: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(self.script), mode, str(repo), str(self.signals), ident, *args],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def wait_files(self, names: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
        """Wait until every signal file exists; fail early, with stderr, if a worker died."""
        deadline = time.monotonic() + TIMEOUT
        while not all((self.signals / n).exists() for n in names):
            for p in procs:
                if p.poll() is not None and p.returncode != 0:
                    err = p.stderr.read().decode() if p.stderr else ""
                    raise AssertionError(f"worker exited {p.returncode}: ...{err[-800:]}")
            if time.monotonic() > deadline:
                missing = [n for n in names if not (self.signals / n).exists()]
                raise AssertionError(f"timed out waiting for {missing}")
            time.sleep(0.01)

    def go(self, name: str = "go") -> None:
        (self.signals / name).touch()

    def finish(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for p in procs:
            _out, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, f"worker exited {p.returncode}: {err.decode()}"

    def result(self, name: str) -> dict:
        return json.loads((self.signals / name).read_text())

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    try:
        yield w
    finally:
        w.kill_all()


def assert_fsck_clean(repo: Path) -> None:
    """``git fsck --strict`` passes; dangling objects (lost races, kills) are fine."""
    proc = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=TIMEOUT,
    )
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and not line.startswith("dangling ")
    ]
    assert proc.returncode == 0 and not problems, "\n".join(problems) or proc.stderr


def proctor_commits(store: Store) -> list[tuple[str, str]]:
    """(sha, Proctor-Action trailer value) of every commit after the initial one."""
    out = git(
        store.path,
        "log",
        "--format=%H%x1f%(trailers:key=Proctor-Action,valueonly,separator=;)%x1e",
        store.ref,
        "^" + store.initial,
    )
    rows = []
    for record in out.split("\x1e"):
        record = record.strip()
        if record:
            sha, _, action = record.partition("\x1f")
            rows.append((sha, action.strip()))
    return rows


# -- 1. many writers, one branch -----------------------------------------------------------

WRITERS = 8
WRITES_EACH = 25


@pytest.mark.slow
def test_many_processes_lose_no_update(store: Store, workers: Workers) -> None:
    """8 processes × 25 creates of distinct procedures: all 200 land, history stays linear.

    With the branch checked out the writers also share the work tree, which must end clean;
    without, nothing but compare-and-swap orders them.
    """
    repo = store.path
    base_count = int(git(repo, "rev-list", "--count", store.ref))
    procs = [workers.start("create", repo, str(i), str(WRITES_EACH)) for i in range(WRITERS)]
    workers.wait_files([f"ready-{i}" for i in range(WRITERS)], procs)
    workers.go()
    workers.finish(procs)

    errors: list[str] = []
    written: list[str] = []
    for i in range(WRITERS):
        res = workers.result(f"result-{i}.json")
        errors += res["errors"]
        written += res["ok"]
    assert errors == [], f"{len(errors)} writes failed, e.g. {errors[:3]}"
    expected = {f"w{i}_p{j}" for i in range(WRITERS) for j in range(WRITES_EACH)}
    assert set(written) == expected

    total = WRITERS * WRITES_EACH
    assert int(git(repo, "rev-list", "--count", store.ref)) == base_count + total
    assert git(repo, "rev-list", "--merges", store.ref) == ""
    assert_fsck_clean(repo)

    on_tip = git(repo, "ls-tree", "-r", "--name-only", store.ref, "procedures/").split()
    assert sorted(on_tip) == sorted(
        f"procedures/{n}/{f}" for n in expected for f in ("main.py", "metadata.json")
    )
    for i, j in ((0, 0), (WRITERS - 1, WRITES_EACH - 1)):
        assert git(repo, "show", f"{store.ref}:procedures/w{i}_p{j}/main.py") == code_for(j)

    commits = proctor_commits(store)
    assert len(commits) == total
    assert {action for _sha, action in commits} == {"procedure.create"}

    if store.worktree:
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
        assert not (repo / ".git" / "index.lock").exists()
    else:
        # The checked-out branch and its work tree were never touched.
        assert int(git(repo, "rev-list", "--count", "main")) == 1
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# -- 2. stale expected version: exactly one wins ---------------------------------------------

CONTENDERS = 4
ROUNDS = 3
CLI_ROUNDS = 2  # each CLI round starts four interpreters


def seed(store: Store, name: str) -> str:
    """Create procedure ``name`` through proctor; returns the commit."""
    from proctor import Workspace

    with Workspace.open(store.path, actor="seed@example.com") as ws:
        result = ws.execute("procedure.create", {"name": name, "code": code_for(0)})
    assert result.commit
    return result.commit


@pytest.mark.slow
def test_same_stale_version_exactly_one_wins_api(store: Store, workers: Workers) -> None:
    """Four processes update one procedure from the version they all read: one commit
    lands per round, the other three get ConcurrencyError naming the versions."""
    repo = store.path
    seed(store, "shared")
    procs = [
        workers.start("expected", repo, str(i), "shared", str(ROUNDS)) for i in range(CONTENDERS)
    ]
    for rnd in range(ROUNDS):
        before = git(repo, "rev-parse", store.ref).strip()
        workers.wait_files([f"ready-{rnd}-{i}" for i in range(CONTENDERS)], procs)
        workers.go(f"go-{rnd}")
        workers.wait_files([f"result-{rnd}-{i}.json" for i in range(CONTENDERS)], procs)
        results = [workers.result(f"result-{rnd}-{i}.json") for i in range(CONTENDERS)]

        assert all(r["read"] == before for r in results), results
        winners = [i for i, r in enumerate(results) if r["status"] == "applied"]
        losers = [r for r in results if r["status"] == "conflict"]
        assert len(winners) == 1, results
        assert len(losers) == CONTENDERS - 1, results
        tip = git(repo, "rev-parse", store.ref).strip()
        assert results[winners[0]]["commit"] == tip
        assert git(repo, "rev-list", f"{before}..{tip}").split() == [tip]
        for r in losers:
            assert r["expected"] == before
            assert r["actual"] == tip
        winner = winners[0]
        assert git(repo, "show", f"{tip}:procedures/shared/main.py") == code_for(
            f"{rnd} * 100 + {winner}"
        )
    workers.finish(procs)
    assert_fsck_clean(repo)
    if store.worktree:
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.slow
def test_same_stale_version_exactly_one_wins_cli(store: Store, tmp_path: Path) -> None:
    """The same through ``proctor procedure update --expected-version``: losers exit 3."""
    repo = store.path
    seed(store, "shared")
    proctor = str(Path(sys.executable).parent / "proctor")
    for rnd in range(CLI_ROUNDS):
        before = git(repo, "rev-parse", store.ref).strip()
        files = []
        for i in range(CONTENDERS):
            f = tmp_path / f"code-{rnd}-{i}.py"
            f.write_text(code_for(f"{rnd} * 100 + {i}"))
            files.append(f)
        procs = [
            subprocess.Popen(
                [
                    proctor,
                    "--repo",
                    str(repo),
                    "--json",
                    "procedure",
                    "update",
                    "shared",
                    "--code",
                    str(f),
                    "--expected-version",
                    before,
                ],
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for f in files
        ]
        outcomes = []
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            outcomes.append((p.returncode, out, err))
        codes = sorted(code for code, _o, _e in outcomes)
        assert codes == [0] + [3] * (CONTENDERS - 1), outcomes

        tip = git(repo, "rev-parse", store.ref).strip()
        assert git(repo, "rev-list", f"{before}..{tip}").split() == [tip]
        winner = next(i for i, (code, _o, _e) in enumerate(outcomes) if code == 0)
        assert json.loads(outcomes[winner][1])["commit"] == tip
        assert git(repo, "show", f"{tip}:procedures/shared/main.py") == code_for(
            f"{rnd} * 100 + {winner}"
        )
        for code, out, _err in outcomes:
            if code == 3:
                data = json.loads(out)
                assert data["status"] == "conflict" and data["error"] == "ConcurrencyError"
    assert_fsck_clean(repo)
    if store.worktree:
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# -- 3. SIGKILL in the middle of a stream of writes ------------------------------------------

KILLS = 4
STREAM_NAMES = ("alpha", "beta", "gamma")


def assert_complete_tip(repo: Path, ref: str) -> None:
    """The ref names a commit whose every procedure has both files, written together."""
    tip = git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    files = git(repo, "ls-tree", "-r", "--name-only", tip, "procedures/").split()
    by_proc: dict[str, set[str]] = {}
    for f in files:
        _root, name, leaf = f.split("/", 2)
        by_proc.setdefault(name, set()).add(leaf)
    assert set(by_proc) == set(STREAM_NAMES)
    for name, leaves in by_proc.items():
        assert leaves == {"main.py", "metadata.json"}, (name, leaves)
        meta = json.loads(git(repo, "show", f"{tip}:procedures/{name}/metadata.json"))
        value = meta["description"].removeprefix("value ")
        code = git(repo, "show", f"{tip}:procedures/{name}/main.py")
        assert code == code_for(value if value != "seed" else 0), (name, meta, code)


def seed_stream(store: Store) -> None:
    from proctor import Workspace

    with Workspace.open(store.path, actor="seed@example.com") as ws:
        for name in STREAM_NAMES:
            ws.execute(
                "procedure.create", {"name": name, "code": code_for(0), "description": "value seed"}
            )


def write_after_kill(store: Store) -> None:
    """A new process-local writer updates every procedure the dead writers touched."""
    from proctor import Workspace

    with Workspace.open(store.path, actor="after@example.com") as ws:
        for name in STREAM_NAMES:
            result = ws.execute(
                "procedure.update", {"name": name, "code": code_for(-1), "description": "value -1"}
            )
            assert result.status == "applied"
    assert_fsck_clean(store.path)
    assert_complete_tip(store.path, store.ref)
    if store.worktree:
        assert git(store.path, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.slow
def test_sigkill_mid_stream_leaves_a_complete_commit(
    store: Store, workers: Workers, request: pytest.FixtureRequest
) -> None:
    """kill -9 a writer at a random instant, several times: the ref is always on a whole
    commit, fsck is clean, no lock is left behind, and the next write succeeds."""
    repo = store.path
    seed_stream(store)
    rng = random.Random(20240611)
    start = 1
    for k in range(KILLS):
        proc = workers.start("stream", repo, str(k), ",".join(STREAM_NAMES), str(start))
        workers.wait_files([f"writing-{k}"], [proc])
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == -signal.SIGKILL
        start += 10_000

        assert_fsck_clean(repo)
        assert_complete_tip(repo, store.ref)
        # The ref's lock is left only by a writer killed as it moved the branch in-process
        # (as a killed git leaves its own), index.lock only by a writer killed while
        # holding it, with the journal that lets the next operation finish. Opening the
        # store, as any read does, clears both.
        ref_lock = repo / ".git" / (store.ref + ".lock")
        if (repo / ".git" / "index.lock").exists():
            assert journal.pending(str(repo / ".git"))
            assert_git_commit_refused(repo)
            assert_recovered_by_a_read(store)
        elif ref_lock.exists():
            from proctor.store import GitStore

            with GitStore(repo) as gs:
                assert gs.recover(store.ref).warnings == []
        assert not ref_lock.exists()

    # A new writer can write to the procedures the dead ones were writing.
    write_after_kill(store)


KILL_HOOK = """#!/bin/sh
# Test hook: SIGKILL the proctor writer that asked for it once its ref update is committed.
if [ "$1" = committed ] && [ -n "$PROCTOR_TEST_KILL_PID" ]; then
    kill -9 "$PROCTOR_TEST_KILL_PID"
    sleep 1
fi
exit 0
"""


@pytest.mark.slow
@pytest.mark.parametrize("mover", ["git", "in-process"])
def test_sigkill_right_after_publish(
    store: Store, workers: Workers, request: pytest.FixtureRequest, mover: str
) -> None:
    """The worst instant for a kill: the ref has moved, nothing after it has run.

    With git moving the ref, its reference-transaction hook delivers the SIGKILL exactly
    there; with the ref moved in-process (no hook), the writer kills itself as the rename
    over the ref returns. The commit must stand, nothing may stay locked, and the next
    write of the same procedure must succeed with a clean ``git status``.
    """
    repo = store.path
    seed_stream(store)
    before = git(repo, "rev-parse", store.ref).strip()
    hook = repo / ".git" / "hooks" / "reference-transaction"
    if mover == "git":
        hook.write_text(KILL_HOOK)
        hook.chmod(0o755)

    proc = workers.start("once" if mover == "git" else "once-here", repo, "0", "alpha", "42")
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-800:]
    hook.unlink(missing_ok=True)

    tip = git(repo, "rev-parse", store.ref).strip()
    assert tip != before, "the ref did not move before the kill"
    assert git(repo, "rev-parse", f"{tip}^").strip() == before
    assert git(repo, "show", f"{tip}:procedures/alpha/main.py") == code_for(42)
    assert_fsck_clean(repo)
    assert_complete_tip(repo, store.ref)
    if store.worktree:
        # The killed writer still "holds" index.lock: the staged revert a stale index
        # would hold cannot be committed, and a read finishes the sync.
        assert (repo / ".git" / "index.lock").exists()
        assert_git_commit_refused(repo)
        assert_recovered_by_a_read(store)
        assert git(repo, "show", "HEAD:procedures/alpha/main.py") == code_for(42)
    assert not (repo / ".git" / "index.lock").exists()
    write_after_kill(store)


def assert_git_commit_refused(repo: Path) -> None:
    """A plain ``git commit -a`` cannot commit the index the killed writer left."""
    head = git(repo, "rev-parse", "HEAD")
    proc = subprocess.run(
        ["git", "commit", "-a", "-q", "-m", "user"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=child_env(),
    )
    assert proc.returncode != 0 and "index.lock" in proc.stderr, proc.stderr
    assert git(repo, "rev-parse", "HEAD") == head


def assert_recovered_by_a_read(store: Store) -> None:
    """The store's recover entry point (what opening a store calls) finishes the sync."""
    from proctor.store import GitStore

    with GitStore(store.path) as gs:
        done = gs.recover(store.ref)
    assert done.warnings == []
    lock = store.path / ".git" / "index.lock"
    assert not lock.exists(), (lock.read_bytes()[:80], done)
    assert not journal.pending(str(store.path / ".git"))
    assert git(store.path, "status", "--porcelain", "--untracked-files=all") == ""
