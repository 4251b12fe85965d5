"""Other git writers in the same work tree: proctor holds git's own ``index.lock`` from
reading the index until the new index is in place, so a plain ``git commit`` running at
the same time waits or fails and never reverts proctor's commit.

Real processes throughout: proctor writers in their own interpreters and a plain
``git add && git commit`` loop, all in one checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import IDENTITY, git

from proctor.store import Change, GitStore, format_ident, journal
from proctor.store.errors import IndexLockedError

REF = "refs/heads/main"
AUTHOR = format_ident("Test Author", "author@example.com")

PROCTOR_WRITER = r"""
import json, sys, time
from pathlib import Path
from proctor.store import Change, GitStore, format_ident
from proctor.core.errors import ProctorError

repo, ident, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
author = format_ident("Writer", "writer@example.com")
while not go.exists():
    time.sleep(0.002)
out = {"applied": [], "errors": []}
with GitStore(repo) as store:
    for i in range(count):
        path = f"procedures/w{ident}_p{i}/main.py"
        body = f"def run():\n    return {ident}{i}\n".encode()
        try:
            r = store.write("refs/heads/main",
                            lambda _tip: Change(edits={path: body}, message=f"w{ident} {i}"),
                            author=author, trailers={"Proctor-Action": "test.write"})
            out["applied"].append([r.commit, path, body.decode(), r.warnings])
        except ProctorError as exc:
            out["errors"].append(f"{type(exc).__name__}: {exc}")
print(json.dumps(out))
"""

PLAIN_GIT = r"""
import json, subprocess, sys, time
from pathlib import Path

repo, count, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
raced = set()


def commit(message):
    proc = subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo,
                          capture_output=True)
    if b"cannot lock ref 'HEAD'" in proc.stderr:
        # git's own window: git commit reads the index before it locks it, so a write
        # that falls wholly inside that window is undone in the index git writes before
        # its compare-and-swap on HEAD fails. Note what that index now stages.
        staged = subprocess.run(
            ["git", "--no-optional-locks", "diff", "--cached", "--name-only", "--",
             "procedures"], cwd=repo, capture_output=True, text=True).stdout
        raced.update(staged.split())
    return proc.returncode == 0


while not go.exists():
    time.sleep(0.002)
ok = failed = 0
for k in range(count):
    (repo / "notes").mkdir(exist_ok=True)
    (repo / "notes" / f"n{k}.txt").write_text(f"note {k}\n")
    for _attempt in range(50):  # as a user would: again, a moment later
        add = subprocess.run(["git", "add", f"notes/n{k}.txt"], cwd=repo, capture_output=True)
        if commit(f"note {k}") and add.returncode == 0:
            ok += 1
            break
        failed += 1
        time.sleep(0.003)
# Whatever the lock refused above is committed now, so the work tree ends clean.
for _ in range(500):
    left = subprocess.run(["git", "status", "--porcelain", "--", "notes"], cwd=repo,
                          capture_output=True, text=True).stdout
    if not left:
        break
    subprocess.run(["git", "add", "notes"], cwd=repo, capture_output=True)
    commit("notes")
    time.sleep(0.01)
print(json.dumps({"ok": ok, "failed": failed, "raced": sorted(raced)}))
"""


def child_env() -> dict[str, str]:
    return {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture
def checkout(repo: Path) -> Path:
    (repo / "README.md").write_text("store\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def test_plain_git_commit_beside_proctor_writers_never_reverts(
    checkout: Path, tmp_path: Path
) -> None:
    """Three proctor writer processes and a ``git add && git commit`` loop in one checkout:
    every applied write is on the tip, no plain commit touches a procedure file, fsck is
    clean and ``git status`` is clean at the end.

    The one exception is git's own: ``git commit`` reads the index before it locks it,
    and a write that lands wholly between the two (the commit process descheduled right
    there) is undone in the index that commit writes before its HEAD update fails. The
    loop sees that failure and notes which procedure files the index then stages
    (``raced``); only those may be reverted by its next commit (docs/guarantees.md)."""
    repo = checkout
    go = tmp_path / "go"
    scripts = tmp_path / "w.py", tmp_path / "g.py"
    scripts[0].write_text(PROCTOR_WRITER)
    scripts[1].write_text(PLAIN_GIT)
    env = child_env()
    procs = [
        subprocess.Popen(
            [sys.executable, str(scripts[0]), str(repo), str(i), "12", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(3)
    ]
    plain = subprocess.Popen(
        [sys.executable, str(scripts[1]), str(repo), "25", str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    time.sleep(0.3)  # let the interpreters start, so the writes really overlap
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    out, err = plain.communicate(timeout=120)
    assert plain.returncode == 0, err
    plain = json.loads(out)
    raced = set(plain["raced"])

    tip = git(repo, "rev-parse", REF).strip()
    applied = [row for r in results for row in r["applied"]]
    assert applied, results
    for commit, path, body, warnings in applied:
        assert not warnings
        assert git(repo, "merge-base", "--is-ancestor", commit, tip, check=False) == ""
        if path not in raced:
            assert git(repo, "show", f"{tip}:{path}") == body, (path, raced)
    # Only lock contention may refuse a write; nothing reported applied is missing.
    for r in results:
        for error in r["errors"]:
            assert error.startswith(("IndexLockedError", "ConcurrencyError")), error
    # No plain commit changed a procedure file (that would be a revert of proctor's work).
    log = git(repo, "log", "--format=%H%x1f%(trailers:key=Proctor-Action,valueonly)%x1e", REF)
    for record in log.split("\x1e"):
        sha, _, action = record.strip().partition("\x1f")
        if not sha or action.strip():
            continue
        changed = git(repo, "diff-tree", "--no-commit-id", "-r", "--name-only", "--root", sha)
        touched = [p for p in changed.split() if p.startswith("procedures/")]
        assert set(touched) <= raced, (sha, changed, raced)
    assert plain["ok"] >= 10, plain  # the two kinds of writer interleaved
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert [line for line in status if line[3:] not in raced] == [], (status, raced)
    assert not (repo / ".git/index.lock").exists()


def test_write_holds_index_lock_until_the_index_is_in_place(checkout: Path) -> None:
    """While proctor writes, a plain ``git commit`` cannot take the index: tried from
    inside the write (between the ref update and the index write), it fails cleanly."""
    repo = checkout
    seen: list[tuple[int, str]] = []

    class Probing(GitStore):
        def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
            super().update_refs(updates, reason)
            (repo / "other.txt").write_text("user\n")
            proc = subprocess.run(
                ["git", "commit", "-a", "-q", "-m", "user"],
                cwd=repo,
                capture_output=True,
                text=True,
                env=child_env(),
            )
            seen.append((proc.returncode, proc.stderr))

    with Probing(repo) as store:
        result = store.write(
            REF,
            lambda _t: Change(edits={"procedures/a/main.py": b"a\n"}, message="m"),
            author=AUTHOR,
        )
    assert seen and seen[0][0] != 0 and "index.lock" in seen[0][1]
    assert git(repo, "rev-parse", REF).strip() == result.commit
    assert git(repo, "status", "--porcelain") == "?? other.txt\n"


@pytest.mark.parametrize("seed_is", ["removed", "rewritten"])
def test_the_index_lock_holds_its_token_whatever_became_of_its_seed(
    checkout: Path, seed_is: str
) -> None:
    """The lock is a link of a seed file a process checks once; the seed removed or
    rewritten between two writes of one store, the next lock still holds the token that
    tells a recovery it is proctor's (read from ``index.lock`` inside the write)."""
    from proctor.store.indexlock import lock_path, token_for

    repo = checkout
    held: list[bytes] = []

    class Probing(GitStore):
        def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
            held.append(lock_path(repo / ".git" / "index").read_bytes())
            super().update_refs(updates, reason)

    with Probing(repo) as store:
        for i in range(2):
            if i == 1:
                (seed,) = (repo / ".git" / "proctor").glob("lock-*")
                if seed_is == "removed":
                    seed.unlink()
                else:
                    seed.chmod(0o644)
                    seed.write_bytes(b"someone else\n")
            store.write(
                REF,
                lambda _t, i=i: Change(edits={"procedures/a/main.py": b"%d\n" % i}, message="m"),
                author=AUTHOR,
            )
    assert held == [token_for(REF)] * 2
    assert (seed.read_bytes(), seed.stat().st_mode & 0o777) == (token_for(REF), 0o444)
    assert not lock_path(repo / ".git" / "index").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_an_index_lock_in_a_folder_that_is_gone_is_refused_at_once(tmp_path: Path) -> None:
    """The index's folder removed (a linked work tree deleted after a killed write): the
    lock cannot be made, which is said at once; remaking the seed does not make the
    folder, so the attempt is made again once at most, not for ever."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from proctor.store.errors import IndexLockedError\n"
        "from proctor.store.indexlock import IndexLock\n"
        "scratch = Path(sys.argv[1])\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    IndexLock.acquire(scratch / 'gone' / 'index', 5.0, 'refs/heads/main', scratch)\n"
        "except IndexLockedError as exc:\n"
        "    print(str(exc).endswith('gone is gone; nothing was written'), time.monotonic() - start < 1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=20
    )
    assert proc.stdout == "True True\n", proc


def test_stale_index_lock_refuses_before_anything(checkout: Path) -> None:
    """A lock another git left: the write waits, then refuses; nothing was written."""
    repo = checkout
    (repo / ".git/index.lock").write_bytes(b"")
    head = git(repo, "rev-parse", REF)
    objects = {p.name for p in (repo / ".git/objects").rglob("*") if p.is_file()}
    with GitStore(repo) as store:
        store.INDEX_LOCK_TIMEOUT = 0.2
        with pytest.raises(IndexLockedError, match="index.lock") as info:
            store.write(REF, lambda _t: Change(edits={"f": b"1"}, message="m"), author=AUTHOR)
    assert info.value.exit_code == 3
    assert "rm " in str(info.value) and "nothing was written" in str(info.value)
    assert git(repo, "rev-parse", REF) == head
    assert {p.name for p in (repo / ".git/objects").rglob("*") if p.is_file()} == objects
    assert not (repo / "f").exists()
    assert (repo / ".git/index.lock").exists()  # not ours: left alone
    assert not journal.pending(str(repo / ".git"))


class _CommitLandsMidWrite(GitStore):
    """A store whose first ref update loses to a plain commit that lands just then, as
    ``git commit`` does: it takes ``index.lock`` only to refresh the index, then moves
    HEAD without it, so the move can fall inside another writer's hold. The first
    update also keeps the index bytes a ``git commit`` reading at that instant would see
    (``seen``), and a thread watches whether ``index.lock`` is ever absent from then on
    until the next update."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls = 0
        self.seen: bytes | None = None
        self.gaps = 0
        self.watching = False
        self._watcher: threading.Thread | None = None

    def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
        self.calls += 1
        if self.calls == 1:
            repo = Path(self.cwd)
            self.seen = (repo / ".git/index").read_bytes()
            tip = git(repo, "rev-parse", REF).strip()
            tree = git(repo, "rev-parse", f"{tip}^{{tree}}").strip()
            plain = git(repo, "commit-tree", tree, "-p", tip, "-m", "plain").strip()
            git(repo, "update-ref", REF, plain, tip)
            self.watching = True
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()
        elif self.calls == 2:
            self.stop()  # the retry moves the ref now, still under the lock
        super().update_refs(updates, reason)

    def _watch(self) -> None:
        lock = Path(self.cwd) / ".git/index.lock"
        while self.watching:
            if not lock.exists():
                self.gaps += 1
            time.sleep(0.0002)

    def stop(self) -> None:
        self.watching = False
        if self._watcher is not None:
            self._watcher.join()


def test_lost_swap_after_the_index_is_in_place_keeps_index_lock_into_the_next_try(
    checkout: Path,
) -> None:
    """A plain commit moves the ref after proctor put its new index in place: proctor
    undoes and tries again without letting ``index.lock`` go, so no ``git commit`` that
    read the new index can take the lock, write that index back and commit files whose
    write was undone. The retry lands on the plain commit and the index it leaves has the
    same entries as the one a reader saw before the lost swap."""
    repo = checkout
    path = "procedures/mid/main.py"
    body = b"def run():\n    return 1\n"
    store = _CommitLandsMidWrite(repo)
    try:
        result = store.write(
            REF,
            lambda _tip: Change(edits={path: body}, message="add mid"),
            author=AUTHOR,
        )
    finally:
        watched = store.gaps
        store.stop()
        store.close()
    assert result.attempts == 2
    assert watched == 0  # the lock never left between the lost swap and the retry
    assert git(repo, "log", "-1", "--format=%s", f"{result.commit}^") == "plain\n"
    assert git(repo, "show", f"{REF}:{path}").encode() == body
    assert not (repo / ".git/index.lock").exists()
    # What a git commit that read the index at the lost swap would now write back.
    assert store.seen is not None
    (repo / ".git/index").write_bytes(store.seen)
    assert git(repo, "diff", "--cached", "--name-only", REF) == ""
    assert git(repo, "status", "--porcelain") == ""
