"""Built-in plugin: durable side effects, the ``log`` and ``webhook`` types.

Configured in the committed config as ``[side-effects.<name>]`` tables (see
:mod:`.settings`), they observe outcomes through ``proctor_on_event``, so no action has
to name them. Delivery goes through the outbox (:mod:`.outbox`): for an action about to
commit, ``proctor_before_commit`` writes the rows first (this plugin never vetoes), and
``proctor_before_propose`` does the same before a proposal's own commit; the event turns
them pending with the commit id, and only then are they delivered. A
delivery that fails stays in the outbox; the result carries it as
``side_effects[name] == "pending: ..."`` with a warning, and the commit stands.

Every write (any action, whatever its outcome) first settles what earlier processes
left: rows of a process killed around its commit, and pending deliveries whose wait is
over, each tried once (a receiver that is down is not tried again for the other rows of
the same effect in that command, so a dead receiver costs one attempt per write, not
one per row). ``proctor side-effects retry`` delivers everything pending or failed,
with the full retry policy. Reads never deliver: they stay fast and offline.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from proctor.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from proctor.core.config import ProctorConfig
    from proctor.plugins.side_effects.outbox import Delivery, Outbox
    from proctor.plugins.side_effects.settings import EffectSettings

logger = logging.getLogger("proctor.side_effects")

# The config each action saw before its commit, by correlation id, for its event.
_configs: OrderedDict[str, ProctorConfig] = OrderedDict()
_CONFIGS_KEPT = 64
# How long a pending row waits before a write tries it again: the nth failure waits
# BACKOFF * 2**n seconds, at most BACKOFF_MAX (an explicit retry does not wait).
BACKOFF = 5.0
BACKOFF_MAX = 3600.0


@hookimpl(trylast=True)
def proctor_before_commit(action: Any, params: Any, context: Any) -> None:
    _prepare("action.applied", action, params, context)


@hookimpl
def proctor_before_propose(action: Any, params: Any, context: Any) -> None:
    _prepare("action.proposed", action, params, context)


def _prepare(kind: str, action: Any, params: Any, context: Any) -> None:
    """The outbox rows the commit about to be written owes (``kind``: the action's own
    commit, or its proposal's), written before it, so a kill right after that commit
    leaves rows a later command finds by the commit's correlation id."""
    snapshot = context.snapshot
    if snapshot is None:
        return
    # Kept for the event of this action, which then needs no read of the config.
    _configs[context.correlation_id] = context.config
    while len(_configs) > _CONFIGS_KEPT:
        _configs.popitem(last=False)
    from proctor.plugins.side_effects.settings import effects

    chosen = {
        name: s for name, s in effects(context.config).items() if s.wants(kind, action.api_name)
    }
    if not chosen:
        return
    from proctor.plugins.side_effects.outbox import Outbox

    outbox = Outbox(snapshot.store.common_dir)
    proposed = kind == "action.proposed"
    payload = {
        "kind": kind,
        "action": action.api_name,
        "status": "proposed" if proposed else "applied",
        "actor": context.actor,
        "commit": None,
        "tags": [],
        "proposal": None if proposed else context.proposal,
        "correlation_id": context.correlation_id,
        "decision": "REQUIRE_PROPOSAL" if proposed else "ALLOW_IMMEDIATE",
        "errors": [],
        "message": action().subject(params),
        "time": None,
    }
    for name, settings in chosen.items():
        outbox.prepare(
            effect=name,
            kind=kind,
            correlation_id=context.correlation_id,
            ref="",
            base=snapshot.commit,
            payload=payload,
            settings=settings.to_json(),
        )


@hookimpl
def proctor_on_event(event: Any) -> dict[str, str] | None:
    from proctor.core.events import ActionEvent

    if not isinstance(event, ActionEvent) or not event.store:
        return None
    from proctor.plugins.side_effects.settings import effects, outbox_path

    config: ProctorConfig | None
    if event.correlation_id in _configs:
        config = _configs.pop(event.correlation_id)
    else:
        config = read_config(event.store, event.ref)
    chosen = {n: s for n, s in effects(config).items() if s.wants(event.kind, event.action)}
    if not chosen and not os.path.isfile(outbox_path(event.store)):
        return None
    from proctor.plugins.side_effects.outbox import Outbox

    outbox = Outbox(event.store)
    flush(outbox, config, keep=event.correlation_id)
    if event.status not in ("applied", "proposed"):
        outbox.discard_prepared(event.correlation_id)
    rows = outbox.settle(
        event.correlation_id,
        kind=event.kind,
        commit=event.commit if event.status == "applied" else None,
        payload=payload_of(event),
        effects={n: s.to_json() for n, s in chosen.items()},
    )
    states = {row.effect: deliver_row(outbox, row, chosen.get(row.effect)) for row in rows}
    return states or None


def payload_of(event: Any) -> dict[str, Any]:
    """The JSON a receiver gets (plus ``effect`` and ``idempotency_key``)."""
    return {
        "kind": event.kind,
        "action": event.action,
        "status": event.status,
        "actor": event.actor,
        "commit": event.commit,
        "tags": list(event.tags),
        "proposal": event.proposal,
        "correlation_id": event.correlation_id,
        "decision": event.decision,
        "errors": list(event.errors),
        "message": event.message,
        "time": event.time.isoformat(),
    }


def read_config(git_dir: str, ref: str) -> ProctorConfig | None:
    """The committed config on ``ref`` (an event that did not pass before-commit)."""
    from proctor.core.config import parse_config_text
    from proctor.plugins.side_effects.outbox import _git

    if not ref:
        return None
    for filename in ("proctor.toml", "pyproject.toml"):
        text = _git(git_dir, "cat-file", "blob", f"{ref}:{filename}")
        if text is not None:
            config = parse_config_text(text, filename)
            if config is not None:
                return config
    return None


def _settings_for(row: Delivery, current: EffectSettings | None) -> EffectSettings:
    """The effect as configured now (a fixed URL applies to old rows), else as the row
    recorded it when the effect is no longer configured."""
    from proctor.plugins.side_effects.settings import EffectSettings

    return current if current is not None else EffectSettings.from_json(row.settings)


def _lease(settings: EffectSettings, attempts: int) -> float:
    return settings.timeout * attempts + settings.max_retry_after * max(attempts - 1, 0) + 30.0


def deliver_row(
    outbox: Outbox,
    row: Delivery,
    current: EffectSettings | None,
    *,
    attempts: int | None = None,
    states: tuple[str, ...] = ("pending",),
) -> str:
    """Deliver one row now and record how it went: ``delivered``, ``pending: why``
    (try later) or ``failed: why`` (refused)."""
    from proctor.plugins.side_effects.deliver import deliver

    settings = _settings_for(row, current)
    tries = attempts or settings.max_attempts
    claimed = outbox.claim(row.id, _lease(settings, tries), states=states)
    if claimed is None:
        return "pending: being delivered by another process"
    outcome = deliver(settings, claimed.payload, claimed.key or "", attempts=tries)
    if outcome.delivered:
        outbox.record(row.id, "delivered", attempts=outcome.attempts, error=None)
        state, label = "delivered", "delivered"
    elif outcome.transient:
        wait = min(BACKOFF * 2 ** min(claimed.attempts, 20), BACKOFF_MAX)
        outbox.record(
            row.id,
            "pending",
            attempts=outcome.attempts,
            error=outcome.error,
            next_at=time.time() + wait,
        )
        state, label = "pending", f"pending: {outcome.error}"
    else:
        outbox.record(row.id, "failed", attempts=outcome.attempts, error=outcome.error)
        state, label = "failed", f"failed: {outcome.error}"
    if not outcome.delivered:
        logger.info(
            "side effect %s for %s not delivered after %d attempt(s): %s",
            row.effect,
            claimed.key,
            outcome.attempts,
            outcome.error,
        )
    _announce(
        settings, claimed, outbox.git_dir, state, outcome.attempts, outcome.seconds, outcome.error
    )
    return label


def _announce(
    settings: EffectSettings,
    row: Delivery,
    git_dir: str,
    state: str,
    attempts: int,
    seconds: float,
    error: str | None,
) -> None:
    """A SideEffectEvent for observers (metrics) through the process's plugins."""
    from proctor.core.events import SideEffectEvent
    from proctor.plugins import plugin_manager

    plugin_manager().emit(
        SideEffectEvent(
            actor=str(row.payload.get("actor") or ""),
            correlation_id=row.correlation_id,
            store=git_dir,
            effect=row.effect,
            effect_type=settings.type,
            outcome=state,  # type: ignore[arg-type]
            key=row.key or "",
            attempts=attempts,
            seconds=seconds,
            action=str(row.payload.get("action") or ""),
            error=error,
        )
    )


def flush(outbox: Outbox, config: ProctorConfig | None, *, keep: str | None = None) -> None:
    """Settle what earlier processes left, and try each due pending row once; a
    receiver found down is not tried again for its other rows in this call."""
    from proctor.plugins.side_effects.settings import effects

    if not outbox.exists():
        return
    for note in outbox.recover(keep=keep):
        logger.info("outbox: %s", note)
    current = effects(config)
    down: set[str] = set()
    for row in outbox.rows(("pending",), due=True):
        if row.correlation_id == keep or row.effect in down:
            continue
        state = deliver_row(outbox, row, current.get(row.effect), attempts=1)
        if state.startswith("pending"):
            down.add(row.effect)


def retry(
    git_dir: str, config: ProctorConfig | None, ids: list[int] | None = None
) -> list[tuple[Delivery, str]]:
    """``proctor side-effects retry``: every pending or failed row (or those ``ids``),
    delivered now with the full retry policy. Returns each row with its new state."""
    from proctor.plugins.side_effects.outbox import Outbox
    from proctor.plugins.side_effects.settings import effects

    outbox = Outbox(git_dir)
    if not outbox.exists():
        return []
    for note in outbox.recover():
        logger.info("outbox: %s", note)
    current = effects(config)
    wanted = set(ids or ())
    out = []
    for row in outbox.rows(("pending", "failed")):
        if wanted and row.id not in wanted:
            continue
        state = deliver_row(outbox, row, current.get(row.effect), states=("pending", "failed"))
        out.append((row, state))
    return out


def listing(git_dir: str, states: tuple[str, ...] | None = None) -> list[Delivery]:
    """``proctor side-effects list``: the rows, oldest first (delivered ones included
    when asked)."""
    from proctor.plugins.side_effects.outbox import STATES, Outbox

    return Outbox(git_dir).rows(states or STATES)
