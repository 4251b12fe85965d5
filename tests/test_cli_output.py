"""The CLI as people type it: global options anywhere, one JSON shape per kind of output,
exit codes that follow the status, and tables that fit a real 80-column terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

import pytest
from conftest import (
    BIN,
    GREET,
    IDENTITY,
    add_greet,
    copy_repo,
    fixture_environment,
    git,
    init_repo,
    repo_state,
    run_cli,
)
from conftest import write_file as write

WRITE_KEYS = {
    "status",
    "action",
    "commit",
    "proposal",
    "errors",
    "tags",
    "message",
    "correlation_id",
    "decision",
    "findings",
    "side_effects",
    "warnings",
    "error",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def on_terminal(*args: str, columns: int = 80, env: dict[str, str] | None = None) -> str:
    """Run proctor with stdout on a real pseudo-terminal ``columns`` wide; the screen text."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    full_env = {**os.environ, **IDENTITY, "TERM": "xterm-256color", **(env or {})}
    for key in ("COLUMNS", "LINES", "NO_COLOR"):
        if key not in (env or {}):
            full_env.pop(key, None)
    proc = subprocess.Popen(
        [str(BIN / "proctor"), *args], stdout=secondary, stderr=subprocess.PIPE, env=full_env
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(primary)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return b"".join(chunks).decode("utf-8", "replace")


# -- global options --------------------------------------------------------------------------


def test_global_options_after_the_subcommand(store: Path, tmp_path: Path) -> None:
    before_json = run_cli("--json", "--repo", str(store), "procedure", "list")
    after_json = run_cli("procedure", "list", "--json", "--repo", str(store))
    between = run_cli("procedure", "--json", "list", "--repo", str(store))
    assert before_json.code == after_json.code == between.code == 0, after_json.err
    assert json.loads(after_json.out) == json.loads(before_json.out) == json.loads(between.out)
    assert json.loads(after_json.out)[0]["name"] == "greet"

    code = write(tmp_path / "other.py", GREET)
    r = run_cli(
        "procedure", "create", "other", "--code", str(code), "--repo", str(store), "--actor", "x@y"
    )
    assert r.code == 0, r.err
    assert "Proctor-Actor: x@y" in git(store, "log", "-1", "--format=%B")


def test_an_option_value_that_looks_like_a_global_option_stays_a_value(store: Path) -> None:
    r = run_cli("--repo", str(store), "procedure", "release", "greet", "-m", "--json")
    assert r.code == 0, r.err
    assert r.out.startswith("procedure.release applied")  # not JSON
    assert "--json" in git(store, "tag", "-l", "-n5", "procedures/greet/v0.1.0")


# -- JSON shapes and exit codes ----------------------------------------------------------------


def test_every_write_has_one_shape_and_names_its_action(store: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", GREET)
    ok = run_cli("--repo", str(store), "procedure", "release", "greet", "--json")
    cases = {
        "applied": (ok, "procedure.release", 0),
        "invalid, an error of ours": (
            run_cli(
                "--repo", str(store), "procedure", "create", "greet", "--code", str(code), "--json"
            ),
            "procedure.create",
            2,
        ),
        "invalid, a usage error of click's": (
            run_cli("--repo", str(store), "procedure", "create", "other", "--json"),
            "procedure.create",
            2,
        ),
        "invalid, an unreadable file": (
            run_cli(
                "--json", "--repo", str(store), "procedure", "update", "greet", "--code", "/no"
            ),
            "procedure.update",
            2,
        ),
        "invalid, through action run": (
            run_cli("--json", "--repo", str(store), "action", "run", "procedure.delete"),
            "procedure.delete",
            2,
        ),
    }
    for label, (result, action, exit_code) in cases.items():
        data = json.loads(result.out)
        assert set(data) == WRITE_KEYS, label
        assert data["action"] == action, label
        assert result.code == exit_code, (label, result.err)
        assert data["status"] == ("applied" if exit_code == 0 else "invalid"), label
        assert data["errors"] if exit_code else not data["errors"], label
        assert (data["error"] is None) == (exit_code == 0), label
    ours = json.loads(cases["invalid, an error of ours"][0].out)
    assert ours["errors"] == ["procedure 'greet' already exists; use update"]
    assert ours["error"] == "UsageError"


def test_conflict_is_status_conflict_and_exit_3(store: Path) -> None:
    first = git(store, "rev-parse", "HEAD").strip()
    assert (
        run_cli("--repo", str(store), "procedure", "update", "greet", "--description", "a").code
        == 0
    )
    before = repo_state(store)
    r = run_cli(
        "--repo", str(store), "procedure", "update", "greet", "--description", "b",
        "--expected-version", first, "--json",
    )  # fmt: skip
    assert r.code == 3, r.err
    data = json.loads(r.out)
    assert (data["status"], data["action"], set(data)) == (
        "conflict",
        "procedure.update",
        WRITE_KEYS,
    )
    assert repo_state(store) == before


def test_denied_and_failed_exit_1(store: Path) -> None:
    (store / "proctor.toml").write_text(
        '[policy]\n"procedure.delete" = "DENY"\n"procedure.release" = "REQUIRE_PROPOSAL"\n'
    )
    git(store, "add", ".")
    git(store, "commit", "-qm", "policy")
    denied = run_cli("--repo", str(store), "procedure", "delete", "greet", "--json")
    failed = run_cli(
        "--repo",
        str(store),
        "procedure",
        "release",
        "greet",
        "--json",
        env={"PROCTOR_DISABLE_PLUGINS": "proposals"},  # a proposal needed, proposals off
    )
    for result, status in ((denied, "denied"), (failed, "failed")):
        data = json.loads(result.out)
        assert (result.code, data["status"], set(data)) == (1, status, WRITE_KEYS), result.err


def test_expected_version_may_be_a_release_on_the_command_line(store: Path) -> None:
    assert run_cli("--repo", str(store), "procedure", "release", "greet").code == 0
    r = run_cli(
        "--repo", str(store), "procedure", "update", "greet", "--description", "Hi",
        "--expected-version", "0.1.0",
    )  # fmt: skip
    assert r.code == 0, r.err


def test_init_json_is_a_write(tmp_path: Path) -> None:
    r = run_cli("init", str(tmp_path / "s"), "--json")
    data = json.loads(r.out)
    assert r.code == 0 and data["status"] == "applied" and data["action"] == "init"
    assert set(data) == WRITE_KEYS | {"path", "ref"}
    assert data["commit"] == git(tmp_path / "s", "rev-parse", "HEAD").strip()
    again = json.loads(run_cli("init", str(tmp_path / "s"), "--json").out)
    assert again["status"] == "unchanged" and set(again) == set(data)


def test_show_prints_defaults_and_keyword_markers(repo: Path, tmp_path: Path) -> None:
    code = write(
        tmp_path / "main.py",
        "import time\n\n\n"
        "def run(text: str, ratio: float = 0.5, /, *, verbose: bool = False,"
        " when: float = time.time()) -> str:\n"
        '    """Shorten text.\n\n    Args:\n        text: What to shorten.\n    """\n'
        "    return text\n",
    )
    assert (
        run_cli("--repo", str(repo), "procedure", "create", "short", "--code", str(code)).code == 0
    )
    r = run_cli("--repo", str(repo), "procedure", "show", "short")
    assert (
        "signature:   run(text: str, ratio: float = 0.5, /, *, verbose: bool = False, "
        "when: float = time.time()) -> str"
    ) in r.out
    assert "description: Shorten text." in r.out
    assert "    text: What to shorten." in r.out


# -- tables on a terminal and in pipes -----------------------------------------------------------


@pytest.fixture(scope="module")
def long_history_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three versions by an author with a long name, one of them breaking: made once for
    the module, each test reads its own copy."""
    with fixture_environment():
        return make_long_history(tmp_path_factory.mktemp("long-history"))


@pytest.fixture
def long_history(long_history_template: Path, tmp_path: Path) -> Path:
    return copy_repo(long_history_template, tmp_path / "repo")


def make_long_history(tmp_path: Path) -> Path:
    store = add_greet(init_repo(tmp_path / "repo"))
    env = {
        "GIT_AUTHOR_NAME": "Maria Fernanda de la Concepcion",
        "GIT_AUTHOR_EMAIL": "maria.fernanda.delaconcepcion@example.com",
    }
    code = write(
        tmp_path / "main.py", "def run(who: str, loud: bool = False) -> str:\n    return who\n"
    )
    run_cli("--repo", str(store), "procedure", "release", "greet")
    r = run_cli("--repo", str(store), "procedure", "update", "greet", "--code", str(code), env=env)
    assert r.code == 0, r.err
    run_cli("--repo", str(store), "procedure", "release", "greet", env=env)
    return store


def test_history_fits_an_80_column_terminal(long_history: Path) -> None:
    screen = on_terminal("--repo", str(long_history), "procedure", "history", "greet")
    text = ANSI.sub("", screen)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(map(len, lines))
    assert "…" not in text
    data = json.loads(
        run_cli("--repo", str(long_history), "--json", "procedure", "history", "greet").out
    )
    for version in data["versions"]:
        assert version["commit"][:10] in text  # short, and never cut
        assert version["date"][:10] in text  # an ISO date, whole
    assert "v1.0.0" in text and "breaking:" in text
    assert ANSI.search(screen)  # styled by default


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_no_color_means_no_styles_at_all(long_history: Path, how: str) -> None:
    args = ["--repo", str(long_history), "procedure", "history", "greet"]
    if how == "--no-color":
        screen = on_terminal(*args, "--no-color")
    else:
        screen = on_terminal(*args, env={"NO_COLOR": "1"})
    assert "\x1b[" not in screen  # no colour, bold or italics
    assert "history of greet" in screen and "breaking:" in screen


def test_history_piped_has_a_header_and_whole_values(long_history: Path) -> None:
    r = run_cli("--repo", str(long_history), "procedure", "history", "greet")
    header, *rows = [line.split("\t") for line in r.out.splitlines()]
    assert header == ["commit", "date", "author", "+/-", "breaking", "tags", "message"]
    assert [len(row) for row in rows] == [7, 7]
    assert re.fullmatch(r"[0-9a-f]{40}", rows[0][0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", rows[0][1])
    assert rows[0][2] == "maria.fernanda.delaconcepcion@example.com"
    assert rows[0][4].startswith("yes: ") and rows[0][5] == "v1.0.0"
    assert "\x1b[" not in r.out


# -- init on a fresh machine ---------------------------------------------------------------------


@pytest.mark.parametrize("default_branch", [None, "trunk"])
def test_init_on_a_fresh_machine(tmp_path: Path, default_branch: str | None) -> None:
    """No git config: the new proctor.toml stands on its own, and init says which
    branch git made (init.defaultBranch when set, else git's own default). The identity
    comes from the environment only (without one init refuses as ``git commit`` does:
    tests/test_trust_faces.py)."""
    from proctor.core.config import TOP_KEYS, parse_config_text

    home = tmp_path / "home"
    home.mkdir()
    if default_branch:
        (home / ".gitconfig").write_text(f"[init]\n\tdefaultBranch = {default_branch}\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", **IDENTITY}
    proc = subprocess.run(
        [str(BIN / "proctor"), "init", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    made = git(tmp_path / "demo", "symbolic-ref", "HEAD").strip()
    assert made == f"refs/heads/{default_branch or 'master'}"
    assert proc.stdout == f"Initialised proctor store in {tmp_path / 'demo'} on {made}\n"

    config = (tmp_path / "demo" / "proctor.toml").read_text()
    assert "docs/" not in config and "http" not in config
    named_tables = set(re.findall(r"^#\s+\[([\w-]+)\]", config, flags=re.MULTILINE))
    named_keys = set(re.findall(r"^#\s+([\w-]+) = ", config, flags=re.MULTILINE))
    # The tables the built-ins read, each explained in the file itself.
    assert {"check", "safety", "log-lint", "policy"} <= named_tables
    assert named_keys == TOP_KEYS
    assert parse_config_text(config, "proctor.toml") is not None


def test_check_with_json_reports_a_usage_error_as_json(tmp_path: Path) -> None:
    """``proctor check MISSING --json``: the error shape every command uses on stdout,
    the one error line on stderr, exit 2."""
    import json

    done = run_cli("check", str(tmp_path / "missing.py"), "--json", cwd=tmp_path)
    assert done.code == 2
    data = json.loads(done.out)
    assert data["status"] == "invalid" and data["error"] == "UsageError"
    assert data["errors"] == [f"no such file or directory: {tmp_path / 'missing.py'}"]
    assert done.err.count("error:") == 1
