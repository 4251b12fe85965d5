"""The run log's queries: recent runs, a version's window, and statistics per version.

Percentiles are computed in the database on both backends and agree with each other:
PostgreSQL has ``percentile_cont`` (an ordered-set aggregate); SQLite has none, so its
query ranks each version's durations with window functions (``row_number`` and
``count`` over the version) and interpolates between the two ranks around
``p × (n − 1)``, which is ``percentile_cont``'s definition. Only example runs of
``proctor test`` are left out of the statistics (``purpose = 'run'``): a test run is a
check of the code, not a use of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, Select, case, cast, func, literal, select

from proctor.runs.log.schema import runs, tests
from proctor.runs.model import LoggedRun, VersionStats


def recent(procedure: str, limit: int) -> Select[Any]:
    return (
        select(
            runs.c.id,
            runs.c.procedure,
            runs.c.version,
            runs.c.commit,
            runs.c.purpose,
            runs.c.status,
            runs.c.duration,
            runs.c.level,
            runs.c.error,
            runs.c.actor,
            runs.c.machine,
            runs.c.params_hash,
            runs.c.started,
        )
        .where(runs.c.procedure == procedure)
        .order_by(runs.c.started.desc(), runs.c.id.desc())
        .limit(limit)
    )


def logged_run(row: Any) -> LoggedRun:
    return LoggedRun(
        run_id=row.id,
        procedure=row.procedure,
        version=row.version,
        commit=row.commit,
        purpose=row.purpose,
        status=row.status,
        duration=float(row.duration),
        level=row.level,
        error=row.error,
        actor=row.actor,
        machine=row.machine,
        params_hash=row.params_hash,
        started=float(row.started),
    )


def window(procedure: str, version: str, size: int) -> Select[Any]:
    return (
        select(runs.c.status)
        .where(runs.c.purpose == "run")
        .where(runs.c.procedure == procedure)
        .where(runs.c.version == version)
        .order_by(runs.c.started.desc(), runs.c.id.desc())
        .limit(size)
    )


def _ok_count() -> Any:
    return func.sum(case((runs.c.status == "ok", 1), else_=0))


def _stats_postgresql(procedure: str | None) -> Select[Any]:
    last = func.max(runs.c.started)
    statement = select(
        runs.c.procedure,
        runs.c.version,
        func.count().label("runs"),
        _ok_count().label("ok"),
        func.avg(runs.c.duration).label("mean"),
        func.percentile_cont(0.5).within_group(runs.c.duration).label("p50"),
        func.percentile_cont(0.95).within_group(runs.c.duration).label("p95"),
        last.label("last"),
    ).where(runs.c.purpose == "run")
    if procedure is not None:
        statement = statement.where(runs.c.procedure == procedure)
    return statement.group_by(runs.c.procedure, runs.c.version).order_by(
        runs.c.procedure, last.desc()
    )


def _stats_windowed(procedure: str | None) -> Select[Any]:
    group = (runs.c.procedure, runs.c.version)
    inner = select(
        runs.c.procedure,
        runs.c.version,
        runs.c.status,
        runs.c.duration,
        runs.c.started,
        func.count().over(partition_by=group).label("n"),
        (func.row_number().over(partition_by=group, order_by=runs.c.duration) - 1).label("rank"),
    ).where(runs.c.purpose == "run")
    if procedure is not None:
        inner = inner.where(runs.c.procedure == procedure)
    ranked = inner.subquery("ranked")

    def percentile(p: float) -> Any:
        position = cast(ranked.c.n - 1, Float) * literal(p, Float)
        below = cast(position, Integer)  # floor: the position is never negative
        fraction = position - below
        return func.sum(
            case(
                (ranked.c.rank == below, ranked.c.duration * (1 - fraction)),
                (ranked.c.rank == below + 1, ranked.c.duration * fraction),
                else_=0.0,
            )
        )

    last = func.max(ranked.c.started)
    return (
        select(
            ranked.c.procedure,
            ranked.c.version,
            func.count().label("runs"),
            func.sum(case((ranked.c.status == "ok", 1), else_=0)).label("ok"),
            func.avg(ranked.c.duration).label("mean"),
            percentile(0.5).label("p50"),
            percentile(0.95).label("p95"),
            last.label("last"),
        )
        .group_by(ranked.c.procedure, ranked.c.version)
        .order_by(ranked.c.procedure, last.desc())
    )


def stats(dialect: str, procedure: str | None) -> Select[Any]:
    """Runs, successes, mean/p50/p95 duration and the last run, per (procedure, version)."""
    if dialect == "postgresql":
        return _stats_postgresql(procedure)
    return _stats_windowed(procedure)


def version_stats(row: Any) -> VersionStats:
    return VersionStats(
        procedure=row.procedure,
        version=row.version,
        runs=int(row.runs),
        ok=int(row.ok or 0),
        mean=float(row.mean or 0.0),
        p50=float(row.p50 or 0.0),
        p95=float(row.p95 or 0.0),
        last=float(row.last or 0.0),
    )


def last_tests(procedure: str | None) -> Select[Any]:
    newest = select(
        tests,
        func.row_number()
        .over(
            partition_by=(tests.c.procedure, tests.c.version),
            order_by=(tests.c.started.desc(), tests.c.id.desc()),
        )
        .label("position"),
    )
    if procedure is not None:
        newest = newest.where(tests.c.procedure == procedure)
    sub = newest.subquery("newest")
    return select(sub).where(sub.c.position == 1)
