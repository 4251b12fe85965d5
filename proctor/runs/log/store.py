"""``RunLog``: the run log over SQLAlchemy's async engine, SQLite or PostgreSQL.

The async methods (``a``-prefixed) are the implementation; the synchronous ones call
them through :func:`proctor.runs.bridge.run_async`, so the CLI, scripts and a running
event loop all reach the same code. The engine uses no connection pool (``NullPool``):
a pooled async connection belongs to the event loop that opened it, and this log is
used from the caller's loop (``Workspace.arun``) as well as from the private loops of
``run_async``; a connection per operation is what makes both safe.

SQLite (the default, ``.git/proctor/runs.sqlite``): WAL mode so readers never wait for
writers, a 30 s busy timeout so concurrent writers queue instead of failing, and writes
in ``BEGIN IMMEDIATE`` transactions so a transaction that reads before it writes cannot
deadlock against another one. PostgreSQL: ``postgresql://`` URLs use asyncpg
(``pip install 'proctor[runs]'``); ``postgresql+psycopg://`` uses psycopg 3.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from proctor.runs.bridge import run_async
from proctor.runs.log import queries
from proctor.runs.log.schema import LATEST, LOCK_ID, MIGRATIONS, SCHEMA_TABLE, schema_versions
from proctor.runs.log.schema import rollbacks as rollbacks_table
from proctor.runs.log.schema import runs as runs_table
from proctor.runs.log.schema import tests as tests_table
from proctor.runs.model import LoggedRun, RunLogError, VersionStats
from proctor.runs.settings import LOG_FILE

PERCENTILES = (0.5, 0.95)
SEEKS_PER_STATEMENT = 500  # result columns of one statement; SQLite allows 2,000
DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}
PACKAGES = {"aiosqlite": "aiosqlite", "asyncpg": "asyncpg", "psycopg": "psycopg[binary]"}


def normalise_url(url: str) -> str:
    """An async driver for a plain URL: ``sqlite://`` → aiosqlite, ``postgresql://`` →
    asyncpg; a URL that names its driver is kept."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RunLogError(f"run log URL {url!r} is not a database URL (e.g. postgresql://...)")
    return f"{DRIVERS.get(scheme, scheme)}://{rest}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling is off: the "begin" listener says how to begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    write = conn.get_execution_options().get("proctor_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class RunLog:
    """One run log database. Cheap to make: nothing connects until the first use.

    ``url`` None is the default SQLite file under ``state_dir`` (``.git/proctor``), made
    with the permissions ``shared`` (:func:`proctor.store.perms.shared_permission`) asks.
    Every method raises RunLogError (exit code 1) when the database cannot be reached,
    migrated, read or written, with the URL's password left out of the message.
    """

    def __init__(
        self, url: str | None = None, state_dir: str | Path | None = None, shared: int = 0
    ) -> None:
        # ``shared``: the repository's core.sharedRepository, for the default file (the
        # clone's, written by every user of a shared repository).
        self.shared = shared
        if url is None:
            if state_dir is None:
                raise RunLogError("a run log needs a URL or a state directory")
            self.path: Path | None = Path(state_dir) / LOG_FILE
            self._in_state_dir = True
            url = f"sqlite+aiosqlite:///{self.path}"
        else:
            self.path = None
            self._in_state_dir = False
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise RunLogError(f"run log URL is invalid: {exc}") from None
        self.dialect = parsed.get_backend_name()
        self.display_url = parsed.render_as_string(hide_password=True)
        if self.dialect == "sqlite" and self.path is None and parsed.database:
            self.path = Path(parsed.database)
        self._engine: AsyncEngine | None = None
        self._migrated = False

    # -- the engine --------------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> RunLogError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return RunLogError(
            f"run log {self.display_url}: {what}: {detail[0] if detail else type(exc).__name__}"
        )

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            if self.path is not None and self._in_state_dir:
                from proctor.store.errors import UnsafePathError
                from proctor.store.perms import make_folders, refuse_link, share_database

                make_folders(self.path.parent, self.shared)
                try:
                    refuse_link(self.path)  # the clone's own file: never through a link
                except UnsafePathError as exc:
                    raise RunLogError(f"run log: {exc}") from None
                share_database(self.path, self.shared)
            elif self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                if self.dialect == "sqlite":
                    import aiosqlite  # noqa: F401 - the driver SQLAlchemy loads; say so if missing
                engine = create_async_engine(self.url, poolclass=NullPool)
            except ModuleNotFoundError as exc:
                package = PACKAGES.get(exc.name or "", exc.name)
                raise RunLogError(
                    f"run log {self.display_url} needs the {package} driver: "
                    f"pip install 'proctor[runs]' (or pip install {package})"
                ) from None
            except (ArgumentError, SQLAlchemyError) as exc:
                raise self._fail("cannot open", exc) from None
            if self.dialect == "sqlite":
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
                event.listen(engine.sync_engine, "begin", _sqlite_begin)
            self._engine = engine
        return self._engine

    def _writer(self) -> AsyncEngine:
        return self.engine.execution_options(proctor_write=True)

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def close(self) -> None:
        if self._engine is not None:
            run_async(self.aclose())

    # -- schema ------------------------------------------------------------------------------

    async def _applied(self, conn: AsyncConnection) -> set[int]:
        has = await conn.run_sync(lambda c: c.dialect.has_table(c, SCHEMA_TABLE))
        if not has:
            return set()
        rows = await conn.execute(select(schema_versions.c.version))
        return {int(r[0]) for r in rows}

    async def amigrate(self, target: int | None = None) -> int:
        """Apply the missing migrations (up to ``target``); returns the version reached.

        Raises RunLogError for a database newer than this proctor knows.
        """
        goal = LATEST if target is None else target
        try:
            async with self.engine.connect() as conn:
                applied = await self._applied(conn)
                await conn.rollback()
            if applied and max(applied) > LATEST:
                raise RunLogError(
                    f"run log {self.display_url} is at schema version {max(applied)}, newer "
                    f"than this proctor knows ({LATEST}): upgrade proctor"
                )
            reached = max(applied, default=0)
            for version, description, migrate in MIGRATIONS:
                if version > goal or version in applied:
                    continue
                async with self._writer().begin() as conn:
                    if self.dialect == "postgresql":
                        await conn.execute(select(func.pg_advisory_xact_lock(LOCK_ID)))
                    await conn.run_sync(lambda c: schema_versions.create(c, checkfirst=True))
                    # Another process may have applied it while this one waited for the lock.
                    if version not in await self._applied(conn):
                        await conn.run_sync(migrate)
                        await conn.execute(
                            insert(schema_versions).values(
                                version=version, description=description, applied=time.time()
                            )
                        )
                reached = max(reached, version)
        except RunLogError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot migrate", exc) from None
        if reached >= LATEST:
            self._migrated = True
        return reached

    async def aschema_version(self) -> int:
        try:
            async with self.engine.connect() as conn:
                applied = await self._applied(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot read", exc) from None
        return max(applied) if applied else 0

    async def _ready(self) -> None:
        if not self._migrated:
            await self.amigrate()

    # -- writes ------------------------------------------------------------------------------

    async def arecord(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert run rows (columns of ``proctor_runs``) in one transaction."""
        batch = [dict(r) for r in rows]
        if not batch:
            return 0
        await self._ready()
        try:
            async with self._writer().begin() as conn:
                await conn.execute(insert(runs_table), batch)
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot record runs", exc) from None
        return len(batch)

    async def aclaim_rollback(self, row: Mapping[str, Any]) -> bool:
        """Record that a release is being rolled back; False if one already was.

        The primary key (procedure, release) makes this the "once" of auto-rollback
        across every process and machine sharing the log.
        """
        await self._ready()
        try:
            async with self._writer().begin() as conn:
                await conn.execute(insert(rollbacks_table).values(**row))
        except IntegrityError:
            return False
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot record a rollback", exc) from None
        return True

    async def afinish_rollback(self, procedure: str, release: str, **values: Any) -> None:
        if "errors" in values and not isinstance(values["errors"], str | None):
            values["errors"] = json.dumps(list(values["errors"]))
        await self._ready()
        try:
            async with self._writer().begin() as conn:
                await conn.execute(
                    update(rollbacks_table)
                    .where(rollbacks_table.c.procedure == procedure)
                    .where(rollbacks_table.c.release == release)
                    .values(**values)
                )
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot record a rollback", exc) from None

    async def arecord_test(self, row: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> None:
        """One ``proctor test`` and the runs of its examples, in one transaction."""
        await self._ready()
        try:
            async with self._writer().begin() as conn:
                batch = [dict(r) for r in runs]
                if batch:
                    await conn.execute(insert(runs_table), batch)
                await conn.execute(insert(tests_table).values(**row))
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot record a test", exc) from None

    # -- reads -------------------------------------------------------------------------------

    async def _read(self, statement: Any) -> list[Any]:
        await self._ready()
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(statement)
                return list(result)
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot read", exc) from None

    async def arecent(self, procedure: str, limit: int = 20) -> list[LoggedRun]:
        rows = await self._read(queries.recent(procedure, limit))
        return [queries.logged_run(r) for r in rows]

    async def astats(self, procedure: str | None = None) -> list[VersionStats]:
        """Per-version statistics; see ``queries`` for how each backend computes them."""
        if self.dialect == "postgresql":
            rows = await self._read(queries.stats(procedure))
            return [queries.version_stats(r) for r in rows]
        await self._ready()
        try:
            async with self.engine.connect() as conn:
                groups = list(await conn.execute(queries.version_groups(procedure)))
                wanted: list[tuple[str, str, int]] = []
                for g in groups:
                    for p in PERCENTILES:
                        below, above, _ = queries.ranks(int(g.runs), p)
                        wanted += [(g.procedure, g.version, below), (g.procedure, g.version, above)]
                found: list[float] = []
                for i in range(0, len(wanted), SEEKS_PER_STATEMENT):
                    chunk = wanted[i : i + SEEKS_PER_STATEMENT]
                    found.extend((await conn.execute(queries.seek_durations(chunk))).one())
        except (SQLAlchemyError, OSError) as exc:
            raise self._fail("cannot read", exc) from None
        out, at = [], iter(found)
        for g in groups:
            values = []
            for p in PERCENTILES:
                low, high = float(next(at)), float(next(at))
                values.append(low + (high - low) * queries.ranks(int(g.runs), p)[2])
            out.append(
                VersionStats(
                    procedure=g.procedure,
                    version=g.version,
                    runs=int(g.runs),
                    ok=int(g.ok or 0),
                    mean=float(g.mean or 0.0),
                    p50=values[0],
                    p95=values[1],
                    last=float(g.last or 0.0),
                )
            )
        return out

    async def awindow(self, procedure: str, version: str, window: int) -> list[str]:
        """Statuses of the last ``window`` runs of one version, newest first."""
        rows = await self._read(queries.window(procedure, version, window))
        return [r[0] for r in rows]

    async def arollback_of(self, procedure: str, release: str) -> dict[str, Any] | None:
        rows = await self._read(
            select(rollbacks_table)
            .where(rollbacks_table.c.procedure == procedure)
            .where(rollbacks_table.c.release == release)
        )
        return dict(rows[0]._mapping) if rows else None

    async def alast_tests(
        self, procedure: str | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest ``proctor test`` of each (procedure, version)."""
        rows = await self._read(queries.last_tests(procedure))
        return {(r.procedure, r.version): dict(r._mapping) for r in rows}

    async def acount(self, procedure: str | None = None) -> int:
        statement = select(func.count()).select_from(runs_table)
        if procedure is not None:
            statement = statement.where(runs_table.c.procedure == procedure)
        rows = await self._read(statement)
        return int(rows[0][0])

    # -- the synchronous face ----------------------------------------------------------------

    def migrate(self, target: int | None = None) -> int:
        return run_async(self.amigrate(target))

    def record(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return run_async(self.arecord(rows))

    def recent(self, procedure: str, limit: int = 20) -> list[LoggedRun]:
        return run_async(self.arecent(procedure, limit))

    def stats(self, procedure: str | None = None) -> list[VersionStats]:
        return run_async(self.astats(procedure))

    def count(self, procedure: str | None = None) -> int:
        return run_async(self.acount(procedure))

    def last_tests(self, procedure: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        return run_async(self.alast_tests(procedure))
