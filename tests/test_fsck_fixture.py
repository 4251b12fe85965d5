"""The fixture that runs ``git fsck --strict`` after every test catches a bad object:
run pytest on a test that writes a commit whose author line git rejects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

INNER = r"""
import subprocess


def make(tmp_path, author):
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    def run(args, data):
        out = subprocess.run(args, cwd=repo, input=data, capture_output=True, check=True)
        return out.stdout.decode().strip()

    blob = run(["git", "hash-object", "-w", "--stdin"], b"x\n")
    tree = run(["git", "mktree"], f"100644 blob {blob}\tx\n".encode())
    body = (
        f"tree {tree}\n"
        f"author {author} 1700000000 +0000\n"
        "committer C <c@example.com> 1700000000 +0000\n\nm\n"
    ).encode()
    sha = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        cwd=repo, input=body, capture_output=True, check=True,
    ).stdout.decode().strip()
    subprocess.run(["git", "update-ref", "refs/heads/main", sha], cwd=repo, check=True)


def test_writes_a_bad_commit(tmp_path):
    make(tmp_path, "ana <ana@x.org> <ana <ana@x.org>>")


def test_writes_a_good_commit(tmp_path):
    make(tmp_path, "Ana <ana@x.org>")
"""


def test_fsck_fixture_fails_a_test_that_wrote_a_bad_commit(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    root.mkdir()
    shutil.copy(Path(__file__).with_name("conftest.py"), root / "conftest.py")
    (root / "test_inner.py").write_text(INNER)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "2 passed, 1 error" in proc.stdout, proc.stdout[-2000:]
    assert "ERROR" in proc.stdout and "test_writes_a_bad_commit" in proc.stdout
    assert "git fsck --strict failed" in proc.stdout
