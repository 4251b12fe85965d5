"""``proctor policy explain``: the decide step alone, on the tip, with what made it.

It parses the params as the action would and reads the policy from the committed config
on the store ref's tip, exactly as a run would, then asks every policy plugin; it skips
the criteria (explaining a delete of a procedure that is not there yet is a fair
question) and writes nothing, so it is safe to ask about any action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proctor.engine.actions import ActionContext, parse_params
from proctor.engine.pipeline import Plan

if TYPE_CHECKING:
    from proctor.engine.pipeline import ActionEngine


@dataclass(frozen=True)
class PolicyExplanation:
    """The decision for one action as one actor, and why."""

    action: str
    actor: str
    decision: str
    rule: str
    reason: str = ""
    approvals: int = 0
    approvers: tuple[tuple[str, ...], ...] = ()
    policy_commit: str | None = None
    roles: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    owners: dict[str, tuple[str, ...]] = field(default_factory=dict)
    failed_plugins: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "actor": self.actor,
            "decision": self.decision,
            "rule": self.rule,
            "reason": self.reason,
            "approvals": self.approvals,
            "approvers": [list(g) for g in self.approvers],
            "policy_commit": self.policy_commit,
            "roles": list(self.roles),
            "procedures": list(self.procedures),
            "owners": {k: list(v) for k, v in self.owners.items()},
            "failed_plugins": list(self.failed_plugins),
        }

    def lines(self) -> list[str]:
        """The text ``proctor policy explain`` prints."""
        out = [f"{self.action} by {self.actor}: {self.decision}"]
        out.append(f"  rule: {self.rule}")
        if self.reason:
            out.append(f"  reason: {self.reason}")
        if self.decision == "REQUIRE_PROPOSAL":
            who = (
                " and ".join("one of " + ", ".join(g) for g in self.approvers)
                if self.approvers
                else "anyone but the proposer"
            )
            out.append(f"  approvals: {self.approvals}, by {who}")
        if self.failed_plugins:
            out.append(f"  failed policy plugins: {', '.join(self.failed_plugins)}")
        out.append(f"  roles of {self.actor}: {', '.join(self.roles) or '(none)'}")
        for name, owners in self.owners.items():
            out.append(f"  owners of {name}: {', '.join(owners) or '(none)'}")
        out.append(f"  policy read from: {self.policy_commit or 'the work tree (no commit yet)'}")
        return out


def explain(
    engine: ActionEngine, api_name: str, raw_params: dict[str, Any], context: ActionContext
) -> PolicyExplanation:
    action_type = engine.get(api_name)
    params = parse_params(action_type, raw_params)
    base = engine.on_tip(context)
    plan = Plan(api_name, action_type, action_type(), params, context, base)
    verdict = engine.decide(plan)
    policy = (context.config or engine.config).governance
    procedures = tuple(action_type.procedures(params))
    return PolicyExplanation(
        action=api_name,
        actor=context.actor,
        decision=verdict.decision.value,
        rule=verdict.rule,
        reason=verdict.reason,
        approvals=verdict.approvals,
        approvers=verdict.approvers,
        policy_commit=base,
        roles=tuple(sorted(policy.roles_of(context.actor))),
        procedures=procedures,
        owners={name: policy.owners_of(name) for name in procedures},
        failed_plugins=verdict.failed_plugins,
    )
