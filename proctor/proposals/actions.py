"""The proposal transitions as actions (``proposal.approve``, ``.reject``, ``.withdraw``,
``.apply``, ``.edit``), so each is one commit through the same pipeline as any other
action: policy decides on it (it may DENY; a review step is never sent to review), its
commit carries the audit trailers, and a lost race is a ConcurrencyError.

Each reads the proposal on the tip it is built on. ``version`` in the params is the
version the caller acted on: when the file is at another one, someone moved it first and
the transition is a ConcurrencyError (exit 3) instead of acting on what the caller did
not see. The state machine::

    pending --approve (last needed)--> applied | failed   (one commit with the change)
    pending --approve--> pending (version + 1)
    pending --edit--> pending (new content hash: earlier approvals no longer count)
    pending --reject--> rejected      pending --withdraw--> withdrawn
    pending --apply (approvals complete)--> applied | failed

``approved`` is in the model's vocabulary but never stored: reaching the approvals
applies the change in the same commit.
"""

from __future__ import annotations

from typing import Any, ClassVar

from proctor.core.errors import ConcurrencyError, UsageError, ValidationFailed
from proctor.core.governance import Decision
from proctor.engine.actions import ActionContext, ActionType, Params
from proctor.engine.criteria import RequiredField
from proctor.engine.pipeline import trailer_text
from proctor.proposals.model import Proposal, Review, content_hash, dump, load, now, path_of
from proctor.proposals.service import (
    announce,
    proposal_plan,
    qualified,
    settle,
    valid_approvals,
)
from proctor.store.gitstore import Change, Snapshot

__all__ = [
    "PROPOSAL_ACTIONS",
    "ApplyProposal",
    "ApproveProposal",
    "EditProposal",
    "RejectProposal",
    "WithdrawProposal",
]


class TransitionParams(Params):
    id: str
    version: int | None = None
    comment: str = ""


class EditParams(TransitionParams):
    params: dict[str, Any]


class AnnounceTransition:
    """The side effect every transition names: after its commit, one ProposalEvent with
    the proposal as that commit holds it (so metrics and webhooks see every move)."""

    name = "proposal-event"

    def run(self, result: Any, context: ActionContext) -> None:
        if result.commit is None or context.engine is None or context.proposal is None:
            return
        engine = context.engine
        proposal = load(Snapshot(engine.store, result.commit), context.proposal)
        announce(engine, proposal, result.action, result.commit, context)


class _Transition(ActionType):
    review_step = True
    side_effects = ("proposal-event",)
    verb: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = TransitionParams

    def subject(self, params: TransitionParams) -> str:
        return f"{self.verb.capitalize()} proposal {params.id}"

    @classmethod
    def procedures(cls, params: Any) -> tuple[str, ...]:
        return ()

    def load(self, params: TransitionParams, context: ActionContext) -> Proposal:
        proposal = load(context.require_snapshot(), params.id)
        context.proposal = proposal.id  # for the side effect that announces the move
        if params.version is not None and proposal.version != params.version:
            raise ConcurrencyError(
                f"proposal {proposal.id} is at version {proposal.version} ({proposal.status}), "
                f"not {params.version}: it changed since it was read; look again "
                f"(`proctor proposal show {proposal.id}`)",
                expected=f"version {params.version}",
                actual=f"version {proposal.version}",
            )
        if proposal.status != "pending":
            raise UsageError(
                f"proposal {proposal.id} is {proposal.status}; only a pending proposal can be "
                f"{self.verb}"
            )
        return proposal

    def record(
        self, proposal: Proposal, context: ActionContext, message: str, change: Change | None = None
    ) -> Change:
        """The proposal at its next version, with ``change`` (the proposed edit) if any."""
        proposal.version += 1
        proposal.updated_at = now()
        out = change or Change()
        out.edits[path_of(proposal.id)] = dump(proposal)
        out.message = message
        out.trailers.update(
            {
                "Proctor-Proposal": proposal.id,
                "Proctor-Proposed-Action": proposal.action,
                "Proctor-Proposal-Status": proposal.status,
                "Proctor-Proposal-Version": str(proposal.version),
            }
        )
        return out

    def conclude(self, proposal: Proposal, context: ActionContext, by: str) -> Change | None:
        """Settle on the current tip: the change plus ``applied``, or ``failed`` alone;
        None when the current policy still wants more approvals."""
        outcome = settle(proposal, context)
        tip = context.require_snapshot().commit
        if outcome.waiting:
            return None
        if outcome.error:
            proposal.status = "failed"
            proposal.result = {"error": outcome.error, "tip": tip}
            return self.record(
                proposal, context, f"Proposal {proposal.id} failed\n\n{outcome.error}"
            )
        assert outcome.change is not None and outcome.verdict is not None
        change = outcome.change
        subject = change.message.splitlines()[0] if change.message else proposal.action
        proposal.status = "applied"
        proposal.result = {"applied_on": tip, "by": by}
        change.trailers.update(
            {
                "Proctor-Applied-Policy": outcome.verdict.decision.value,
                "Proctor-Applied-Policy-Rule": trailer_text(outcome.verdict.rule),
                "Proctor-Proposed-By": proposal.created_by,
            }
        )
        body = change.message.partition("\n")[2].strip()
        message = f"{subject}\n\nApplies proposal {proposal.id}, {self.verb} by {by}."
        if body:
            message += f"\n\n{body}"
        return self.record(proposal, context, message, change)


class ApproveProposal(_Transition):
    api_name = "proposal.approve"
    description = "Approve a pending proposal; the last needed approval applies it"
    verb = "approved"

    def subject(self, params: TransitionParams) -> str:
        return f"Approve proposal {params.id}"

    def apply(self, params: TransitionParams, context: ActionContext) -> Change:
        proposal = self.load(params, context)
        actor = context.actor
        if actor == proposal.created_by:
            raise UsageError(f"{actor} proposed {proposal.id} and cannot approve it")
        policy = _policy(context)
        if not qualified(proposal, actor, policy):
            raise UsageError(
                f"{actor} may not approve {proposal.id}: its approvers are "
                + _describe_groups(proposal.approvers)
            )
        if any(r.actor == actor for r in proposal.approvals()):
            raise UsageError(f"{actor} has already approved {proposal.id}")
        proposal.reviews.append(
            Review(
                actor=actor,
                decision="approve",
                comment=params.comment,
                at=now(),
                content_hash=proposal.content_hash,
            )
        )
        if valid_approvals(proposal, policy) >= proposal.required_approvals:
            concluded = self.conclude(proposal, context, actor)
            if concluded is not None:
                return concluded
        have = valid_approvals(proposal, policy)
        return self.record(
            proposal,
            context,
            f"Approve proposal {proposal.id} ({have} of {proposal.required_approvals})",
        )


class RejectProposal(_Transition):
    api_name = "proposal.reject"
    description = "Reject a pending proposal, with a reason"
    verb = "rejected"
    criteria = (RequiredField("comment"),)

    def apply(self, params: TransitionParams, context: ActionContext) -> Change:
        proposal = self.load(params, context)
        actor = context.actor
        if actor == proposal.created_by:
            raise UsageError(f"{actor} proposed {proposal.id}; withdraw it instead of rejecting")
        if not qualified(proposal, actor, _policy(context)):
            raise UsageError(
                f"{actor} may not reject {proposal.id}: its approvers are "
                + _describe_groups(proposal.approvers)
            )
        proposal.reviews.append(
            Review(
                actor=actor,
                decision="reject",
                comment=params.comment,
                at=now(),
                content_hash=proposal.content_hash,
            )
        )
        proposal.status = "rejected"
        proposal.result = {"error": f"rejected by {actor}: {params.comment}"}
        return self.record(proposal, context, f"Reject proposal {proposal.id}\n\n{params.comment}")


class WithdrawProposal(_Transition):
    api_name = "proposal.withdraw"
    description = "Withdraw your own pending proposal"
    verb = "withdrawn"

    def apply(self, params: TransitionParams, context: ActionContext) -> Change:
        proposal = self.load(params, context)
        if context.actor != proposal.created_by:
            raise UsageError(
                f"only its proposer ({proposal.created_by}) can withdraw {proposal.id}"
            )
        proposal.status = "withdrawn"
        proposal.result = {"error": f"withdrawn by {context.actor}"}
        return self.record(proposal, context, f"Withdraw proposal {proposal.id}")


class ApplyProposal(_Transition):
    api_name = "proposal.apply"
    description = "Apply a pending proposal whose approvals are complete"
    verb = "applied"

    def apply(self, params: TransitionParams, context: ActionContext) -> Change:
        proposal = self.load(params, context)
        have = valid_approvals(proposal, _policy(context))
        if have < proposal.required_approvals:
            raise UsageError(
                f"proposal {proposal.id} has {have} of the {proposal.required_approvals} "
                "approval(s) it needs"
            )
        concluded = self.conclude(proposal, context, context.actor)
        if concluded is None:
            raise UsageError(
                f"proposal {proposal.id}: the current policy requires more approvals than "
                f"the {have} it has"
            )
        return concluded


class EditProposal(_Transition):
    api_name = "proposal.edit"
    description = "Replace the params of your pending proposal (earlier approvals lapse)"
    verb = "edited"
    Params = EditParams

    def apply(self, params: EditParams, context: ActionContext) -> Change:
        proposal = self.load(params, context)
        if context.actor != proposal.created_by:
            raise UsageError(f"only its proposer ({proposal.created_by}) can edit {proposal.id}")
        engine = context.engine
        snapshot = context.require_snapshot()
        plan = proposal_plan(proposal, params.params, context)
        new_params = plan.params
        verdict = engine.decide(plan)
        if verdict.decision is Decision.DENY:
            raise ValidationFailed(
                f"policy denies {proposal.action} as edited ({verdict.reason or verdict.rule})"
            )
        change = engine.apply(plan)
        proposal.params = new_params.model_dump(mode="json")
        proposal.base = snapshot.commit
        proposal.content_hash = content_hash(change)
        if verdict.decision is Decision.REQUIRE_PROPOSAL:
            proposal.required_approvals = max(1, verdict.approvals)
            proposal.approvers = [list(g) for g in verdict.approvers]
            proposal.policy_rule = verdict.rule
        proposal.policy_commit = context.policy_commit
        message = f"Edit proposal {proposal.id}"
        if params.comment:
            message += f"\n\n{params.comment}"
        return self.record(proposal, context, message)


def _policy(context: ActionContext) -> Any:
    from proctor.core.policy import Policy

    return context.config.governance if context.config is not None else Policy()


def _describe_groups(groups: list[list[str]]) -> str:
    if not groups:
        return "anyone but the proposer"
    return " and ".join("one of " + ", ".join(g) for g in groups)


PROPOSAL_ACTIONS: tuple[type[ActionType], ...] = (
    ApproveProposal,
    RejectProposal,
    WithdrawProposal,
    ApplyProposal,
    EditProposal,
)
