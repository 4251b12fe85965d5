"""Auto-rollback: a current release that keeps failing goes back to the release before it.

After every recorded run of the newest release, the last ``window`` runs of that
release (from the shared log, so every machine's runs count) are judged: with at least
``min-runs`` of them and a success rate below ``threshold``, proctor runs the
``procedure.rollback`` action to the previous release through ``Workspace.execute``,
so the engine and policy decide as for a person's rollback (applied, or a proposal
where policy requires one, or denied). It happens once per release: the claim is a row
keyed by (procedure, release) in the log, inserted before the action runs, so two
processes judging the same window at once roll back once between them, and a release
whose rollback was denied is not tried again on every later run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from proctor.core.errors import ProctorError, describe_error
from proctor.core.events import RollbackEvent
from proctor.runs.model import Rollback, RunLogError, RunRecord

if TYPE_CHECKING:
    from proctor.runs.resolve import ProcedureVersion
    from proctor.runs.service import RunService


async def judge(service: RunService, pv: ProcedureVersion, record: RunRecord) -> Rollback | None:
    """The rollback this run set off, or None (window not full, rate fine, done before)."""
    settings = service.settings.rollback
    assert pv.release is not None
    log = service.log
    try:
        statuses = await log.awindow(pv.name, pv.release, settings.window)
        if len(statuses) < settings.min_runs:
            return None
        rate = statuses.count("ok") / len(statuses)
        if rate >= settings.threshold:
            return None
        previous = pv.previous_release()
        rollback = Rollback(
            procedure=pv.name,
            release=pv.release,
            to=previous.label if previous else None,
            outcome="skipped" if previous is None else "started",
            success_rate=rate,
            runs=len(statuses),
        )
        claimed = await log.aclaim_rollback(
            {
                "procedure": pv.name,
                "release": pv.release,
                "to_release": rollback.to,
                "outcome": rollback.outcome,
                "success_rate": rate,
                "runs": len(statuses),
                "actor": record.actor,
                "at": time.time(),
            }
        )
    except RunLogError as exc:
        record.warnings.append(f"auto-rollback not judged: {exc}")
        return None
    if not claimed:
        return None
    if previous is not None:
        _roll_back(service, rollback, record)
        try:
            await log.afinish_rollback(
                pv.name,
                pv.release,
                outcome=rollback.outcome,
                commit=rollback.commit,
                proposal=rollback.proposal,
                errors=rollback.errors,
            )
        except RunLogError as exc:
            record.warnings.append(f"auto-rollback outcome not recorded: {exc}")
    event = RollbackEvent(
        actor=record.actor,
        correlation_id=record.run_id,
        store=service.store.common_dir,
        run_id=record.run_id,
        procedure=rollback.procedure,
        release=rollback.release,
        to=rollback.to,
        outcome=rollback.outcome,
        success_rate=rollback.success_rate,
        runs=rollback.runs,
        commit=rollback.commit,
        proposal=rollback.proposal,
        errors=tuple(rollback.errors),
    )
    for failure in service.plugins().emit(event):
        record.warnings.append(
            f"event handler of plugin {failure.plugin!r} failed: {failure.error}"
        )
    return rollback


def _roll_back(service: RunService, rollback: Rollback, record: RunRecord) -> None:
    """Run the action and copy its outcome onto ``rollback``."""
    try:
        result = service.execute_action(
            "procedure.rollback",
            {"name": rollback.procedure, "to": rollback.to},
            actor=record.actor,
            metadata={
                "auto_rollback": {
                    "release": rollback.release,
                    "success_rate": rollback.success_rate,
                    "runs": rollback.runs,
                    "run_id": record.run_id,
                }
            },
        )
    except ProctorError as exc:
        rollback.outcome = "failed"
        rollback.errors = describe_error(exc)
        return
    rollback.outcome = result.status
    rollback.commit = result.commit
    rollback.proposal = result.proposal
    rollback.errors = list(result.errors)
