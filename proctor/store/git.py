"""Running git: the one helper every store module spawns git through, and discovery.

Kept apart so the modules that shell out (refs, the work-tree sync, the facade) share one
way of calling git (bytes in, bytes out, never raising on a non-zero exit) and so finding
the repository needs nothing else of the store.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from proctor.core.errors import NotARepositoryError


def run_git(
    args: list[str], cwd: str, *, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git *args`` in ``cwd``; the caller reads the return code."""
    return subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, env=env, check=False
    )


def discover(path: str | os.PathLike[str]) -> tuple[str | None, str, str]:
    """Find the repository around ``path``: (work tree or None if bare, git dir, common dir)."""
    p = Path(path)
    if not p.exists():
        raise NotARepositoryError(f"{path}: no such directory")
    if p.is_file():
        p = p.parent
    proc = run_git(
        ["rev-parse", "--is-bare-repository", "--absolute-git-dir", "--git-common-dir"], str(p)
    )
    if proc.returncode != 0:
        raise NotARepositoryError(f"{path}: not a git repository")
    bare, git_dir, common = proc.stdout.decode().splitlines()[:3]
    common_path = Path(common)
    if not common_path.is_absolute():
        common_path = (p / common_path).resolve()
    work_tree: str | None = None
    if bare != "true":
        top = run_git(["rev-parse", "--show-toplevel"], str(p))
        if top.returncode == 0:
            work_tree = top.stdout.decode().strip()
    return work_tree, git_dir, str(common_path)
