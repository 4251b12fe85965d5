"""The run log's tables and the ordered migrations that create and change them.

``MIGRATIONS`` is a list of ``(version, description, function)`` applied in order. A
database records each version it has applied in ``proctor_schema``; opening a log
applies the missing ones, each in its own transaction under a lock (SQLite's write lock
through ``BEGIN IMMEDIATE``, a transaction-scoped advisory lock on PostgreSQL), so two
processes opening a fresh database at once apply every migration exactly once. DDL is
transactional on both, so a migration that fails leaves the database at the version
before it.

Each migration spells out its own DDL as it was when written (its own ``MetaData``): a
later migration that adds a column must not change what an earlier one creates, or a
database migrated step by step would differ from one created at once. The tables below
are the current shape, used by the queries; a test checks that a migrated database has
exactly their columns.

Adding a migration: append ``(next version, description, function)`` and update the
current tables to match. Never edit or reorder a migration that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_TABLE = "proctor_schema"
LOCK_ID = 0x70726F63  # "proc": the advisory lock of migrations on PostgreSQL

metadata = MetaData()

schema_versions = Table(
    SCHEMA_TABLE,
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied", Float, nullable=False),
)

runs = Table(
    "proctor_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("procedure", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("purpose", String(8), nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("actor", String(320)),
    Column("machine", String(255)),
    Column("status", String(8), nullable=False),
    Column("duration", Float, nullable=False),
    Column("error", Text),
    Column("level", Integer),
    Column("started", Float, nullable=False),
)

rollbacks = Table(
    "proctor_rollbacks",
    metadata,
    Column("procedure", String(64), primary_key=True),
    Column("release", String(64), primary_key=True),
    Column("to_release", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("success_rate", Float, nullable=False),
    Column("runs", Integer, nullable=False),
    Column("commit", String(64)),
    Column("proposal", String(128)),
    Column("errors", Text),
    Column("actor", String(320)),
    Column("at", Float, nullable=False),
)

tests = Table(
    "proctor_tests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("procedure", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("examples", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("actor", String(320)),
    Column("machine", String(255)),
    Column("duration", Float, nullable=False),
    Column("started", Float, nullable=False),
)


# -- migrations ----------------------------------------------------------------------------


def _v1_runs(conn: Connection) -> None:
    md = MetaData()
    table = Table(
        "proctor_runs",
        md,
        Column("id", String(32), primary_key=True),
        Column("procedure", String(64), nullable=False),
        Column("version", String(64), nullable=False),
        Column("commit", String(64), nullable=False),
        Column("purpose", String(8), nullable=False),
        Column("params_hash", String(64), nullable=False),
        Column("actor", String(320)),
        Column("machine", String(255)),
        Column("status", String(8), nullable=False),
        Column("duration", Float, nullable=False),
        Column("error", Text),
        Column("level", Integer),
        Column("started", Float, nullable=False),
    )
    # `proctor runs NAME`: newest first. Stats and rollback windows read one version's
    # runs: ordered by duration for the percentile seeks, and covering what the
    # aggregates read, so the statistics never touch the table itself.
    Index("proctor_runs_recent", table.c.procedure, table.c.started)
    Index(
        "proctor_runs_version",
        table.c.purpose,
        table.c.procedure,
        table.c.version,
        table.c.duration,
        table.c.status,
        table.c.started,
    )
    md.create_all(conn)


def _v2_rollbacks_and_tests(conn: Connection) -> None:
    md = MetaData()
    Table(
        "proctor_rollbacks",
        md,
        Column("procedure", String(64), primary_key=True),
        Column("release", String(64), primary_key=True),
        Column("to_release", String(64)),
        Column("outcome", String(16), nullable=False),
        Column("success_rate", Float, nullable=False),
        Column("runs", Integer, nullable=False),
        Column("commit", String(64)),
        Column("proposal", String(128)),
        Column("errors", Text),
        Column("actor", String(320)),
        Column("at", Float, nullable=False),
    )
    table = Table(
        "proctor_tests",
        md,
        Column("id", String(32), primary_key=True),
        Column("procedure", String(64), nullable=False),
        Column("version", String(64), nullable=False),
        Column("commit", String(64), nullable=False),
        Column("examples", Integer, nullable=False),
        Column("passed", Integer, nullable=False),
        Column("failed", Integer, nullable=False),
        Column("actor", String(320)),
        Column("machine", String(255)),
        Column("duration", Float, nullable=False),
        Column("started", Float, nullable=False),
    )
    Index("proctor_tests_version", table.c.procedure, table.c.version, table.c.started)
    md.create_all(conn)


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, "runs", _v1_runs),
    (2, "rollbacks and example tests", _v2_rollbacks_and_tests),
]

LATEST = MIGRATIONS[-1][0]
