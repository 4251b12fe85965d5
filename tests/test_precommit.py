"""The hooks as users get them: the real ``pre-commit try-repo`` against this repository.

pre-commit builds its own environment from this repository (HEAD plus uncommitted changes
to tracked files) with pip, so these tests need network access to PyPI and take a while;
they are marked slow. The manifest itself is checked without network.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: pre-commit builds the hook environment once per revision."""
    return tmp_path_factory.mktemp("pre-commit-home")


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


def try_repo(project: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PRE_COMMIT_COLOR": "never",
        "PROCTOR_NO_ENTRY_POINTS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(ROOT), hook, "--all-files", "--color", "never"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def hook_lines(output: str) -> list[str]:
    return [
        line for line in output.splitlines() if re.match(r"^[\w./-]+\.py:\d+:\d+: [A-Z]+\d+ ", line)
    ]


@pytest.mark.slow
def test_try_repo_log_lint(tmp_path: Path, pre_commit_home: Path) -> None:
    project = make_project(
        tmp_path / "project",
        {
            "svc/fetch.py": DANGEROUS_LOG,
            "svc/clean.py": CLEAN,
            "README.md": "retry\n",
        },
    )
    done = try_repo(project, "proctor-log-lint", pre_commit_home)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert re.search(r"proctor log lint\.+Failed", output), output
    assert "- hook id: proctor-log-lint" in output
    assert "- exit code: 1" in output
    assert hook_lines(output) == [
        "svc/fetch.py:7:17: PL101 log message contains disallowed phrase 'retry' "
        "(configured entry 'retry')",
    ]
    assert "clean.py" not in output and "README" not in output


@pytest.mark.slow
def test_try_repo_safety(tmp_path: Path, pre_commit_home: Path) -> None:
    project = make_project(
        tmp_path / "project",
        {
            "tools/clean_dir.py": DANGEROUS_CODE,
            "tools/add.py": CLEAN,
        },
    )
    done = try_repo(project, "proctor-safety", pre_commit_home)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert re.search(r"proctor safety\.+Failed", output), output
    lines = hook_lines(output)
    assert lines and all(line.startswith("tools/clean_dir.py:") for line in lines), output
    assert any(" PS" in line for line in lines)
    assert "tools/add.py" not in output


@pytest.mark.slow
def test_try_repo_passes_a_clean_project(tmp_path: Path, pre_commit_home: Path) -> None:
    project = make_project(
        tmp_path / "project",
        {
            "procedures/add/main.py": CLEAN,
            "procedures/add/metadata.json": '{"name": "add", "capabilities": {}}\n',
            "lib/util.py": CLEAN,
        },
    )
    for hook, name in (
        ("proctor-safety", "proctor safety"),
        ("proctor-log-lint", "proctor log lint"),
        ("proctor-procedures", "proctor procedures"),
    ):
        done = try_repo(project, hook, pre_commit_home)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert re.search(rf"{name}\.+Passed", output), output


@pytest.mark.slow
def test_try_repo_procedures_only_sees_procedure_files(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    project = make_project(
        tmp_path / "project",
        {
            "procedures/notify/main.py": DANGEROUS_LOG.replace('retry")', 'retry")  # noqa: PL101'),
            "procedures/notify/metadata.json": '{"name": "notify", "capabilities": {}}\n',
            "lib/fetch.py": DANGEROUS_LOG,
        },
    )
    done = try_repo(project, "proctor-procedures", pre_commit_home)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    lines = hook_lines(output)
    assert lines and all(line.startswith("procedures/notify/main.py:") for line in lines), output
    assert any(" PL101 " in line for line in lines)
