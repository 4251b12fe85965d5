"""The durable outbox: one SQLite file per clone, ``<git dir>/proctor/outbox.sqlite``.

A delivery is a row before it is an attempt. For an action that commits, the row is
written *before the commit* (state ``prepared``, keyed by the correlation id the commit
will carry as its ``Proctor-Correlation-Id`` trailer) and turned ``pending`` with the
commit id once the ref moved; delivery comes after. So a process killed at any point
leaves a row that the next process can settle: a ``prepared`` row whose process is gone
is looked up in git by its correlation id, and becomes ``pending`` (the commit landed)
or is dropped (it never did). Nothing a crash or a dead receiver interrupts is lost;
a receiver may see a delivery twice (at-least-once), and the ``Idempotency-Key`` header
(``<commit>:<effect>``, the row's ``key``) lets it tell.

Several processes share the file: WAL mode, a busy timeout, and a lease on each row
while one process delivers it, so two writers never deliver the same row at once.
The file is local state: not versioned, per clone, like the run log.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proctor.plugins.side_effects.settings import outbox_path

if TYPE_CHECKING:
    import sqlite3

STATES = ("prepared", "pending", "delivered", "failed")

# A prepared row of a process on another host (or one whose pid cannot be checked) is
# settled once it is this old: no write holds its lock for that long.
STALE_PREPARED = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE,
    effect TEXT NOT NULL,
    kind TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    ref TEXT NOT NULL DEFAULT '',
    base TEXT,
    commit_id TEXT,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    settings TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    next_at REAL NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_correlation ON deliveries (correlation_id);
"""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Delivery:
    """One row: what to deliver to which effect, and how it went so far."""

    id: int
    key: str | None
    effect: str
    kind: str
    correlation_id: str
    ref: str
    base: str | None
    commit: str | None
    state: str
    payload: dict[str, Any]
    settings: dict[str, Any]
    attempts: int
    last_error: str | None
    created: float
    updated: float
    next_at: float
    owner: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "effect": self.effect,
            "kind": self.kind,
            "action": self.payload.get("action"),
            "commit": self.commit,
            "correlation_id": self.correlation_id,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created": self.created,
            "updated": self.updated,
        }


def _row(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        key=row["key"],
        effect=row["effect"],
        kind=row["kind"],
        correlation_id=row["correlation_id"],
        ref=row["ref"],
        base=row["base"],
        commit=row["commit_id"],
        state=row["state"],
        payload=json.loads(row["payload"]),
        settings=json.loads(row["settings"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        created=row["created"],
        updated=row["updated"],
        next_at=row["next_at"],
        owner=row["owner"],
    )


class Outbox:
    """The outbox of one clone. Cheap to make: the file is opened per operation, so a
    handle can live in a plugin across many stores and processes never hold it open."""

    def __init__(self, git_dir: str | os.PathLike[str]) -> None:
        self.git_dir = os.fspath(git_dir)
        self.path = outbox_path(git_dir)

    # -- the connection ----------------------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        import sqlite3  # here: a write with no side effect to record never opens it

        from proctor.store.perms import refuse_link, share_database, state_folder, state_setting

        state_folder(self.git_dir)  # several users of a shared repository send through it
        refuse_link(self.path)
        share_database(self.path, state_setting(self.git_dir))

        with closing(sqlite3.connect(self.path, timeout=30.0, isolation_level=None)) as db:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a killed process; only power loss can drop the
            # last transactions, which git's own loose refs would not survive either.
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            yield db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def exists(self) -> bool:
        return self.path.is_file()

    # -- writing rows ------------------------------------------------------------------

    def prepare(
        self,
        *,
        effect: str,
        kind: str,
        correlation_id: str,
        ref: str,
        base: str | None,
        payload: Mapping[str, Any],
        settings: Mapping[str, Any],
    ) -> None:
        """Record, before the commit, that ``effect`` is owed for ``correlation_id``."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO deliveries (effect, kind, correlation_id, ref, base, state,"
                " payload, settings, created, updated, owner)"
                " VALUES (?, ?, ?, ?, ?, 'prepared', ?, ?, ?, ?, ?)",
                (
                    effect,
                    kind,
                    correlation_id,
                    ref,
                    base,
                    json.dumps(dict(payload)),
                    json.dumps(dict(settings)),
                    now,
                    now,
                    _owner(),
                ),
            )

    def settle(
        self,
        correlation_id: str,
        *,
        kind: str,
        commit: str | None,
        payload: Mapping[str, Any],
        effects: Mapping[str, Mapping[str, Any]],
    ) -> list[Delivery]:
        """The event for ``correlation_id`` happened: its prepared rows (and a row for
        each wanted effect that had none) become ``pending``; the prepared rows of
        effects that do not want it are dropped. Returns this event's pending rows,
        including ones another process already settled (never twice the same key)."""
        now = time.time()
        subject = commit or correlation_id
        with self._tx() as db:
            prepared = {
                r["effect"]: r["id"]
                for r in db.execute(
                    "SELECT id, effect FROM deliveries WHERE correlation_id = ? AND state = 'prepared'",
                    (correlation_id,),
                )
            }
            for effect, settings in effects.items():
                key = f"{subject}:{effect}"
                taken = db.execute("SELECT id FROM deliveries WHERE key = ?", (key,)).fetchone()
                row_id = prepared.pop(effect, None)
                if taken is not None:
                    if row_id is not None:
                        db.execute("DELETE FROM deliveries WHERE id = ?", (row_id,))
                    continue
                body = json.dumps({**payload, "effect": effect, "idempotency_key": key})
                if row_id is not None:
                    db.execute(
                        "UPDATE deliveries SET key = ?, kind = ?, commit_id = ?, state = 'pending',"
                        " payload = ?, settings = ?, updated = ? WHERE id = ?",
                        (key, kind, commit, body, json.dumps(dict(settings)), now, row_id),
                    )
                else:
                    db.execute(
                        "INSERT INTO deliveries (key, effect, kind, correlation_id, commit_id,"
                        " state, payload, settings, created, updated, owner)"
                        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                        (
                            key,
                            effect,
                            kind,
                            correlation_id,
                            commit,
                            body,
                            json.dumps(dict(settings)),
                            now,
                            now,
                            _owner(),
                        ),
                    )
            for row_id in prepared.values():
                db.execute("DELETE FROM deliveries WHERE id = ?", (row_id,))
            rows = db.execute(
                "SELECT * FROM deliveries WHERE correlation_id = ? AND state = 'pending'",
                (correlation_id,),
            ).fetchall()
        return [_row(r) for r in rows]

    def discard_prepared(self, correlation_id: str) -> int:
        """Drop the prepared rows of an action that did not commit."""
        if not self.exists():
            return 0
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM deliveries WHERE correlation_id = ? AND state = 'prepared'",
                (correlation_id,),
            )
            return cur.rowcount

    # -- delivering --------------------------------------------------------------------

    def claim(self, row_id: int, lease: float, *, states: tuple[str, ...]) -> Delivery | None:
        """Take ``row_id`` for delivery for ``lease`` seconds, unless it is delivered or
        another process holds it: at most one process delivers a row at a time."""
        now = time.time()
        marks = ", ".join("?" for _ in states)
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE deliveries SET lease_until = ?, owner = ? WHERE id = ?"
                f" AND state IN ({marks}) AND lease_until < ?",
                (now + lease, _owner(), row_id, *states, now),
            )
            if cur.rowcount != 1:
                return None
            row = db.execute("SELECT * FROM deliveries WHERE id = ?", (row_id,)).fetchone()
        return _row(row)

    def record(
        self, row_id: int, state: str, *, attempts: int, error: str | None, next_at: float = 0.0
    ) -> None:
        """The outcome of a delivery: ``delivered``, ``pending`` (try later, not before
        ``next_at``) or ``failed`` (the receiver refused it; only ``retry`` tries again)."""
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + ?, last_error = ?,"
                " updated = ?, next_at = ?, lease_until = 0 WHERE id = ?",
                (state, attempts, error, time.time(), next_at, row_id),
            )

    # -- reading -----------------------------------------------------------------------

    def rows(self, states: tuple[str, ...] = STATES, *, due: bool = False) -> list[Delivery]:
        """Rows in ``states``, oldest first; ``due``: only those whose wait is over."""
        if not self.exists():
            return []
        marks = ", ".join("?" for _ in states)
        sql = f"SELECT * FROM deliveries WHERE state IN ({marks})"
        args: list[Any] = list(states)
        if due:
            sql += " AND next_at <= ?"
            args.append(time.time())
        with self._db() as db:
            return [_row(r) for r in db.execute(sql + " ORDER BY id", args)]

    # -- settling what a crash left ----------------------------------------------------

    def recover(self, *, keep: str | None = None) -> list[str]:
        """Settle ``prepared`` rows whose process is gone: look their correlation id up
        in git; pending with the commit if it landed, dropped if it did not. ``keep`` is
        a correlation id in progress in this process. Returns what happened, per row."""
        notes: list[str] = []
        for row in self.rows(("prepared",)):
            if row.correlation_id == keep or _alive(row.owner, row.created):
                continue
            found = find_commit(self.git_dir, row.ref, row.base, row.correlation_id)
            if found is None:
                with self._tx() as db:
                    db.execute(
                        "DELETE FROM deliveries WHERE id = ? AND state = 'prepared'", (row.id,)
                    )
                notes.append(f"{row.effect}: {row.correlation_id} never committed; dropped")
                continue
            commit, tags = found
            if row.kind == "action.proposed":
                # The proposal's own commit: the event has no commit of the action, so
                # its key is the correlation id's, as the live event's would be.
                proposal = _trailer(self.git_dir, commit, "Proctor-Proposal")
                payload = {**row.payload, "commit": commit, "proposal": proposal}
                self.settle(
                    row.correlation_id,
                    kind=row.kind,
                    commit=None,
                    payload={**payload, "status": "proposed"},
                    effects={row.effect: row.settings},
                )
            else:
                payload = {**row.payload, "commit": commit, "tags": tags, "status": "applied"}
                self.settle(
                    row.correlation_id,
                    kind="action.applied",
                    commit=commit,
                    payload=payload,
                    effects={row.effect: row.settings},
                )
            notes.append(f"{row.effect}: {row.correlation_id} committed as {commit[:12]}")
        return notes


def _alive(owner: str, created: float) -> bool:
    """Whether the process that prepared a row may still be writing."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return time.time() - created < STALE_PREPARED
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process is not in that write any more
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return time.time() - created < STALE_PREPARED


def _git(git_dir: str, *args: str) -> str | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_EXEC_PATH"}
    proc = subprocess.run(
        ["git", "--git-dir", git_dir, *args],
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


def find_commit(
    git_dir: str, ref: str, base: str | None, correlation_id: str
) -> tuple[str, list[str]] | None:
    """The commit (and release tags) an action with ``correlation_id`` published on
    ``ref`` after ``base``, from its trailer; None when it never landed."""
    trailer = f"Proctor-Correlation-Id: {correlation_id}"
    span = [ref or "--all"] if base is None else [ref or "--all", f"^{base}"]
    out = _git(git_dir, "log", "--format=%H", "--fixed-strings", f"--grep={trailer}", *span, "--")
    commits = (out or "").split()
    if commits:
        commit = commits[-1]
        return commit, _tags_with(git_dir, commit, trailer)
    # A release of an unchanged tip writes only a tag, on the base commit.
    if base is not None:
        tags = _tags_with(git_dir, base, trailer)
        if tags:
            return base, tags
    return None


def _trailer(git_dir: str, commit: str, key: str) -> str | None:
    """The value of trailer ``key`` in ``commit``'s message (None without one)."""
    out = _git(git_dir, "log", "-1", f"--format=%(trailers:key={key},valueonly)", commit)
    value = (out or "").strip()
    return value or None


def _tags_with(git_dir: str, commit: str, trailer: str) -> list[str]:
    out = _git(
        git_dir,
        "for-each-ref",
        f"--points-at={commit}",
        "--format=%(refname)%00%(contents)%01",
        "refs/tags",
    )
    tags = []
    for record in (out or "").split("\x01"):
        name, _, contents = record.strip("\n").partition("\x00")
        if name and trailer in contents:
            tags.append(name.removeprefix("refs/tags/"))
    return tags
