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
import subprocess, sys, time
from pathlib import Path

repo, count, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.002)
ok = failed = 0
for k in range(count):
    (repo / "notes").mkdir(exist_ok=True)
    (repo / "notes" / f"n{k}.txt").write_text(f"note {k}\n")
    for _attempt in range(50):  # as a user would: again, a moment later
        add = subprocess.run(["git", "add", f"notes/n{k}.txt"], cwd=repo, capture_output=True)
        commit = subprocess.run(["git", "commit", "-q", "-m", f"note {k}"], cwd=repo,
                                capture_output=True)
        if add.returncode == 0 and commit.returncode == 0:
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
    subprocess.run(["git", "commit", "-q", "-m", "notes"], cwd=repo, capture_output=True)
    time.sleep(0.01)
print(ok, failed)
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
    clean and ``git status`` is clean at the end."""
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
    plain_ok, plain_failed = (int(x) for x in out.split())

    tip = git(repo, "rev-parse", REF).strip()
    applied = [row for r in results for row in r["applied"]]
    assert applied, results
    for commit, path, body, warnings in applied:
        assert not warnings
        assert git(repo, "merge-base", "--is-ancestor", commit, tip, check=False) == ""
        assert git(repo, "show", f"{tip}:{path}") == body
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
        assert not [p for p in changed.split() if p.startswith("procedures/")], (sha, changed)
    assert plain_ok >= 10, (plain_ok, plain_failed)  # the two kinds of writer interleaved
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
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
