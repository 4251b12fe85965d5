"""The store's git processes and the environment: the repository proctor opened is the
one written, whatever a surrounding git (a hook) exported; and housekeeping (``gc``)
happens even when every write is its own process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IDENTITY, git

from proctor.store import Change, GitStore, discover, format_ident

REF = "refs/heads/main"
AUTHOR = format_ident("Test Author", "author@example.com")


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text(f"{path.name}\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "init")
    return path


def snapshot(repo: Path) -> tuple[str, str, bytes, int]:
    return (
        git(repo, "for-each-ref"),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        (repo / ".git/index").read_bytes(),
        sum(1 for p in (repo / ".git/objects").rglob("*") if p.is_file()),
    )


def test_git_dir_of_another_repository_is_not_inherited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "b")
    before = snapshot(a)
    monkeypatch.setenv("GIT_DIR", str(a / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(a))
    monkeypatch.setenv("GIT_INDEX_FILE", str(a / ".git/index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(a / ".git/objects"))
    monkeypatch.setenv("GIT_COMMON_DIR", str(a / ".git"))
    work_tree, git_dir, common = discover(b)
    assert (work_tree, Path(git_dir), Path(common)) == (str(b), b / ".git", b / ".git")
    with GitStore(b) as store:
        result = store.write(
            REF,
            lambda _t: Change(edits={"procedures/x/main.py": b"x\n"}, message="m"),
            author=AUTHOR,
        )
        assert store.read_ref(REF) == result.commit
    for key in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
    ):
        monkeypatch.delenv(key)
    assert snapshot(a) == before
    assert git(b, "show", "HEAD:procedures/x/main.py") == "x\n"
    assert git(b, "status", "--porcelain", "--untracked-files=all") == ""


HOOK_WRITER = r"""
import json, os, sys
from proctor.store import Change, GitStore, format_ident
seen = {k: os.environ.get(k) for k in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE")}
with GitStore(sys.argv[1]) as store:
    r = store.write("refs/heads/main",
                    lambda _t: Change(edits={"procedures/h/main.py": b"h\n"}, message="from a hook"),
                    author=format_ident("Hook", "hook@example.com"))
with open(sys.argv[2], "w") as fh:
    json.dump({"seen": seen, "commit": r.commit}, fh)
"""


def test_write_from_inside_a_git_hook_goes_to_the_named_repository(tmp_path: Path) -> None:
    """A pre-commit hook of repository A (run with GIT_DIR, GIT_WORK_TREE and
    GIT_INDEX_FILE exported by git) writes to repository B through the store."""
    import json

    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "b")
    script = tmp_path / "writer.py"
    script.write_text(HOOK_WRITER)
    report = tmp_path / "report.json"
    hook = a / ".git/hooks/pre-commit"
    hook.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{script}' '{b}' '{report}'\n")
    hook.chmod(0o755)
    (a / "a.txt").write_text("a\n")
    git(a, "add", "a.txt")
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", f"--git-dir={a / '.git'}", f"--work-tree={a}", "commit", "-q", "-m", "a"],
        cwd=a,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["seen"]["GIT_DIR"] and data["seen"]["GIT_INDEX_FILE"]  # a real hook env
    assert git(b, "rev-parse", "HEAD").strip() == data["commit"]
    assert git(b, "show", "HEAD:procedures/h/main.py") == "h\n"
    assert git(b, "status", "--porcelain", "--untracked-files=all") == ""
    assert "procedures" not in git(a, "ls-tree", "-r", "--name-only", "HEAD")
    assert git(a, "log", "-1", "--format=%s").strip() == "a"
    assert git(a, "status", "--porcelain", "--untracked-files=all") == ""


ONE_WRITE = r"""
import sys
from proctor.store import Change, GitStore, format_ident
with GitStore(sys.argv[1]) as store:
    store.write("refs/heads/main",
                lambda _t: Change(edits={sys.argv[2]: sys.argv[3].encode()}, message="one"),
                author=format_ident("One", "one@example.com"))
"""


def contents_in_bucket(bucket: str, count: int) -> list[str]:
    """Texts whose blob ids start with ``bucket``: the directory git samples to decide
    whether there are too many loose objects."""
    found = []
    i = 0
    while len(found) < count:
        text = f"content {i}\n"
        data = text.encode()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith(bucket):
            found.append(text)
        i += 1
    return found


def test_store_written_only_by_separate_processes_gets_packed(repo: Path, tmp_path: Path) -> None:
    """Each write its own process (as the CLI is): the write count is kept across them,
    so ``git gc --auto`` is asked and the loose objects get packed."""
    git(repo, "config", "gc.auto", "1")  # git packs once objects/17 holds 2 loose objects
    git(repo, "config", "gc.autoDetach", "false")
    script = tmp_path / "one.py"
    script.write_text(ONE_WRITE)
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    for i, text in enumerate(contents_in_bucket("17", 6)):
        subprocess.run(
            [sys.executable, str(script), str(repo), f"f{i}.txt", text], env=env, check=True
        )
    stats = dict(
        line.split(": ") for line in git(repo, "count-objects", "-v").splitlines() if ": " in line
    )
    assert int(stats["in-pack"]) > 0, stats
    assert not list((repo / ".git/objects/17").glob("*")), "loose objects left in objects/17"
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "6"
    assert git(repo, "status", "--porcelain") == ""
