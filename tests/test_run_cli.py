"""The run commands' faces: listed in --help, documented exit codes, global options after
the subcommand, and a --help that loads neither the run log's database stack nor mcp."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from runs_helpers import GREET, create, greet_metadata, make_store

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
