"""The pre-commit entry points (proctor/hooks/*), called as pre-commit calls them: main()
with file names, exact stdout, exit status; and as installed console scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_file

from proctor.core.plugins import get_plugin_manager, reset_plugin_manager
from proctor.precommit import log_lint, procedure_code, safety

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
if not CORPORA.is_dir():
    CORPORA = Path("/work/shared/corpora")
BIN = Path(sys.executable).parent
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+) (?P<msg>.+)$")

RETRY_LOG = 'import logging\nlog = logging.getLogger(__name__)\nlog.info("will retry soon")\n'
RETRY_FINDING = (
    "PL101 [error] log message contains disallowed phrase 'retry' (configured entry 'retry')"
)


@pytest.fixture(autouse=True)
def builtin_plugins_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Hooks see the built-in validators only, loaded fresh for each test."""
    monkeypatch.setenv("PROCTOR_NO_ENTRY_POINTS", "1")
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory as pre-commit sees it: the cwd, a git repo, relative names."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str | bytes) -> str:
    """The hooks take paths as strings, as pre-commit passes them."""
    return str(write_file(path, text))


def needs(check: str) -> None:
    if check not in get_plugin_manager().validators():
        pytest.fail(f"the built-in {check!r} validator is not registered")


# -- log lint --------------------------------------------------------------------------------


def test_log_lint_hook_reports_exact_lines(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(work / "svc/a.py", RETRY_LOG)
    write(work / "svc/clean.py", "import logging\nlogging.info('attempt %d of %d', 1, 3)\n")
    assert log_lint.main(["svc/a.py", "svc/clean.py"]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"svc/a.py:3:10: {RETRY_FINDING}\n"
    assert captured.err == ""


def test_hooks_without_files_pass(capsys: pytest.CaptureFixture[str]) -> None:
    for hook in (safety, log_lint, procedure_code):
        assert hook.main([]) == 0
    assert capsys.readouterr() == ("", "")


def test_log_lint_hook_clean_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(work / "a.py", "import logging\nlogging.getLogger().info('attempt failed')\n")
    assert log_lint.main(["a.py"]) == 0
    assert capsys.readouterr() == ("", "")


def test_log_lint_hook_honours_noqa_codes_and_reports_bare_noqa(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(work / "coded.py", RETRY_LOG.replace('soon")', 'soon")  # noqa: PL101'))
    write(work / "prefix.py", RETRY_LOG.replace('soon")', 'soon")  # noqa: PL1'))
    write(work / "bare.py", RETRY_LOG.replace('soon")', 'soon")  # noqa PL101'))
    # A bare noqa that names none of our codes is another linter's: not reported here.
    write(work / "other.py", "x = 1  # noqa\n")
    assert log_lint.main(["coded.py", "prefix.py", "other.py"]) == 0
    assert capsys.readouterr().out == ""
    assert log_lint.main(["bare.py"]) == 1
    assert capsys.readouterr().out == (
        f"bare.py:3:10: {RETRY_FINDING}\n"
        "bare.py:3:30: PC002 [warning] bare `# noqa` suppresses nothing; name the codes, "
        "e.g. `# noqa: PS101`\n"
    )


def test_log_lint_hook_uses_the_project_config(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        work / "proctor.toml",
        '[log-lint]\ndisallowed = ["gave up"]\n[check]\nper-file-ignores = { "legacy/*" = ["PL"] }\n',
    )
    write(work / "a.py", RETRY_LOG.replace("will retry soon", "gave up after 3"))
    write(work / "legacy/b.py", RETRY_LOG.replace("will retry soon", "gave up"))
    assert log_lint.main(["a.py", "legacy/b.py"]) == 1
    assert capsys.readouterr().out == (
        "a.py:3:10: PL101 [error] log message contains disallowed phrase 'gave up' "
        "(configured entry 'gave up')\n"
    )


def test_config_select_narrows_what_a_hook_runs(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(work / "a.py", RETRY_LOG + "log.warn('x')\n")
    write(work / "proctor.toml", '[check]\nselect = ["PL2"]\n')
    assert log_lint.main(["a.py"]) == 1
    assert [m["code"] for m in map(LINE.match, capsys.readouterr().out.splitlines())] == ["PL205"]
    write(work / "proctor.toml", '[check]\nselect = ["safety"]\n')
    assert log_lint.main(["a.py"]) == 0
    assert capsys.readouterr().out == ""


def test_hooks_on_bad_input(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(work / "syntax.py", "def f(:\n")
    write(work / "binary.py", b"\x00\x01\x02")
    write(work / "latin.py", "x = 'caf\xe9'\n".encode("latin-1"))
    write(work / "empty.py", "")
    assert log_lint.main(["syntax.py", "binary.py", "latin.py", "empty.py"]) == 1
    assert capsys.readouterr().out == (
        "binary.py:1:1: PC003 [error] binary file (a NUL byte at line 1), not Python source\n"
        "latin.py:1:1: PC003 [error] not valid source text: invalid continuation byte\n"
        "syntax.py:1:7: PC001 [error] syntax error: invalid syntax\n"
    )


def test_hook_arguments(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert safety.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: proctor-hook-safety [-h] [filenames ...]\n")
    assert log_lint.main(["--fix", "a.py"]) == 2
    assert capsys.readouterr().err.endswith("error: unrecognized argument: --fix\n")
    write(work / "-odd.py", RETRY_LOG)
    assert log_lint.main(["--", "-odd.py"]) == 1
    assert capsys.readouterr().out == f"-odd.py:3:10: {RETRY_FINDING}\n"


def test_hooks_accept_config_select_naming_checks_they_do_not_load(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third-party check named in the config must not break the hooks, which load the
    built-in checks only; ``proctor check`` (which loads every plugin) still refuses it."""
    write(work / "a.py", RETRY_LOG)
    write(work / "proctor.toml", '[check]\nselect = ["log-lint", "acme-secrets", "AC1"]\n')
    assert log_lint.main(["a.py"]) == 1
    assert capsys.readouterr().out == f"a.py:3:10: {RETRY_FINDING}\n"
    from proctor.checks.runner import run_cli

    assert run_cli(["a.py"]) == 2
    assert "unknown check or rule 'acme-secrets'" in capsys.readouterr().err


def test_hooks_exit_2_on_missing_file_and_bad_config(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert log_lint.main(["missing.py"]) == 2
    assert capsys.readouterr() == ("", "error: no such file or directory: missing.py\n")
    write(work / "a.py", "x = 1\n")
    write(work / "proctor.toml", "[check]\nselct = ['nope']\n")
    assert log_lint.main(["a.py"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "unknown key(s) selct" in captured.err
    write(work / "proctor.toml", "[log-lint]\ndisallowed = ['re:(']\n")
    write(work / "a.py", RETRY_LOG)
    assert log_lint.main(["a.py"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_hook_excludes_from_config_apply_to_passed_files(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(work / "pyproject.toml", '[tool.proctor.check]\nexclude = ["generated"]\n')
    write(work / "generated/a.py", RETRY_LOG)
    assert log_lint.main(["generated/a.py"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPORA / "loglint/flagged").glob("*.py")))
def test_log_lint_hook_on_flagged_corpus(
    name: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(work / name, (CORPORA / "loglint/flagged" / name).read_text(encoding="utf-8"))
    assert log_lint.main([path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(LINE.match(line) and LINE.match(line)["code"] == "PL101" for line in lines), lines


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPORA / "loglint/clean").glob("*.py")))
def test_log_lint_hook_on_clean_corpus(
    name: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(work / name, (CORPORA / "loglint/clean" / name).read_text(encoding="utf-8"))
    log_lint.main([path])
    assert not [line for line in capsys.readouterr().out.splitlines() if " PL1" in line]


# -- safety ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (CORPORA / "safety/dangerous").glob("*.py"))
)
def test_safety_hook_on_dangerous_corpus(
    name: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs("safety")
    path = write(work / name, (CORPORA / "safety/dangerous" / name).read_text(encoding="utf-8"))
    assert safety.main([path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines
    assert all(LINE.match(line)["path"] == path for line in lines)
    assert any(LINE.match(line)["code"].startswith("PS") for line in lines)


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPORA / "safety/benign").glob("*.py")))
def test_safety_hook_on_benign_corpus(
    name: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs("safety")
    path = write(work / name, (CORPORA / "safety/benign" / name).read_text(encoding="utf-8"))
    assert safety.main([path]) == 0
    assert capsys.readouterr().out == ""


def test_safety_hook_exact_output_and_noqa(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs("safety")
    write(work / "danger.py", "import os\n\n\ndef f(cmd):\n    os.system(cmd)\n")
    assert safety.main(["danger.py"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines and all(LINE.match(line) for line in lines), out
    first = LINE.match(lines[-1])
    assert (first["path"], first["line"], first["code"][:2]) == ("danger.py", "5", "PS")
    codes = sorted({LINE.match(line)["code"] for line in lines})
    write(
        work / "danger.py",
        "import os  # noqa: PS\n\n\ndef f(cmd):\n    os.system(cmd)  # noqa: "
        + ", ".join(codes)
        + "\n",
    )
    assert safety.main(["danger.py"]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out == ""


def test_safety_hook_does_not_run_log_lint(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs("safety")
    write(work / "a.py", RETRY_LOG)
    assert safety.main(["a.py"]) == 0
    assert capsys.readouterr().out == ""


# -- procedures -------------------------------------------------------------------------------


def test_procedures_hook_ignores_suppressions(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = RETRY_LOG.replace('soon")', 'soon")  # noqa: PL101') + "x = 1  # noqa PL201\n"
    write(work / "procedures/notify/main.py", code)
    write(work / "proctor.toml", '[check]\nper-file-ignores = { "procedures/*" = ["PL"] }\n')
    assert procedure_code.main(["procedures/notify/main.py"]) == 1
    assert capsys.readouterr().out == f"procedures/notify/main.py:3:10: {RETRY_FINDING}\n"
    assert log_lint.main(["procedures/notify/main.py"]) == 1
    assert capsys.readouterr().out == (
        "procedures/notify/main.py:4:8: PC002 [warning] bare `# noqa` suppresses nothing; "
        "name the codes, e.g. `# noqa: PS101`\n"
    )


def test_procedures_hook_reports_syntax_errors(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(work / "procedures/broken/main.py", "def run(:\n    pass\n")
    assert procedure_code.main(["procedures/broken/main.py"]) == 1
    assert (
        capsys.readouterr().out
        == "procedures/broken/main.py:1:9: PC001 [error] syntax error: invalid syntax\n"
    )


def test_procedures_hook_runs_safety_with_declared_capabilities(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs("safety")
    code = (
        "import subprocess\n\n\ndef run(url):\n"
        "    return subprocess.run(['curl', url], capture_output=True).stdout\n"
    )
    for name, caps in (
        ("locked", {"network": False, "subprocess": False}),
        ("trusted", {"network": True, "subprocess": True}),
    ):
        write(work / f"procedures/{name}/main.py", code)
        write(
            work / f"procedures/{name}/metadata.json",
            json.dumps({"name": name, "capabilities": caps}),
        )
    assert procedure_code.main(["procedures/locked/main.py"]) == 1
    locked = capsys.readouterr().out.splitlines()
    assert locked and all(LINE.match(line)["code"].startswith("PS") for line in locked)
    procedure_code.main(["procedures/trusted/main.py"])
    trusted = capsys.readouterr().out.splitlines()
    assert len(trusted) < len(locked), (locked, trusted)


def test_procedures_hook_clean_procedure(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs("safety")
    write(work / "procedures/add/main.py", "def run(a: int, b: int) -> int:\n    return a + b\n")
    assert procedure_code.main(["procedures/add/main.py"]) == 0
    assert capsys.readouterr() == ("", "")


# -- as installed console scripts -------------------------------------------------------------


def run_script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1"}
    return subprocess.run(
        [str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def test_console_script_log_lint(work: Path) -> None:
    write(work / "a.py", RETRY_LOG)
    done = run_script("proctor-hook-log-lint", "a.py", cwd=work)
    assert (done.returncode, done.stdout, done.stderr) == (1, f"a.py:3:10: {RETRY_FINDING}\n", "")
    done = run_script("proctor-hook-log-lint", "--help", cwd=work)
    assert done.returncode == 0 and "filenames" in done.stdout


@pytest.mark.parametrize(
    "script", ["proctor-hook-safety", "proctor-hook-log-lint", "proctor-hook-procedures"]
)
def test_console_scripts_exist_and_pass_clean_files(script: str, work: Path) -> None:
    write(work / "procedures/add/main.py", "def run(a, b):\n    return a + b\n")
    done = run_script(script, "procedures/add/main.py", cwd=work)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


HEAVY = ("pydantic", "git", "litellm", "openai", "click", "rich", "tenacity", "json_repair")


@pytest.mark.parametrize("module", ["safety", "log_lint", "procedure_code"])
def test_hook_main_imports_nothing_heavy(module: str, work: Path) -> None:
    write(work / "a.py", RETRY_LOG + "import os\nos.system('ls')\n")
    code = (
        "import sys\n"
        f"from proctor.precommit.{module} import main\n"
        "status = main(['a.py'])\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(status, heavy)\n"
    )
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] in {"1 []", "0 []"}, done.stdout


def test_hooks_print_text_without_the_format_plugins(work: Path) -> None:
    """The text format is used directly: the formats plugin is neither loaded nor needed."""
    write(work / "a.py", RETRY_LOG)
    code = (
        "import sys\n"
        "from proctor.precommit.log_lint import main\n"
        "status = main(['a.py'])\n"
        "print(status, 'proctor.plugins.formats' in sys.modules, 'tomllib' in sys.modules)\n"
    )
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1", "PROCTOR_DISABLE_PLUGINS": "formats"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "1 False False", done.stdout
    assert lines[:-1] == [f"a.py:3:10: {RETRY_FINDING}"]


def test_hook_main_with_entry_points_imports_nothing_heavy(work: Path) -> None:
    """The same with third-party entry points scanned, as a user's hook run does."""
    write(work / "a.py", "x = 1\n")
    code = (
        "import sys\n"
        "from proctor.precommit.safety import main\n"
        "status = main(['a.py'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROCTOR_NO_ENTRY_POINTS"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_hook_with_its_plugin_disabled_is_a_usage_error(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_DISABLE_PLUGINS", "safety")
    write(work / "a.py", "x = 1\n")
    assert safety.main(["a.py"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: check(s) not available: safety (see `proctor plugins`)\n"
    assert log_lint.main(["a.py"]) == 0
