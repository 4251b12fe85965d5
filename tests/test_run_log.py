"""The run log on both backends: SQLite (WAL, under .git/proctor) and a real PostgreSQL
server started for these tests. Migrations in order and once, concurrent writers losing
nothing, statistics with percentiles computed in the database, and the CLI over both."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from pg_server import PostgresServer, no_driver, unavailable
from runs_helpers import GREET, create, greet_metadata, make_store

from proctor.runs.log.schema import LATEST, metadata
from proctor.runs.log.store import RunLog, normalise_url
from proctor.runs.model import RunLogError


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


_databases = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty run log on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"runlog_{next(_databases)}")


def row(i: int, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"{i:032x}",
        "procedure": "greet",
        "version": "1.0.0",
        "commit": "c" * 40,
        "purpose": "run",
        "params_hash": "h",
        "actor": "a@example.com",
        "machine": "m",
        "status": "ok",
        "duration": float(i),
        "error": None,
        "level": 2,
        "started": 1_700_000_000.0 + i,
    }
    out.update(over)
    return out


def percentile_cont(values: list[float], p: float) -> float:
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def test_urls_get_async_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(RunLogError, match="not a database URL"):
        normalise_url("runs.sqlite")
    with pytest.raises(RunLogError, match="cannot open: Can't load plugin"):
        RunLog("sqlite+nosuchdriver:///x").migrate()
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as on a machine without the extra
    with pytest.raises(
        RunLogError, match=r"needs the asyncpg driver: pip install 'proctor\[runs\]'"
    ):
        RunLog("postgresql://u@127.0.0.1:1/db").migrate()


def test_the_default_log_is_sqlite_in_wal_mode_under_the_git_dir(tmp_path: Path) -> None:
    state = tmp_path / ".git" / "proctor"
    log = RunLog(None, state)
    assert log.record([row(1)]) == 1
    with sqlite3.connect(state / "runs.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM proctor_runs").fetchone() == (1,)


def test_migrations_apply_in_order_keep_rows_and_match_the_tables(log_url: str) -> None:
    from sqlalchemy import insert

    from proctor.runs.bridge import run_async
    from proctor.runs.log.schema import runs

    old = RunLog(log_url)
    assert old.migrate(target=1) == 1

    async def write_as_schema_1() -> None:  # a run recorded by a proctor that knew schema 1
        async with old.engine.begin() as conn:
            await conn.execute(insert(runs).values(**row(1)))

    run_async(write_as_schema_1())
    log = RunLog(log_url)
    assert run_async(log.aschema_version()) == 1
    assert log.migrate() == LATEST
    assert log.migrate() == LATEST  # idempotent
    assert log.count() == 1

    async def columns() -> dict[str, list[str]]:
        from sqlalchemy import inspect

        async with log.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {
                    t: [col["name"] for col in inspect(c).get_columns(t)]
                    for t in inspect(c).get_table_names()
                }
            )

    found = run_async(columns())
    expected = {t.name: [c.name for c in t.columns] for t in metadata.sorted_tables}
    assert found == expected

    async def versions() -> list[tuple[int, str]]:
        from sqlalchemy import text

        async with log.engine.connect() as conn:
            result = await conn.execute(
                text("SELECT version, description FROM proctor_schema ORDER BY version")
            )
            return [(r[0], r[1]) for r in result]

    assert run_async(versions()) == [(1, "runs"), (2, "rollbacks and example tests")]


def test_a_newer_schema_is_refused(log_url: str) -> None:
    RunLog(log_url).migrate()

    async def bump() -> None:
        from sqlalchemy import text

        async with RunLog(log_url).engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO proctor_schema (version, description, applied) "
                    "VALUES (99, 'future', 0)"
                )
            )

    from proctor.runs.bridge import run_async

    run_async(bump())
    with pytest.raises(RunLogError, match="schema version 99, newer than this proctor knows"):
        RunLog(log_url).record([row(1)])


def test_stats_per_version_with_percentiles_in_the_database(log_url: str) -> None:
    log = RunLog(log_url)
    durations = [0.011 * ((i * 37) % 101) for i in range(1, 61)]
    rows = [row(i, duration=d, status="ok" if i % 4 else "error") for i, d in enumerate(durations)]
    rows += [
        row(1000 + i, version="2.0.0", duration=0.5 + i, started=1_800_000_000.0 + i)
        for i in range(3)
    ]
    rows += [row(2000, purpose="test", duration=99.0)]  # an example run: not counted
    rows += [row(3000, procedure="other", duration=1.0)]
    log.record(rows)
    stats = {(s.procedure, s.version): s for s in log.stats()}
    assert list(stats) == [("greet", "2.0.0"), ("greet", "1.0.0"), ("other", "1.0.0")]
    v1 = stats[("greet", "1.0.0")]
    assert (v1.runs, v1.ok) == (60, 45)
    assert v1.success_rate == 0.75
    assert v1.mean == pytest.approx(sum(durations) / 60)
    assert v1.p50 == pytest.approx(percentile_cont(durations, 0.5))
    assert v1.p95 == pytest.approx(percentile_cont(durations, 0.95))
    v2 = stats[("greet", "2.0.0")]
    assert (v2.p50, v2.p95) == (pytest.approx(1.5), pytest.approx(2.4))
    other = log.stats("other")
    assert [(s.version, s.runs, s.p50, s.p95) for s in other] == [("1.0.0", 1, 1.0, 1.0)]
    recent = log.recent("greet", 2)
    assert [r.run_id for r in recent] == [f"{1002:032x}", f"{1001:032x}"]


WRITER = textwrap.dedent(
    """
    import sys, time, uuid
    from proctor.runs.log.store import RunLog

    url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    log = RunLog(url)
    for i in range(count):
        log.record([{
            "id": uuid.uuid4().hex, "procedure": "greet", "version": "1.0.0",
            "commit": "c" * 40, "purpose": "run", "params_hash": f"{worker}-{i}",
            "actor": f"worker{worker}", "machine": "m", "status": "ok",
            "duration": 0.001, "error": None, "level": 0, "started": time.time(),
        }])
    """
)


@pytest.mark.slow
def test_eight_processes_times_two_hundred_runs_lose_nothing(log_url: str) -> None:
    """Eight processes start on a fresh log at once (racing the migrations too) and
    each records 200 runs, one transaction per run."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, log_url, str(w), "200"]) for w in range(8)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0] * 8
    log = RunLog(log_url)
    assert log.count() == 1600
    stats = log.stats("greet")
    assert [(s.runs, s.ok) for s in stats] == [(1600, 1600)]

    async def distinct() -> int:
        from sqlalchemy import text

        async with log.engine.connect() as conn:
            result = await conn.execute(
                text("SELECT count(DISTINCT params_hash) FROM proctor_runs")
            )
            return int(result.scalar_one())

    from proctor.runs.bridge import run_async

    assert run_async(distinct()) == 1600
    assert log.migrate() == LATEST


def test_the_cli_over_a_shared_postgresql_log(
    repo: Path, tmp_path: Path, postgres: PostgresServer
) -> None:
    """Two clones, one PostgreSQL log: each sees the other's runs."""
    url = postgres.create_database(f"runlog_{next(_databases)}")
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(), release=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "--tags"], check=True)
    env = {"PROCTOR_RUN_LOG": url}
    assert run_cli("run", "greet", "-p", "name=a", cwd=repo, env=env).code == 0
    r = run_cli("run", "greet", "-p", "name=b", "--json", cwd=clone, env=env)
    assert r.code == 0, r.err
    assert json.loads(r.out)["recorded"] is True
    stats = json.loads(run_cli("stats", "greet", "--json", cwd=repo, env=env).out)
    assert [(s["version"], s["runs"], s["success_rate"]) for s in stats] == [("0.1.0", 2, 1.0)]
    listed = run_cli("runs", "greet", cwd=repo, env=env)
    assert listed.code == 0
    assert listed.out.splitlines()[0].split("\t")[:5] == [
        "started",
        "run",
        "version",
        "purpose",
        "status",
    ]
    assert len(listed.out.splitlines()) == 3
    # Nothing went to the local SQLite file.
    assert not (repo / ".git/proctor/runs.sqlite").exists()


def test_an_unreachable_log_is_a_clear_error(repo: Path) -> None:
    if no_driver() is not None:
        pytest.skip(no_driver())
    make_store(repo)
    env = {"PROCTOR_RUN_LOG": "postgresql://u:pw@127.0.0.1:1/db"}
    started = time.monotonic()
    r = run_cli("stats", cwd=repo, env=env)
    assert r.code == 1
    assert r.err.startswith("error: run log postgresql+asyncpg://u:***@127.0.0.1:1/db: cannot")
    assert "pw" not in r.err
    assert time.monotonic() - started < 60
    assert run_cli("runs", "Bad", cwd=repo).code == 2
