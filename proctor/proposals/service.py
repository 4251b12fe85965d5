"""Recording a proposal, and settling one: the proposed action re-run on the current tip.

:class:`ProposalService` is the engine's :class:`~proctor.engine.pipeline.ProposalHandler`:
when policy answers REQUIRE_PROPOSAL it builds the change on the tip the criteria passed
on (code checks included, so a change that could never land is refused now, not after
review), hashes it, and commits the proposal file alone.

:func:`settle` is what approving the last needed approval (or ``proposal apply``) does,
inside that action's build on the current tip: the proposed action's criteria, policy and
code checks run again there, the change must still be the one approved (same content
hash) and no path it touches may have changed since the proposal's base. It answers with
the change to commit together with the proposal's new state, or with why it failed (the
proposal is then committed as ``failed`` and nothing else is written), or that the current
policy wants more approvals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proctor.core.errors import ProctorError, describe_error
from proctor.core.governance import Decision
from proctor.engine.actions import ActionContext, parse_params
from proctor.engine.pipeline import Plan, ProposalReceipt, ProposalRequest
from proctor.proposals.model import Proposal, content_hash, dump, load, new_id, now, path_of
from proctor.store.gitstore import Change, Snapshot, short

if TYPE_CHECKING:
    from proctor.core.policy import Policy
    from proctor.engine.pipeline import ActionEngine, Verdict

logger = logging.getLogger("proctor.proposals")


class ProposalService:
    """The proposal handler an engine gets when the proposal actions are registered."""

    def __init__(self, engine: ActionEngine) -> None:
        self.engine = engine

    def propose(self, request: ProposalRequest) -> ProposalReceipt:
        """One commit adding ``proposals/<id>.json``, pending at version 1."""
        engine = self.engine
        context = request.context
        action = request.action_type()
        plan = Plan(
            request.api_name, request.action_type, action, request.params, context, request.base
        )
        change = engine.apply(plan)  # the validators run now: refused code is not proposed
        verdict = request.verdict
        proposal = Proposal(
            id=new_id(),
            action=request.api_name,
            params=request.params.model_dump(mode="json"),
            created_by=context.actor,
            created_at=now(),
            base=request.base,
            content_hash=content_hash(change),
            required_approvals=max(1, verdict.approvals if verdict else 1),
            approvers=[list(g) for g in (verdict.approvers if verdict else ())],
            policy_commit=context.policy_commit,
            policy_rule=verdict.rule if verdict else "",
        )
        path = path_of(proposal.id)
        subject = action.subject(request.params)
        message = (
            f"Propose: {subject}\n\nProposal {proposal.id} ({request.api_name}) needs "
            f"{proposal.required_approvals} approval(s)."
        )
        trailers = {
            "Proctor-Action": "proposal.create",
            "Proctor-Actor": context.actor,
            "Proctor-Correlation-Id": context.correlation_id,
            "Proctor-Proposal": proposal.id,
            "Proctor-Proposed-Action": request.api_name,
            **(verdict.trailers() if verdict else {"Proctor-Policy": request.decision.value}),
        }
        written = engine.store.write(
            engine.ref,
            lambda _tip: Change(edits={path: dump(proposal)}, message=message),
            author=engine.author,
            trailers=trailers,
            reason="proctor: proposal.create",
        )
        logger.info("proposal %s recorded as %s", proposal.id, short(written.commit))
        announce(engine, proposal, "proposal.create", written.commit, context)
        return ProposalReceipt(proposal.id, written.commit)

    def applied_as_required(
        self, snapshot: Snapshot, proposal_id: str, verdict: Verdict
    ) -> str | None:
        """None when the proposal at ``snapshot`` is applied with as many approvals, of
        approvers qualified under this engine's policy, as ``verdict`` asks for (and as
        it recorded itself), each bound to its content; else why not."""
        try:
            proposal = load(snapshot, proposal_id)
        except ProctorError as exc:
            return exc.message
        if proposal.status != "applied":
            return f"proposal {proposal_id} is {proposal.status} there, not applied"
        config = self.engine.config
        needed = max(proposal.required_approvals, verdict.approvals)
        have = valid_approvals(proposal, config.governance, verdict.approvers)
        if have < needed:
            return (
                f"proposal {proposal_id} has {have} of the {needed} approval(s) the policy "
                "there requires"
            )
        return None


def announce(
    engine: ActionEngine,
    proposal: Proposal,
    transition: str,
    commit: str | None,
    context: ActionContext,
) -> None:
    """One :class:`~proctor.core.events.ProposalEvent` for a recorded transition; a
    handler that fails is logged and never undoes the commit."""
    from proctor.core.events import ProposalEvent

    error = (proposal.result or {}).get("error")
    event = ProposalEvent(
        actor=context.actor,
        correlation_id=context.correlation_id,
        proposal=proposal.id,
        status=proposal.status,
        version=proposal.version,
        action=proposal.action,
        transition=transition,
        commit=commit,
        error=None if error is None else str(error),
    )
    for failure in engine.plugins.emit(event):
        logger.warning(
            "event handler of plugin %s failed on %s: %s", failure.plugin, event.kind, failure.error
        )


# -- settling -------------------------------------------------------------------------------


@dataclass
class Settlement:
    """What settling gave: the change to apply, or why the proposal failed, or why it
    must wait (the current policy wants more approvals than it has)."""

    change: Change | None = None
    error: str | None = None
    waiting: str | None = None
    verdict: Verdict | None = None


def qualified(
    proposal: Proposal, actor: str, policy: Policy, extra: tuple[tuple[str, ...], ...] = ()
) -> bool:
    """Whether ``actor`` may review ``proposal``: never its proposer, and one of every
    approver group (the recorded ones and ``extra``), roles as the current policy says."""
    if actor == proposal.created_by:
        return False
    groups = [*proposal.approvers, *(list(g) for g in extra)]
    return all(policy.may_approve(actor, group) for group in groups)


def valid_approvals(
    proposal: Proposal, policy: Policy, extra: tuple[tuple[str, ...], ...] = ()
) -> int:
    return sum(1 for r in proposal.approvals() if qualified(proposal, r.actor, policy, extra))


def proposal_plan(proposal: Proposal, raw_params: Any, context: ActionContext) -> Plan:
    """The proposed action as its proposer would run it on ``context.snapshot`` (the
    current tip) with ``raw_params``, its criteria run: what settling a proposal and
    editing one both check and build. Raises what planning raises (an unknown action,
    bad params, failed criteria)."""
    engine: ActionEngine = context.engine
    snapshot = context.require_snapshot()
    action_type = engine.get(proposal.action)
    params = parse_params(action_type, raw_params)
    sub = ActionContext(
        actor=proposal.created_by,
        correlation_id=context.correlation_id,
        config=context.config,
        snapshot=snapshot,
        proposal=proposal.id,
        policy_commit=context.policy_commit,
        engine=engine,
    )
    plan = Plan(proposal.action, action_type, action_type(), params, sub, snapshot.commit)
    engine.criteria(plan)
    return plan


def settle(proposal: Proposal, context: ActionContext) -> Settlement:
    """Re-run the proposed action on ``context.snapshot`` (the current tip); never raises
    for what the tip does to it (that is a failed proposal), only for proctor's own bugs."""
    engine: ActionEngine = context.engine
    snapshot = context.require_snapshot()
    try:
        plan = proposal_plan(proposal, proposal.params, context)
    except ProctorError as exc:
        return Settlement(error="; ".join(describe_error(exc)))
    verdict = engine.decide(plan)
    if verdict.decision is Decision.DENY:
        reason = verdict.reason or verdict.rule
        return Settlement(error=f"the current policy denies {proposal.action} ({reason})")
    if verdict.decision is Decision.REQUIRE_PROPOSAL:
        policy = context.config.governance if context.config is not None else None
        needed = max(proposal.required_approvals, verdict.approvals)
        have = (
            valid_approvals(proposal, policy, verdict.approvers)
            if policy is not None
            else len(proposal.approvals())
        )
        if have < needed:
            return Settlement(
                waiting=f"{have} of the {needed} approval(s) the current policy requires",
                verdict=verdict,
            )
    try:
        change = engine.apply(plan)
    except ProctorError as exc:
        return Settlement(error="; ".join(describe_error(exc)), verdict=verdict)
    if proposal.base != snapshot.commit:
        before = Snapshot(engine.store, proposal.base)
        moved = [p for p in change.paths if before.entry(p) != snapshot.entry(p)]
        if moved:
            return Settlement(
                error=f"{', '.join(moved)} changed since the proposal's base "
                f"{short(proposal.base)}; propose the change again on the new tip",
                verdict=verdict,
            )
    if content_hash(change) != proposal.content_hash:
        return Settlement(
            error="on the current tip the change would differ from the content approved "
            f"({proposal.content_hash[:19]}...); propose it again",
            verdict=verdict,
        )
    return Settlement(change=change, verdict=verdict)
