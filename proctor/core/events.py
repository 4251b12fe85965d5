"""Typed events: what happened, for plugins that observe rather than decide.

Every outcome proctor produces is announced once through the ``proctor_on_event`` hook,
so an audit log, a webhook or a metrics plugin sees all of them without editing any
action. Events are frozen dataclasses made of plain values (strings, tuples, a
timestamp): a handler cannot change what happened, and an event can be serialised
(``to_dict``) without knowing the domain objects behind it.

Actions (``action.``), runs (``run.``), side-effect deliveries (``side_effect.``),
proposals (``proposal.``) and code generation (``llm.``) have their own subclasses of
:class:`Event`, and sync its ``sync.`` events in :mod:`proctor.sync`. A handler that does
not know a kind ignores it, so adding one breaks no plugin. Dispatch on ``isinstance`` or
on ``event.kind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

ActionOutcome = Literal["applied", "proposed", "denied", "failed"]

ACTION_OUTCOMES: tuple[ActionOutcome, ...] = ("applied", "proposed", "denied", "failed")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event carries.

    ``kind`` is a dotted name (``"<domain>.<what happened>"``), ``time`` when it
    happened (UTC), ``actor`` who caused it and ``correlation_id`` the id that ties it
    to the commit trailers and logs of the same request.
    """

    domain: ClassVar[str] = "event"

    actor: str
    correlation_id: str
    time: datetime = field(default_factory=_now)
    # The git directory (the common one, for linked work trees) of the store it happened
    # in, "" when unknown: local state an observer keeps per clone (the side-effect
    # outbox, the metrics) lives under ``<store>/proctor/``.
    store: str = ""

    @property
    def kind(self) -> str:
        return self.domain

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, with ``kind`` first and ``time`` in ISO 8601."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class ActionEvent(Event):
    """One action's outcome: ``kind`` is ``action.<status>``.

    ``applied``: a commit (or, for a release alone, only tags) was published; ``commit``
    and ``tags`` say what. ``proposed``: the change waits for review as ``proposal``.
    ``denied``: policy refused it. ``failed``: nothing was written, ``errors`` says why
    (bad params, criteria, code checks, a conflict, proposals not enabled).
    ``decision`` is the policy decision when one was reached, else None.
    """

    domain: ClassVar[str] = "action"

    action: str
    status: ActionOutcome
    commit: str | None = None
    tags: tuple[str, ...] = ()
    proposal: str | None = None
    decision: str | None = None
    errors: tuple[str, ...] = ()
    message: str = ""
    # Where and at what cost it was written: the store ref, how many builds the
    # compare-and-swap took (1 = no lost race), the seconds slept between them, whether
    # the retries ran out (a ConcurrencyError after the last attempt), and for a
    # conflict how far the ref had moved past the expected version (commits, or
    # proposal versions) when that is known.
    ref: str = ""
    attempts: int = 0
    backoff: float = 0.0
    retries_exhausted: bool = False
    conflict_delta: int | None = None

    @property
    def kind(self) -> str:
        return f"{self.domain}.{self.status}"


RunStatus = Literal["ok", "error", "timeout", "killed", "denied"]

RUN_STATUSES: tuple[RunStatus, ...] = ("ok", "error", "timeout", "killed", "denied")


@dataclass(frozen=True, kw_only=True)
class RunEvent(Event):
    """One run of a procedure version: ``kind`` is ``run.<status>``.

    ``purpose`` is ``run`` (``proctor run``, the API, MCP) or ``test`` (an example of
    ``proctor test``); ``version`` the release or short commit, ``commit`` the full one;
    ``level`` the isolation level reached (None when nothing ran); ``error`` the
    exception (``Type: message``) or why it was stopped or denied; ``correlation_id``
    is the run id, as in the run log.
    """

    domain: ClassVar[str] = "run"

    run_id: str
    procedure: str
    version: str
    commit: str
    status: RunStatus
    purpose: str = "run"
    duration: float = 0.0
    level: int | None = None
    error: str | None = None
    machine: str = ""

    @property
    def kind(self) -> str:
        return f"{self.domain}.{self.status}"


@dataclass(frozen=True, kw_only=True)
class RollbackEvent(Event):
    """Auto-rollback of a release whose success rate fell below the threshold:
    ``kind`` is ``run.rollback``. ``outcome`` is the rollback action's status (applied,
    proposed, denied, failed) or ``skipped`` when there was no earlier release."""

    domain: ClassVar[str] = "run"

    procedure: str
    release: str
    to: str | None
    outcome: str
    success_rate: float
    runs: int
    run_id: str = ""
    commit: str | None = None
    proposal: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return f"{self.domain}.rollback"


EffectOutcome = Literal["delivered", "pending", "failed"]


@dataclass(frozen=True, kw_only=True)
class SideEffectEvent(Event):
    """One delivery of a durable side effect: ``kind`` is ``side_effect.<outcome>``.

    ``delivered``: the receiver took it. ``pending``: a transient failure (the receiver
    down, a 429 or 5xx, a timeout); it stays in the outbox for the next write or
    ``proctor side-effects retry``. ``failed``: the receiver refused it (a 401, say);
    only an explicit retry sends it again. ``seconds`` is the delivery's wall time,
    retries included; ``attempts`` the requests it made; ``key`` the idempotency key
    (``<commit>:<effect>``); ``action`` the action the delivered event was about.
    """

    domain: ClassVar[str] = "side_effect"

    effect: str
    effect_type: str
    outcome: EffectOutcome
    key: str
    attempts: int = 1
    seconds: float = 0.0
    action: str = ""
    error: str | None = None

    @property
    def kind(self) -> str:
        return f"{self.domain}.{self.outcome}"


@dataclass(frozen=True, kw_only=True)
class LlmEvent(Event):
    """Code generation and the model calls under it: ``kind`` is ``llm.<what>``.

    ``what`` is one of:

    - ``queue``: the batch queue changed; ``inflight`` items being worked on now,
      ``submitted`` and ``completed`` items so far (counters that only grow);
    - ``stage``: one stage of one item ended; ``stage`` is ``generate``, ``check``,
      ``examples`` or ``commit`` and ``seconds`` how long it took;
    - ``cache_hit`` / ``cache_miss``: the response cache answered a model call, or not;
    - ``breaker``: the circuit breaker changed ``state`` (``open``, ``half_open``,
      ``closed``);
    - ``attempt_failed``: one model call failed (``status``, ``error``); the transport
      may try again;
    - ``generated``: one procedure is done; ``outcome`` is the action's status
      (applied, proposed, denied, failed), ``confidence`` and ``band`` what decided it.

    ``procedure`` names the item where there is one; ``backend`` and ``model`` the model
    asked; ``correlation_id`` is the batch's (or the single generation's) id.
    """

    domain: ClassVar[str] = "llm"

    what: str
    procedure: str | None = None
    backend: str = ""
    model: str = ""
    stage: str | None = None
    seconds: float | None = None
    inflight: int | None = None
    submitted: int | None = None
    completed: int | None = None
    state: str | None = None
    status: int | None = None
    outcome: str | None = None
    confidence: float | None = None
    band: str | None = None
    error: str | None = None

    @property
    def kind(self) -> str:
        return f"{self.domain}.{self.what}"


@dataclass(frozen=True, kw_only=True)
class ProposalEvent(Event):
    """A proposal's transition: ``kind`` is ``proposal.<status>`` (``proposal.pending``
    when one is recorded, then ``proposal.pending`` again for an approval or an edit,
    ``proposal.applied``, ``.failed``, ``.rejected``, ``.withdrawn``). ``transition`` is
    the action that moved it (``proposal.create``, ``proposal.approve`` ...), ``commit``
    the commit that recorded it, ``action`` the proposed action."""

    domain: ClassVar[str] = "proposal"

    proposal: str
    status: str
    version: int
    action: str
    transition: str
    commit: str | None = None
    error: str | None = None

    @property
    def kind(self) -> str:
        return f"{self.domain}.{self.status}"
