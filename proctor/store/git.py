"""Running git: the one helper every store module spawns git through, and discovery.

Kept apart so the modules that shell out (refs, the work-tree sync, the facade) share one
way of calling git (bytes in, bytes out, never raising on a non-zero exit) and so finding
the repository needs nothing else of the store.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from proctor.core.errors import NotARepositoryError, StoreError, UsageError

#: The variables that point a git process at a repository, an index or an object
#: directory: git's own list of what it clears before it works in another repository
#: (``local_repo_env``). A proctor run inside a git hook inherits them from the outer git;
#: passed on, they would make every git proctor runs act on that other repository.
LOCAL_REPO_ENV = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
        "GIT_QUARANTINE_PATH",
    }
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a git proctor runs: the caller's, without ``LOCAL_REPO_ENV``
    (so the repository is the one proctor opened), plus ``extra`` (set on purpose)."""
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_REPO_ENV}
    if extra:
        env.update(extra)
    return env


def end_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Wait for a long-lived git (``cat-file --batch``, ``update-ref --stdin``) whose
    stdin was just closed to exit; kill it if it has not after ``timeout`` seconds.

    ``Popen.wait(timeout)`` looks for the exit between sleeps of 0.5 ms, 1 ms, 2 ms...,
    which costs a CLI command a millisecond or two per process it closes. A pidfd (Linux
    5.3 and later) wakes this wait the moment git exits; elsewhere ``wait`` polls as usual.
    """
    if proc.poll() is None:
        opened: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            opened = os.pidfd_open(proc.pid)  # our child, not yet reaped: the pid is its own
        if opened is not None:
            import select

            try:
                poller = select.poll()
                poller.register(opened, select.POLLIN)
                poller.poll(int(timeout * 1000))
            finally:
                os.close(opened)
        try:
            proc.wait(timeout=0.05 if opened is not None else timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_git(
    args: list[str], cwd: str, *, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git *args`` in ``cwd``; the caller reads the return code.

    The environment is always ``git_env(env)``: the variables in ``env`` are added on
    purpose (a private index), none is inherited by accident.
    """
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=git_env(env),
        check=False,
    )


def read_config(cwd: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The values of ``keys`` (lower-case ``section.name``) as git resolves them, last wins.

    A key set without a value (``[user] useConfigOnly``) reads as ``true``, as git reads it.
    """
    pattern = "^(" + "|".join(re.escape(k) for k in keys) + ")$"
    proc = run_git(["config", "-z", "--get-regexp", pattern], cwd)
    out: dict[str, str] = {}
    if proc.returncode not in (0, 1):
        raise StoreError(f"git config failed: {proc.stderr.decode(errors='replace').strip()}")
    for record in proc.stdout.split(b"\0"):
        if not record:
            continue
        key, newline, value = record.decode("utf-8", "surrogateescape").partition("\n")
        out[key.lower()] = value if newline else "true"
    return out


def discover(path: str | os.PathLike[str]) -> tuple[str | None, str, str]:
    """Find the repository around ``path``: (work tree or None if bare, git dir, common dir)."""
    p = Path(path)
    if not p.exists():
        raise NotARepositoryError(f"{path}: no such directory")
    if p.is_file():
        p = p.parent
    # One process in the usual case (a work tree): ``--show-toplevel`` fails outside
    # one (a bare repository, or inside .git), and then the question is asked without it.
    query = ["rev-parse", "--is-bare-repository", "--absolute-git-dir", "--git-common-dir"]
    proc = run_git([*query, "--show-toplevel"], str(p))
    if proc.returncode != 0:
        proc = run_git(query, str(p))
    if proc.returncode != 0:
        raise NotARepositoryError(f"{path}: not a git repository")
    lines = proc.stdout.decode().splitlines()
    bare, git_dir, common = lines[:3]
    common_path = Path(common)
    if not common_path.is_absolute():
        common_path = (p / common_path).resolve()
    work_tree: str | None = None
    if bare != "true" and len(lines) > 3:
        work_tree = lines[3].strip()
        if not leads_back(work_tree, git_dir):
            raise UsageError(
                f"{path}: its work tree {work_tree} is set by core.worktree and holds no .git "
                f"that leads back to {git_dir}; proctor runs git inside the work tree, so "
                "it needs one (a .git file reading 'gitdir: <git dir>' would do)"
            )
    return work_tree, git_dir, str(common_path)


def read_head(path: str) -> str | None:
    """A ``HEAD`` file's text as git reads it; None if there is none to read.

    A ``HEAD`` that is a symbolic link to ``refs/...`` (``core.preferSymlinkRefs`` made
    them) is the ``ref: `` line it stands for: read through, it would show the branch's
    commit, as if detached.
    """
    try:
        target = os.readlink(path)
    except OSError:
        pass  # a plain file (or none)
    else:
        if target.startswith("refs/"):
            return "ref: " + target
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096).decode("utf-8", "surrogateescape").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def same_path(a: str, b: str) -> bool:
    """Whether two paths name the same place once links are followed."""
    return os.path.realpath(a) == os.path.realpath(b)


def leads_back(work_tree: str, git_dir: str) -> bool:
    """Whether git started in ``work_tree`` finds ``git_dir``: its ``.git`` is that folder,
    or a file naming it (a submodule, a linked work tree, ``--separate-git-dir``)."""
    dot_git = os.path.join(work_tree, ".git")
    if os.path.isdir(dot_git):
        return same_path(dot_git, git_dir)
    try:
        with open(dot_git, encoding="utf-8", errors="surrogateescape") as fh:
            line = fh.readline().strip()
    except OSError:
        return False
    if not line.startswith("gitdir: "):
        return False
    return same_path(os.path.join(work_tree, line[len("gitdir: ") :]), git_dir)
