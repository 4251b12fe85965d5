"""Shared fixtures: real git repositories in temp dirs, and the CLI run in-process or as a
real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# pytest caches each test module's assertion-rewritten bytecode unless bytecode writing is
# off (PYTHONDONTWRITEBYTECODE); without the cache every worker of every run rewrites all
# test modules again, ~10 s of CPU each. The cache goes to the ignored __pycache__ folders
# and is checked against the source like any other, so nothing a test sees changes.
sys.dont_write_bytecode = False

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
}

BIN = Path(sys.executable).parent

# git's own list of the variables that point a git process at a repository (what git
# clears before it runs a command in another one): the fsck below must check the
# repository it names, whatever a test left in the environment.
LOCAL_REPO_ENV = (
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
)


#: Test files whose module- or session-scoped fixtures are expensive: each runs whole on
#: one worker, so they are built once. Every other test goes to whichever worker is free.
ONE_WORKER_FILES = {
    "tests/test_bad_input_matrix.py": "one store and its bad files for the whole module",
    "tests/test_plugins.py": "the plugin packages built and installed by pip",
    "tests/test_precommit.py": "the two pre-commit try-repo runs",
    "tests/test_run_log.py": "the PostgreSQL server",
    "tests/test_sandbox_corpus.py": "the sandbox host",
    "tests/test_llm_litellm.py": "litellm, imported once (seconds of CPU)",
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default in pyproject): two workers more than CPUs. A good part of
    the suite waits rather than computes (git and proctor subprocesses, servers on
    127.0.0.1, sandboxed runs that sleep until killed): on the 2-CPU CI machine 4 workers
    took the suite from 162 s to 145 s in runs back to back."""
    return (os.cpu_count() or 1) + 2


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup`` (the default in pyproject): xdist's own grouping by
    ``xdist_group`` marks relies on renaming test ids, which pytest 9 no longer allows, so
    here a test's group is its file when that file is in ONE_WORKER_FILES, else the test
    alone. xdist hands out the largest groups first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FileGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in ONE_WORKER_FILES else super()._split_scope(nodeid)

    return FileGroups(config, log)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_fsck: the test leaves a repository broken on purpose; skip the fsck after it",
    )


def git_dirs(root: Path) -> list[Path]:
    """Every repository (its git dir) under ``root``: a folder holding HEAD, objects/ and
    refs/. Not descended into, so a repository's own files are not walked."""
    found = []
    for here, dirs, files in os.walk(root):
        if "HEAD" in files and "objects" in dirs and "refs" in dirs:
            found.append(Path(here))
            dirs.clear()
            continue
        dirs[:] = [d for d in dirs if d not in ("node_modules", ".venv")]
    return found


def fsck_problems(git_dir: Path) -> str:
    """What ``git fsck --strict`` says of a repository ("" when it is clean)."""
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_REPO_ENV}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    proc = subprocess.run(
        ["git", "--git-dir", str(git_dir), "fsck", "--strict", "--no-dangling", "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode == 0 and not proc.stdout.strip() and "error" not in proc.stderr:
        return ""
    return (proc.stdout + proc.stderr).strip() or f"exit {proc.returncode}"


@pytest.fixture(autouse=True)
def fsck_written_repos(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that made repositories under its tmp_path: each one passes
    ``git fsck --strict``, so every commit and tag proctor wrote is checked by git."""
    if "tmp_path" not in request.fixturenames or request.node.get_closest_marker("no_fsck"):
        yield
        return
    root: Path = request.getfixturevalue("tmp_path")
    yield
    failures = []
    for git_dir in git_dirs(root):
        problems = fsck_problems(git_dir)
        if problems:
            failures.append(f"{git_dir}:\n{problems}")
    if failures:
        pytest.fail("git fsck --strict failed after the test:\n" + "\n".join(failures))


def set_test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment every test runs in: a git identity and no user/system git config
    surprises."""
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("PROCTOR_ACTOR", raising=False)
    monkeypatch.delenv("PROCTOR_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("PROCTOR_STRICT_PLUGINS", raising=False)


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets a git identity and no user/system git config surprises."""
    set_test_environment(monkeypatch)


@contextmanager
def fixture_environment() -> Iterator[None]:
    """The test environment for a module- or session-scoped fixture, which pytest sets up
    before the per-test ``git_identity`` applies."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_test_environment(monkeypatch)
        yield


def copy_repo(template: Path, dest: Path) -> Path:
    """A fresh copy of a repository built once by a wider-scoped fixture: the same commits,
    refs and work tree as building it again, for a test to change at will. The copy keeps
    symlinks and file modes; git refreshes the index's stat data on first use."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def switch_off_the_store_branch(repo: Path) -> None:
    """Check out another branch, whose committed ``proctor.toml`` still names main as the
    store branch: main is then checked out nowhere in ``repo``'s main work tree."""
    git(repo, "switch", "-q", "-c", "other")
    (repo / "proctor.toml").write_text('store-ref = "refs/heads/main"\n')
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "other branch names main")


def init_repo(path: Path) -> Path:
    """An empty git repository at ``path`` on branch main (no commit yet)."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository on branch main (no commit yet)."""
    return init_repo(tmp_path / "repo")


def write_file(path: Path, text: str | bytes) -> Path:
    """Write a test file (creating its folders); bytes are written as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def repo_state(path: Path) -> dict[str, str]:
    """Everything a failed command must leave exactly as it was."""
    return {
        "status": git(path, "status", "--porcelain", "--untracked-files=all"),
        "refs": git(path, "for-each-ref", "--format=%(refname) %(objectname)"),
        "head": git(path, "symbolic-ref", "-q", "HEAD", check=False)
        or git(path, "rev-parse", "HEAD", check=False),
        "fsck": git(path, "fsck", "--strict", "--no-dangling", check=False),
    }


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> Run:
    """Run the installed ``proctor`` console script as a real subprocess."""
    full_env = {**os.environ, **IDENTITY, **(env or {})}
    proc = subprocess.run(
        [str(BIN / "proctor"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def python_json(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``script`` in a fresh interpreter (its ``sys.modules`` holds only what it
    imported) and return the JSON its last line of output holds."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])


GREET = 'def run(name: str) -> str:\n    return "hello " + name\n'


def add_greet(repo: Path) -> Path:
    """``repo`` with one procedure, ``greet``, created through proctor."""
    from proctor import Workspace

    with Workspace.open(repo, actor="tester@example.com") as ws:
        ws.execute("procedure.create", {"name": "greet", "code": GREET, "description": "Greets"})
    return repo


@pytest.fixture
def store(repo: Path) -> Iterator[Path]:
    """A repository with one procedure, ``greet``, created through proctor."""
    yield add_greet(repo)
