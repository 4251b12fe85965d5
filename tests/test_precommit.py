"""The hooks as users get them: the real ``pre-commit try-repo`` against this repository.

pre-commit builds its own environment from this repository (HEAD plus uncommitted changes
to tracked files) with pip, so these tests need the package index and take a while; they
are marked slow. The manifest itself is checked without it.

Building that environment is nearly all of their cost, and ``try-repo`` cannot share one
between invocations: it always installs into a store of its own in a temporary directory
(``PRE_COMMIT_HOME`` is not read). So the tests share invocations instead: two projects,
one whose every file is clean and one holding each hook's problem cases in separate
directories, each checked once with every hook of the manifest (one environment per
invocation, since the three hooks share it), both invocations running at the same time.
Each test then reads its own hook's section of the output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PRE_COMMIT = BIN / "pre-commit"

DANGEROUS_LOG = (
    "import logging\n"
    "\n"
    "log = logging.getLogger(__name__)\n"
    "\n"
    "\n"
    "def fetch(url):\n"
    '    log.warning("fetch failed, will retry")\n'
)
DANGEROUS_CODE = "import os\n\n\ndef clean(path):\n    os.system('rm -rf ' + path)\n"
CLEAN = "def add(a: int, b: int) -> int:\n    return a + b\n"


def load_manifest() -> list[dict[str, object]]:
    """Parse .pre-commit-hooks.yaml with the YAML loader pre-commit itself uses."""
    import yaml

    with open(ROOT / ".pre-commit-hooks.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_manifest_declares_the_three_hooks() -> None:
    hooks = {hook["id"]: hook for hook in load_manifest()}
    assert set(hooks) == {"proctor-safety", "proctor-log-lint", "proctor-procedures"}
    assert hooks["proctor-safety"]["entry"] == "proctor-hook-safety"
    assert hooks["proctor-log-lint"]["entry"] == "proctor-hook-log-lint"
    assert hooks["proctor-procedures"]["entry"] == "proctor-hook-procedures"
    assert hooks["proctor-procedures"]["files"] == r"^procedures/.*\.py$"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types"] == ["python"]
        assert hook["name"]
        assert (BIN / str(hook["entry"])).exists(), f"console script {hook['entry']} missing"
    assert re.search(r"^procedures/.*\.py$", "procedures/fetch/main.py")


def test_manifest_is_valid_for_pre_commit() -> None:
    """pre-commit's own schema check of a hooks manifest."""
    done = subprocess.run(
        [str(PRE_COMMIT), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(root, "add", ".")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "project")
    return root


# Each hook's cases live in their own directory, so a test can tell which files another
# hook's cases put in its section.
PROBLEMS = {
    # log lint: a retry message; a clean module and a README that says "retry" stay quiet.
    "svc/fetch.py": DANGEROUS_LOG,
    "svc/clean.py": CLEAN,
    "README.md": "retry\n",
    # safety: a shell command; the clean module next to it stays quiet.
    "tools/clean_dir.py": DANGEROUS_CODE,
    "tools/add.py": CLEAN,
    # procedures: a suppression the procedure hook does not honour, and the same message
    # outside procedures/, which that hook does not look at.
    "procedures/notify/main.py": DANGEROUS_LOG.replace('retry")', 'retry")  # noqa: PL101'),
    "procedures/notify/metadata.json": '{"name": "notify", "capabilities": {}}\n',
    "lib/fetch.py": DANGEROUS_LOG,
}
CLEAN_PROJECT = {
    "procedures/add/main.py": CLEAN,
    "procedures/add/metadata.json": '{"name": "add", "capabilities": {}}\n',
    "lib/util.py": CLEAN,
}
HOOK_NAMES = {
    "proctor-log-lint": "proctor log lint",
    "proctor-procedures": "proctor procedures",
    "proctor-safety": "proctor safety",
}


class Run:
    """One finished ``pre-commit try-repo`` run: its status, its output, and the output
    split into one section per hook (``name......Passed`` starts a section)."""

    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output
        self.sections: dict[str, str] = {}
        name: str | None = None
        for line in output.splitlines():
            match = re.match(r"^(proctor [a-z ]+?)\.{3,}\w+$", line)
            if match:
                name = match.group(1)
            if name is not None:
                self.sections[name] = self.sections.get(name, "") + line + "\n"

    def section(self, hook: str) -> str:
        name = HOOK_NAMES[hook]
        assert name in self.sections, self.output
        return self.sections[name]


def start_try_repo(project: Path, home: Path) -> subprocess.Popen[str]:
    """``pre-commit try-repo <this repository> --all-files``: every hook of the manifest."""
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PRE_COMMIT_COLOR": "never",
        "PROCTOR_NO_ENTRY_POINTS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    return subprocess.Popen(
        [str(PRE_COMMIT), "try-repo", str(ROOT), "--all-files", "--color", "never"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture(scope="session")
def try_repo_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Both projects checked once per session, the two runs side by side."""
    base = tmp_path_factory.mktemp("try-repo")
    home = base / "pre-commit-home"
    home.mkdir()
    projects = {
        "problems": make_project(base / "problems", PROBLEMS),
        "clean": make_project(base / "clean", CLEAN_PROJECT),
    }
    procs = {name: start_try_repo(path, home) for name, path in projects.items()}
    runs: dict[str, Run] = {}
    try:
        for name, proc in procs.items():
            output, _ = proc.communicate(timeout=900)
            runs[name] = Run(proc.returncode, output)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    yield runs


def hook_lines(output: str) -> list[str]:
    return [
        line for line in output.splitlines() if re.match(r"^[\w./-]+\.py:\d+:\d+: [A-Z]+\d+ ", line)
    ]


@pytest.mark.slow
def test_try_repo_log_lint(try_repo_runs: dict[str, Run]) -> None:
    run = try_repo_runs["problems"]
    assert run.returncode == 1, run.output
    section = run.section("proctor-log-lint")
    assert re.search(r"proctor log lint\.+Failed", section), run.output
    assert "- hook id: proctor-log-lint" in section
    assert "- exit code: 1" in section
    assert hook_lines(section) == [
        "lib/fetch.py:7:17: PL101 [error] log message contains disallowed phrase 'retry' "
        "(configured entry 'retry')",
        "svc/fetch.py:7:17: PL101 [error] log message contains disallowed phrase 'retry' "
        "(configured entry 'retry')",
    ]
    # The suppression counts outside procedure mode; clean files and non-Python stay quiet.
    assert "procedures/notify" not in section
    assert "clean.py" not in section and "README" not in section


@pytest.mark.slow
def test_try_repo_safety(try_repo_runs: dict[str, Run]) -> None:
    run = try_repo_runs["problems"]
    section = run.section("proctor-safety")
    assert re.search(r"proctor safety\.+Failed", section), run.output
    assert "- exit code: 1" in section
    lines = hook_lines(section)
    assert lines and all(line.startswith("tools/clean_dir.py:") for line in lines), run.output
    assert any(" PS" in line for line in lines)
    assert "tools/add.py" not in section


@pytest.mark.slow
def test_try_repo_passes_a_clean_project(try_repo_runs: dict[str, Run]) -> None:
    run = try_repo_runs["clean"]
    assert run.returncode == 0, run.output
    for hook, name in HOOK_NAMES.items():
        assert re.search(rf"{name}\.+Passed", run.section(hook)), run.output
    assert hook_lines(run.output) == []


@pytest.mark.slow
def test_try_repo_procedures_only_sees_procedure_files(try_repo_runs: dict[str, Run]) -> None:
    run = try_repo_runs["problems"]
    section = run.section("proctor-procedures")
    assert re.search(r"proctor procedures\.+Failed", section), run.output
    lines = hook_lines(section)
    assert lines and all(line.startswith("procedures/notify/main.py:") for line in lines), (
        run.output
    )
    assert any(" PL101 " in line for line in lines)
