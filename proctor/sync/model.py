"""What a sync reports: plain data, so the faces print it and scripts read it as JSON.

A sync is done or not done as a whole; ``conflicts`` lists what it could not settle by
itself (each with what to do), ``tags`` what became of every release that crossed, and
``warnings`` anything that did not go as it should after the refs moved.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from proctor.core.errors import EXIT_CONFLICT, EXIT_OK
from proctor.core.events import Event

ConflictKind = Literal["commit", "proposal", "policy", "release", "worktree", "history", "push"]
TagStatus = Literal["pushed", "fetched", "renumbered", "adopted", "withdrawn", "recreated"]


@dataclass(frozen=True)
class Conflict:
    """Something the sync left for a person: ``kind``, the local commit or tag it is
    about, the path where one applies, and a message that says what to do."""

    kind: ConflictKind
    message: str
    commit: str | None = None
    path: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Replayed:
    """A local proctor commit re-applied on the remote's tip: ``old`` is gone from the
    branch, ``new`` (None when its change was already there) took its place."""

    old: str
    new: str | None
    action: str
    subject: str


@dataclass(frozen=True)
class TagOutcome:
    """What became of one release tag: ``name`` as it was made, ``final`` the name it
    ended under (None when withdrawn), ``status`` and why."""

    name: str
    status: TagStatus
    final: str | None
    reason: str = ""


@dataclass
class SyncResult:
    """The outcome of ``Workspace.sync``. ``to_json`` is ``proctor sync --json``."""

    remote: str
    branch: str
    local_before: str | None = None
    local_after: str | None = None
    fetched: str | None = None  # the remote's tip as last fetched
    pushed: bool = False
    replayed: list[Replayed] = field(default_factory=list)
    tags: list[TagOutcome] = field(default_factory=list)
    retries: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    atomic: bool = True  # whether the push went in one atomic transaction

    @property
    def status(self) -> str:
        if self.conflicts:
            return "conflict"
        changed = self.pushed or self.local_before != self.local_after or self.tags
        return "synced" if changed else "up-to-date"

    @property
    def exit_code(self) -> int:
        return EXIT_CONFLICT if self.conflicts else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "remote": self.remote,
            "branch": self.branch,
            "local_before": self.local_before,
            "local_after": self.local_after,
            "fetched": self.fetched,
            "pushed": self.pushed,
            "atomic": self.atomic,
            "replayed": [asdict(r) for r in self.replayed],
            "tags": [asdict(t) for t in self.tags],
            "retries": self.retries,
            "conflicts": [asdict(c) for c in self.conflicts],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class SyncStatus:
    """How far the store branch is from the remote's tip as last fetched (no network):
    ``ahead`` local commits not there, ``behind`` remote commits not here, and local
    releases the remote has not got yet."""

    remote: str
    branch: str
    local: str | None
    fetched: str | None
    ahead: int
    behind: int
    unpublished_tags: list[str] = field(default_factory=list)

    @property
    def fetched_ever(self) -> bool:
        return self.fetched is not None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["fetched_ever"] = self.fetched_ever
        return out


@dataclass(frozen=True, kw_only=True)
class SyncEvent(Event):
    """One sync's outcome, announced through ``proctor_on_event``: ``kind`` is
    ``sync.<status>`` (synced, up-to-date, conflict). ``replayed`` counts the local
    commits applied again on the remote's tip; ``tags`` are ``name:status`` of every
    release that crossed; ``conflicts`` the kinds left."""

    domain: ClassVar[str] = "sync"

    remote: str
    branch: str
    status: str
    commit: str | None = None
    pushed: bool = False
    replayed: int = 0
    retries: int = 0
    tags: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return f"{self.domain}.{self.status}"

    @classmethod
    def of(cls, result: SyncResult, actor: str) -> SyncEvent:
        return cls(
            actor=actor,
            correlation_id=str(uuid.uuid4()),
            remote=result.remote,
            branch=result.branch,
            status=result.status,
            commit=result.local_after,
            pushed=result.pushed,
            replayed=len(result.replayed),
            retries=result.retries,
            tags=tuple(f"{t.name}:{t.status}" for t in result.tags),
            conflicts=tuple(c.kind for c in result.conflicts),
        )
