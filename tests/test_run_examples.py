"""``proctor test``: the metadata's examples run in the sandbox, each judged against its
``expected`` value, exit 1 when one fails, and the test recorded with its version."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import run_cli
from runs_helpers import GREET, create, greet_metadata, make_store

from proctor import Workspace
from proctor.runs.examples import same_json

EXAMPLES = [
    {"params": {"name": "Ada"}, "expected": "Hello, Ada!"},
    {"params": {"name": "Bo", "punctuation": "?"}, "expected": "Hello, Bo?"},
    {"params": {"name": "Cy"}, "expected": "Hi, Cy!"},  # wrong on purpose
    {"params": {"nmae": "Di"}, "expected": "Hello, Di!"},  # not a valid call
]


def test_examples_pass_and_fail_one_by_one(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(EXAMPLES), release=True)
    r = run_cli("test", "greet", cwd=repo)
    assert r.code == 1, r.err
    lines = r.out.splitlines()
    assert lines[0] == "greet v0.1.0: 4 examples"
    assert lines[1] == '  PASS  #1 {"name": "Ada"} -> Hello, Ada!'
    assert lines[2] == '  PASS  #2 {"name": "Bo", "punctuation": "?"} -> Hello, Bo?'
    assert lines[3] == (
        '  FAIL  #3 {"name": "Cy"}: returned a different value: expected "Hi, Cy!", '
        'got "Hello, Cy!"'
    )
    assert lines[4].startswith('  FAIL  #4 {"nmae": "Di"}: unknown parameter \'nmae\'')
    assert lines[5].startswith("2 passed, 2 failed (test ") and lines[5].endswith(", recorded)")

    with sqlite3.connect(repo / ".git/proctor/runs.sqlite") as db:
        tests = db.execute(
            "SELECT procedure, version, examples, passed, failed FROM proctor_tests"
        ).fetchall()
        runs = db.execute("SELECT purpose, status FROM proctor_runs").fetchall()
    assert tests == [("greet", "0.1.0", 4, 2, 2)]
    assert sorted(runs) == [("test", "ok")] * 3  # the invalid call never ran
    # Example runs are checks of the code, not uses of it: stats leave them out, but the
    # test is part of the version's record, run or not.
    stats = run_cli("stats", "greet", "--json", cwd=repo)
    assert stats.code == 0, stats.err
    [row] = json.loads(stats.out)
    assert (row["procedure"], row["version"], row["runs"], row["ok"]) == ("greet", "0.1.0", 0, 0)
    assert row["success_rate"] is None and row["p50"] is None and row["last"] is None
    assert (row["last_test"]["passed"], row["last_test"]["examples"]) == (2, 4)
    table = run_cli("stats", "greet", cwd=repo)
    assert table.code == 0, table.err
    [line] = [x for x in table.out.splitlines() if x.startswith("greet")]
    assert line.split("\t")[1:4] == ["v0.1.0", "0", "-"] and line.endswith("2/4")


def test_all_passing_exits_0_and_json_and_stats_show_the_last_test(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(EXAMPLES[:2]), release=True)
    r = run_cli("test", "greet@0.1.0", "--json", cwd=repo)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["status"], out["passed"], out["failed"], out["version"]) == (
        "passed",
        2,
        0,
        "0.1.0",
    )
    assert [e["run_id"] is not None for e in out["examples"]] == [True, True]
    with Workspace.open(repo) as ws:
        assert ws.run("greet", {"name": "x"}).ok
    stats = json.loads(run_cli("stats", "--json", cwd=repo).out)
    assert len(stats) == 1 and stats[0]["runs"] == 1
    assert stats[0]["last_test"]["id"] == out["test_id"]
    assert (stats[0]["last_test"]["passed"], stats[0]["last_test"]["examples"]) == (2, 2)


def test_no_examples_is_nothing_to_test(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata([]))
    r = run_cli("test", "greet", cwd=repo)
    assert r.code == 0
    assert "no examples in metadata.json: nothing to test" in r.out
    assert run_cli("test", "nope", cwd=repo).code == 2


def test_json_equality() -> None:
    assert same_json(2, 2.0) and same_json({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not same_json(True, 1) and not same_json(0, False)
    assert not same_json("1", 1) and not same_json([1], [1, 1]) and not same_json({"a": 1}, {})


def test_procedure_show_gives_the_last_test_of_the_shown_version(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(EXAMPLES[:2]), release=True)
    log = repo / ".git/proctor/runs.sqlite"
    # No run log yet: show reads none and makes none.
    before = run_cli("procedure", "show", "greet", "--json", cwd=repo)
    assert before.code == 0, before.err
    assert json.loads(before.out)["last_test"] is None
    assert "last test" not in run_cli("procedure", "show", "greet", cwd=repo).out
    assert not log.exists()

    tested = json.loads(run_cli("test", "greet", "--json", cwd=repo).out)
    create(repo, "greet", GREET.replace('"Hello, "', '"Hi, "'), greet_metadata(EXAMPLES[:2]))
    assert run_cli("test", "greet@tip", cwd=repo).code == 1  # the tip fails its examples

    released = run_cli("procedure", "show", "greet@0.1.0", "--json", cwd=repo)
    assert released.code == 0, released.err
    test = json.loads(released.out)["last_test"]
    assert (test["id"], test["version"], test["passed"], test["failed"]) == (
        tested["test_id"],
        "0.1.0",
        2,
        0,
    )
    assert test["examples"] == 2 and test["commit"] == tested["commit"]
    text = run_cli("procedure", "show", "greet@0.1.0", cwd=repo)
    [line] = [x for x in text.out.splitlines() if x.startswith("  last test:")]
    assert line.startswith("  last test:   2/2 examples passed (passed), v0.1.0, ")
    assert line.endswith(f"test {tested['test_id']}")
    # The tip (what plain `show` shows) is another version, with its own last test.
    tip = json.loads(run_cli("procedure", "show", "greet", "--json", cwd=repo).out)["last_test"]
    assert tip["version"] != "0.1.0" and (tip["passed"], tip["failed"]) == (0, 2)
    assert "0/2 examples passed (failed)" in run_cli("procedure", "show", "greet", cwd=repo).out


def test_procedure_show_without_a_run_log_imports_no_database_code(repo: Path) -> None:
    """Showing a procedure asks whether the log exists and stops there: the run log's
    code (SQLAlchemy, asyncio, the run service and the sandbox behind it) stays out of
    ``procedure show`` when there is no log, so it is as fast as before."""
    import subprocess
    import sys

    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(), release=True)
    probe = (
        "import atexit, sys\n"
        "heavy = ('sqlalchemy', 'asyncio', 'proctor.runs.service', 'proctor.runs.sandbox')\n"
        "atexit.register(lambda: print([m for m in heavy if m in sys.modules], file=sys.stderr))\n"
        "from proctor.cli import main\n"
        "sys.argv = ['proctor', 'procedure', 'show', 'greet']\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert not (repo / ".git/proctor/runs.sqlite").exists()


def test_procedure_show_survives_a_run_log_it_cannot_read(repo: Path) -> None:
    make_store(repo, "[runs]\nrun-log = 42\n")  # a bad [runs] table: no log to ask
    create(repo, "greet", GREET, greet_metadata(), release=True)
    r = run_cli("procedure", "show", "greet", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert json.loads(r.out)["last_test"] is None
    assert r.err.startswith("warning: ") and "run-log" in r.err
