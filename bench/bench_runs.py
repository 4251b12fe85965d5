"""Benchmark: the run log and runs end to end.

1. 10,000 runs recorded (5 procedures × 4 versions, one in ten failing), then the
   statistics query (`RunLog.stats()`: runs, success rate, mean/p50/p95 per version,
   percentiles in the database) and the whole `proctor stats` command, on SQLite (the
   default file) and on PostgreSQL (a server started in a temporary directory, as the
   tests do). Target: the query ≤ 50 ms on both.
2. Runs per second: `Workspace.run` of a trivial procedure, sandboxed and recorded, by 1
   and by 2 worker processes at once, each with its own workspace (the default SQLite
   log, and PostgreSQL when there is one).

Run: ``.venv/bin/python bench/bench_runs.py [--runs N] [--seconds S]``. Prints a
markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the PostgreSQL starter the tests use

from pg_server import PostgresServer, unavailable  # noqa: E402

from proctor.runs.bridge import run_async  # noqa: E402
from proctor.runs.log import queries  # noqa: E402
from proctor.runs.log.store import RunLog  # noqa: E402

TARGET_QUERY = 0.050
TRIVIAL = "def run(n: int = 1) -> int:\n    return n + 1\n"
ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def rows(count: int) -> list[dict[str, Any]]:
    out = []
    start = time.time() - count
    for i in range(count):
        out.append(
            {
                "id": f"{i:032x}",
                "procedure": f"proc{i % 5}",
                "version": f"1.{(i // 5) % 4}.0",
                "commit": "c" * 40,
                "purpose": "run",
                "params_hash": f"{i % 97:064x}",
                "actor": "bench@example.com",
                "machine": "bench",
                "status": "error" if i % 10 == 0 else "ok",
                "duration": 0.05 + (i * 7919 % 1000) / 10_000,
                "error": "ValueError: bench" if i % 10 == 0 else None,
                "level": 2,
                "started": start + i,
            }
        )
    return out


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def make_store(directory: Path) -> Path:
    from proctor import Workspace

    os.environ.update(ENV)
    ws, _ = Workspace.init(directory, actor="bench@example.com")
    with ws:
        ws.execute("procedure.create", {"name": "trivial", "code": TRIVIAL})
        ws.execute("procedure.release", {"name": "trivial"})
    return directory


def measure_log(url: str, count: int, store: Path, repeat: int) -> dict[str, float]:
    log = RunLog(url)
    log.migrate()
    batch = rows(count)
    started = time.perf_counter()
    for i in range(0, count, 500):
        log.record(batch[i : i + 500])
    record_seconds = time.perf_counter() - started
    assert log.count() == count

    async def query_only() -> list[float]:
        """The statistics on a connection already open (SQLite: both statements)."""
        times = []
        async with log.engine.connect() as conn:
            for _ in range(repeat):
                t = time.perf_counter()
                if log.dialect == "postgresql":
                    result = list(await conn.execute(queries.stats(None)))
                else:
                    result = list(await conn.execute(queries.version_groups(None)))
                    wanted = [
                        (g.procedure, g.version, rank)
                        for g in result
                        for p in (0.5, 0.95)
                        for rank in queries.ranks(int(g.runs), p)[:2]
                    ]
                    (await conn.execute(queries.seek_durations(wanted))).one()
                times.append(time.perf_counter() - t)
                assert len(result) == 20
        return times

    query = run_async(query_only())
    api = []
    for _ in range(repeat):
        t = time.perf_counter()
        assert len(log.stats()) == 20
        api.append(time.perf_counter() - t)
    cli = []
    env = {**os.environ, **ENV, "PROCTOR_RUN_LOG": url}
    proctor = str(Path(sys.executable).parent / "proctor")
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(
            [proctor, "stats", "--json"], cwd=store, env=env, check=True, capture_output=True
        )
        cli.append(time.perf_counter() - t)
    return {
        "record_per_s": count / record_seconds,
        "query_ms": median_ms(query),
        "api_ms": median_ms(api),
        "cli_ms": median_ms(cli),
    }


def worker(store: str, url: str | None, seconds: float, start: Any, out: Any) -> None:
    from proctor import Workspace

    if url:
        os.environ["PROCTOR_RUN_LOG"] = url
    with Workspace.open(store, actor="bench@example.com") as ws:
        assert ws.run("trivial", {"n": 1}).ok  # warm: imports, the checks' cache
        start.wait()
        done, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            record = ws.run("trivial", {"n": done})
            assert record.ok and record.recorded, record
            done += 1
    out.put(done)


def runs_per_second(store: Path, url: str | None, workers: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(str(store), url, seconds, start, out))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    start.wait()
    t = time.perf_counter()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    elapsed = time.perf_counter() - t
    for p in procs:
        p.join()
    return total / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="proctor-bench-runs-"))
    store = make_store(work / "store")
    server = None
    backends: dict[str, str] = {"SQLite (WAL, aiosqlite)": f"sqlite:///{work / 'runs.sqlite'}"}
    why = unavailable()
    if why is None:
        server = PostgresServer().start()
        backends["PostgreSQL (asyncpg)"] = server.create_database("bench")
    try:
        logs = {
            name: measure_log(url, args.runs, store, args.repeat) for name, url in backends.items()
        }
        throughput: dict[str, dict[int, float]] = {}
        for name, url in backends.items():
            shown = (
                "SQLite, the default file under .git/proctor" if name.startswith("SQLite") else name
            )
            log_url = None if name.startswith("SQLite") else url
            throughput[shown] = {
                n: runs_per_second(store, log_url, n, args.seconds) for n in (1, 2)
            }
    finally:
        if server is not None:
            server.stop()

    print(
        f"{args.runs:,} runs recorded (5 procedures × 4 versions), then the statistics of all 20 versions:\n"
    )
    print(
        "| run log | recording (batches of 500) | stats query | `RunLog.stats()` (connect + query) | `proctor stats --json` | target: query ≤ 50 ms |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for name, m in logs.items():
        verdict = "met" if m["query_ms"] <= TARGET_QUERY * 1000 else "**missed**"
        print(
            f"| {name} | {m['record_per_s']:,.0f} runs/s | {m['query_ms']:.1f} ms | "
            f"{m['api_ms']:.1f} ms | {m['cli_ms']:.0f} ms | {verdict} |"
        )
    if why is not None:
        print(f"\nPostgreSQL not measured: {why}.")
    print(
        f"\nRuns per second, `Workspace.run` of a trivial procedure (sandboxed at the best "
        f"level, checked from the cache, recorded), {args.seconds:.0f} s per measurement:\n"
    )
    print("| run log | 1 worker | 2 workers |")
    print("|---|---:|---:|")
    for name, by in throughput.items():
        print(f"| {name} | {by[1]:.1f} runs/s | {by[2]:.1f} runs/s |")
    load = os.getloadavg()
    print(
        f"\nMachine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} at the end; "
        f"Python {platform.python_version()}. Run took {time.monotonic() - began:.0f} s."
    )
    print("\nCommand: `.venv/bin/python bench/bench_runs.py`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
