"""The run commands' faces: listed in --help, documented exit codes, global options after
the subcommand, and a --help that loads neither the run log's database stack nor mcp."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, run_cli
from runs_helpers import GREET, SLOW, create, greet_metadata, interrupt_a_run, make_store

from proctor import Workspace
from proctor.runs.sandbox import probe

HEAVY = ("sqlalchemy", "aiosqlite", "asyncpg", "greenlet", "mcp", "pydantic", "rich", "pyseccomp")

PROBE = """
import json, sys
import proctor.cli
try:
    proctor.cli.main(sys.argv[1:])
except SystemExit:
    pass
heavy = {HEAVY!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["run", "--help"], ["stats", "--help"], ["mcp", "--help"]]
)
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(HEAVY=HEAVY), *argv],
        capture_output=True,
        text=True,
        env={"PROCTOR_NO_ENTRY_POINTS": "1", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_the_commands_and_their_exit_codes_are_documented() -> None:
    r = run_cli("--help")
    for command in ("run", "runs", "stats", "test", "mcp"):
        assert f"  {command} " in r.out
    r = run_cli("run", "--help")
    for line in (
        "0  ok",
        "4  error",
        "5  timeout",
        "6  killed",
        "7  denied",
        "2  the call is wrong",
    ):
        assert line in r.out


def test_global_options_follow_the_run_commands(repo: Path, tmp_path: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata())
    r = run_cli("run", "greet", "-p", "name=Ada", "--repo", str(repo), "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out)["value"] == "Hello, Ada!"
    r = run_cli("runs", "greet", "--json", "--repo", str(repo), "--actor", "x@y", cwd=tmp_path)
    assert [run["status"] for run in json.loads(r.out)] == ["ok"]
    r = run_cli("run", "greet", "-p", "name=@" + str(tmp_path / "missing"), cwd=repo)
    assert r.code == 2 and "cannot read file for name" in r.err
    (tmp_path / "name.txt").write_text("Bo")
    r = run_cli("run", "greet", "-p", f"name=@{tmp_path / 'name.txt'}", cwd=repo)
    assert (r.code, r.out) == (0, "Hello, Bo!\n")


def test_the_quickstart_runs_a_procedure_and_shows_its_stats(tmp_path: Path) -> None:
    import sqlite3

    target = tmp_path / "qs"
    r = run_cli("quickstart", str(target))
    assert r.code == 0, r.err
    assert "$ proctor run greet -p name=Ada" in r.out
    assert "    ok: 'Hello, Ada' (v0.1.0, level " in r.out
    assert "    ok: 'Hello, Ada?' (v0.2.2, level " in r.out
    # The step that runs twice prints the command of each run, in order, so replaying
    # the printed commands gives the runs the stats then count.
    step = r.out[r.out.index("$ proctor run greet -p name=Ada -p punctuation=?") :]
    step = step[: step.index("$ proctor stats greet")]
    lines = [x.strip() for x in step.splitlines() if x.strip().startswith(("$", "ok:"))]
    assert [x.split(" (v")[0] for x in lines] == [
        "$ proctor run greet -p name=Ada -p punctuation=?",
        "ok: 'Hello, Ada?'",
        "$ proctor run greet -p name=Bo",
        "ok: 'Hello, Bo!'",
    ]
    assert "$ proctor stats greet" in r.out
    assert "    v0.2.2: 2 runs, 100% ok, p50 " in r.out
    assert "    v0.1.0: 1 run, 100% ok, p50 " in r.out
    with sqlite3.connect(target / ".git/proctor/runs.sqlite") as db:
        assert db.execute(
            "SELECT version, status FROM proctor_runs WHERE procedure = 'greet' ORDER BY started"
        ).fetchall() == [
            ("0.1.0", "ok"),
            ("0.2.2", "ok"),
            ("0.2.2", "ok"),
        ]
    assert run_cli("runs", "greet", cwd=target).out.count("\tok\t") == 3


def test_the_python_api_example_of_the_runs_doc_runs_as_written(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "runs.md").read_text()
    section = text.split("## The Python API", 1)[1]
    block = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(), release=True)
    monkeypatch.chdir(repo)
    exec(compile(block, "docs/runs.md", "exec"), {})


def test_runs_and_stats_of_an_unknown_procedure_are_usage_errors(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata())
    log = repo / ".git/proctor/runs.sqlite"
    message = "unknown procedure 'nope': not in the store and no runs recorded"
    for command in ("runs", "stats"):
        r = run_cli(command, "nope", cwd=repo)
        assert (r.code, r.out) == (2, ""), (command, r.out, r.err)
        assert message in r.err and len(r.err.strip().splitlines()) == 1
        r = run_cli(command, "nope", "--json", cwd=repo)
        assert r.code == 2
        assert json.loads(r.out) == {
            "status": "invalid",
            "error": "NotFoundError",
            "errors": [message],
        }
    assert not log.exists()  # asking made no run log
    assert run_cli("run", "greet", "-p", "name=Ada", cwd=repo).code == 0
    assert run_cli("runs", "nope", cwd=repo).code == 2  # a log that exists changes nothing
    assert run_cli("stats", "nope", cwd=repo).code == 2
    # A known procedure that never ran is an empty list, not an error.
    create(repo, "quiet", GREET, greet_metadata() | {"name": "quiet"})
    assert json.loads(run_cli("runs", "quiet", "--json", cwd=repo).out) == []
    assert json.loads(run_cli("stats", "quiet", "--json", cwd=repo).out) == []


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "1e400", "1e12", "0"])
def test_a_timeout_that_is_no_number_of_seconds_is_bad_input_and_no_run(
    repo: Path, timeout: str
) -> None:
    """NaN passes every range check (it compares false); it, infinity and values past
    the week a run may last are refused (exit 2) before anything runs or is recorded,
    on the command line and in ``[runs] timeout`` alike, so typos never count as failed
    runs towards an automatic rollback."""
    from proctor.cli.runs import _MAX_TIMEOUT
    from proctor.runs.settings import MAX_TIMEOUT

    assert _MAX_TIMEOUT == MAX_TIMEOUT
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata())
    log = repo / ".git/proctor/runs.sqlite"
    r = run_cli("run", "greet", "-p", "name=Ada", "--timeout", timeout, cwd=repo)
    assert r.code == 2 and "--timeout" in r.err and "Traceback" not in r.err, r.err
    assert not log.exists()
    config = (repo / "proctor.toml").read_text()
    literal = {"1e400": "inf"}.get(timeout, timeout)
    (repo / "proctor.toml").write_text(config + f"\n[runs]\ntimeout = {literal}\n")
    git(repo, "commit", "-qam", "timeout")
    r = run_cli("run", "greet", "-p", "name=Ada", cwd=repo)
    assert r.code == 2 and "runs.timeout" in r.err and "Traceback" not in r.err, r.err
    assert not log.exists()


def test_a_deleted_procedures_runs_stay_readable(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata())
    assert run_cli("run", "greet", "-p", "name=Ada", cwd=repo).code == 0
    with Workspace.open(repo, actor="tester@example.com") as ws:
        assert ws.execute("procedure.delete", {"name": "greet"}).status == "applied"
    assert run_cli("procedure", "show", "greet", cwd=repo).code == 2
    runs = run_cli("runs", "greet", "--json", cwd=repo)
    assert runs.code == 0, runs.err
    assert [r["status"] for r in json.loads(runs.out)] == ["ok"]
    stats = run_cli("stats", "greet", "--json", cwd=repo)
    assert stats.code == 0, stats.err
    assert [s["runs"] for s in json.loads(stats.out)] == [1]


def test_unsandboxed_on_linux_changes_nothing(repo: Path) -> None:
    """``--unsandboxed`` is consent to run without isolation where there is none (macOS);
    on Linux isolation exists, so the run is sandboxed exactly as without the flag."""
    if not sys.platform.startswith("linux"):
        pytest.skip(f"the Linux meaning of --unsandboxed; this is {sys.platform}")
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata())
    plain = run_cli("run", "greet", "-p", "name=Ada", "--json", cwd=repo)
    flagged = run_cli("run", "greet", "-p", "name=Ada", "--unsandboxed", "--json", cwd=repo)
    assert (plain.code, flagged.code) == (0, 0), flagged.err
    a, b = json.loads(plain.out), json.loads(flagged.out)
    assert b["value"] == "Hello, Ada!" and b["level"] == a["level"] == probe().best
    assert b["layers"].keys() == a["layers"].keys()
    assert b["layers"]["namespaces"] == a["layers"]["namespaces"]
    # The minimum level still holds with the flag: it never lowers isolation.
    (repo / "proctor.toml").write_text(
        (repo / "proctor.toml").read_text() + "\n[runs]\nmin-level = 2\ndisable = ['namespaces']\n"
    )
    git(repo, "commit", "-qam", "Require level 2 without namespaces")
    fallback = run_cli("run", "greet", "-p", "name=Ada", "--unsandboxed", "--json", cwd=repo)
    out = json.loads(fallback.out)
    if probe(namespaces=False).available(2):
        assert (fallback.code, out["level"]) == (0, 2), fallback.err
        assert out["layers"]["namespaces"].startswith("fallback")
    else:
        assert (fallback.code, out["status"], out["level"]) == (7, "denied", None)


def test_ctrl_c_stops_a_run_at_once_and_cleans_up(repo: Path, tmp_path: Path) -> None:
    """Ctrl-C used to wait for the run's own timeout (30 s by default): the sandbox ran
    on a worker thread that a cancelled task could not stop."""
    create(repo, "slow", SLOW)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code, err, seconds = interrupt_a_run(repo, tmp, {"PROCTOR_SERVER": "0"})
    assert (code, err.strip()) == (1, "Aborted.")
    assert seconds < 15
    assert not list(tmp.glob("proctor-run-*"))  # killed, and its folders removed


def test_sigterm_stops_a_run_cleans_up_and_ends_by_the_signal(repo: Path, tmp_path: Path) -> None:
    """SIGTERM used to end Python at once: the sandbox died with it, but its run folder
    stayed in TMPDIR. Now it stops the run as Ctrl-C does, and the command still dies of
    SIGTERM, as a caller waiting for it expects."""
    import signal

    create(repo, "slow", SLOW)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code, _err, seconds = interrupt_a_run(repo, tmp, {"PROCTOR_SERVER": "0"}, signal.SIGTERM)
    assert code == -signal.SIGTERM
    assert seconds < 15
    assert not list(tmp.glob("proctor-run-*"))
