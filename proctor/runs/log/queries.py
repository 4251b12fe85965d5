"""The run log's queries: recent runs, a version's window, and statistics per version.

Percentiles are computed in the database on both backends and agree with each other:
PostgreSQL has ``percentile_cont`` (an ordered-set aggregate) and computes everything
in one statement. SQLite has none: one statement counts each version's runs, a second
has the database find the two durations around each rank ``p × (n − 1)``, each by a
seek along the index on (purpose, procedure, version, duration) with ``ORDER BY
duration LIMIT 1 OFFSET k``, and Python interpolates between the two (the last step of
``percentile_cont``'s definition, so both backends give the same numbers). Ranking every
row with window functions instead (``row_number() OVER (PARTITION BY ... ORDER BY
duration)``) gives the same numbers but sorts the whole table: about 5× slower at
10,000 runs, past the 50 ms target. SQLite cannot take the ranks from the first
statement in a correlated ``OFFSET``, hence two statements. Only example runs of
``proctor test`` are left out of the statistics (``purpose = 'run'``): a test run is a
check of the code, not a use of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, TextClause, case, func, select, text

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


def version_groups(procedure: str | None) -> Select[Any]:
    """Runs, successes, mean duration and the last run per (procedure, version)."""
    last = func.max(runs.c.started)
    statement = select(
        runs.c.procedure,
        runs.c.version,
        func.count().label("runs"),
        _ok_count().label("ok"),
        func.avg(runs.c.duration).label("mean"),
        last.label("last"),
    ).where(runs.c.purpose == "run")
    if procedure is not None:
        statement = statement.where(runs.c.procedure == procedure)
    return statement.group_by(runs.c.procedure, runs.c.version).order_by(
        runs.c.procedure, last.desc()
    )


def ranks(n: int, p: float) -> tuple[int, int, float]:
    """The two ranks (0-based) around ``p × (n − 1)`` and the fraction between them."""
    position = p * (n - 1)
    below = int(position)
    return below, min(below + 1, n - 1), position - below


def seek_durations(wanted: list[tuple[str, str, int]]) -> TextClause:
    """One row: the duration at each (procedure, version, rank), each a seek along the
    (purpose, procedure, version, duration) index with ``LIMIT 1 OFFSET rank``.

    Written as text with bound values: built with Core expressions, a statement of a few
    hundred scalar subqueries costs more to construct than SQLite takes to answer it.
    """
    columns = []
    values: dict[str, Any] = {}
    for i, (procedure, version, rank) in enumerate(wanted):
        columns.append(
            f"(SELECT duration FROM {runs.name} WHERE purpose = 'run' AND procedure = :p{i}"
            f" AND version = :v{i} ORDER BY duration LIMIT 1 OFFSET :k{i}) AS d{i}"
        )
        values.update({f"p{i}": procedure, f"v{i}": version, f"k{i}": int(rank)})
    return text("SELECT " + ", ".join(columns)).bindparams(**values)


def stats(procedure: str | None) -> Select[Any]:
    """PostgreSQL: runs, successes, mean/p50/p95 duration and the last run, per
    (procedure, version), in one statement."""
    return _stats_postgresql(procedure)


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
