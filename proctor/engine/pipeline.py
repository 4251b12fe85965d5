"""The pipeline every action runs through, as five named steps::

    plan     look the action up, parse its params, read the tip, run the criteria  -> Plan
    decide   ask every proctor_policy hook; the strictest answer wins              -> Verdict
    apply    params -> Change on a snapshot, then the code checks                  -> Change
    publish  one compare-and-swap commit; on a lost race apply runs again on the
             new tip (criteria re-run) unless a touched path changed               -> Publication
    emit     the action's own side effects, then one ActionEvent for every outcome -> ActionResult

Each step takes the typed value the previous one produced; nothing travels through
``ActionContext.metadata``, which is the caller's and which the engine never reads.
A DENY verdict ends the run after ``decide``; REQUIRE_PROPOSAL hands the plan to the
installed :class:`ProposalHandler` (the seam proposals fill) or, with none installed,
fails saying that proposals are not enabled. Either way ``emit`` still runs.

Results and exceptions: applied, proposed, denied and "proposal needed but not enabled"
are results (:class:`~proctor.engine.actions.ActionResult`). Bad input (an unknown action,
bad params, failed criteria or code checks) raises ValidationFailed / UsageError, a lost
race on a touched path ConcurrencyError, a dirty work-tree path DirtyWorkTreeError, git
failing StoreError; nothing is written in any of those cases, and an ``action.failed``
event is announced before the exception (any exception) propagates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from proctor.core.errors import (
    PluginError,
    ProctorError,
    UsageError,
    ValidationFailed,
    describe_error,
)
from proctor.core.events import ActionEvent
from proctor.core.governance import Decision, coerce, strictest
from proctor.engine.actions import ActionContext, ActionResult, ActionType, Status, parse_params
from proctor.store.gitstore import Change, GitStore, Snapshot, short

if TYPE_CHECKING:
    from proctor.checks.validation import Finding
    from proctor.core.config import ProctorConfig
    from proctor.core.plugins import HookFailure, PluginManager

logger = logging.getLogger("proctor.actions")


# -- the values passed between steps ---------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What will run: the action, its validated params, who asks, and the tip the
    criteria passed on (``base``; None for an unborn branch)."""

    api_name: str
    action_type: type[ActionType]
    action: ActionType
    params: BaseModel
    context: ActionContext
    base: str | None


@dataclass(frozen=True)
class Verdict:
    """The policy decision, and why it is DENY when governance failed closed.

    ``failed_plugins`` names policy plugins that raised (or answered something that is
    not a decision); ``bad_answers`` holds non-decisions a policy wrapper returned.
    Only the engine builds a Verdict, from the hook call itself.
    """

    decision: Decision
    failed_plugins: tuple[str, ...] = ()
    bad_answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Publication:
    """What publish wrote: the commit (None when the change had no edits, e.g. a
    release that only creates its tag), the tags, and how many builds it took."""

    commit: str | None
    tags: tuple[str, ...]
    attempts: int
    # What did not follow once the refs moved (a work-tree sync that failed, say): the
    # write is applied all the same, and the warning names the repair.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProposalRequest:
    """What a proposal handler gets: the action that needs review, on which tip."""

    api_name: str
    action_type: type[ActionType]
    params: BaseModel
    context: ActionContext
    base: str | None
    decision: Decision


@dataclass(frozen=True)
class ProposalReceipt:
    """The proposal a handler recorded, and the commit that recorded it, if any."""

    proposal: str
    commit: str | None = None


class ProposalHandler(Protocol):
    """Records an action that policy sends to review; the governance work installs one."""

    def propose(self, request: ProposalRequest) -> ProposalReceipt: ...


# -- the engine -----------------------------------------------------------------------------


class ActionEngine:
    """Runs actions through the pipeline against one store branch."""

    def __init__(
        self,
        store: GitStore,
        ref: str,
        plugins: PluginManager,
        config: ProctorConfig,
        author: str | None,
        proposals: ProposalHandler | None = None,
    ) -> None:
        self.store = store
        self.ref = ref
        self.plugins = plugins
        self.config = config
        self.author = author
        self.proposals = proposals

    def actions(self) -> dict[str, type[ActionType]]:
        return self.plugins.actions()

    def get(self, api_name: str) -> type[ActionType]:
        actions = self.actions()
        if api_name not in actions:
            known = ", ".join(sorted(actions)) or "(none)"
            raise UsageError(f"unknown action {api_name!r}; known actions: {known}")
        return actions[api_name]

    def run(
        self, api_name: str, raw_params: dict[str, Any] | BaseModel, context: ActionContext
    ) -> ActionResult:
        """Plan, decide, then publish, propose or deny; emit in every case."""
        context.config = context.config or self.config
        decision: Decision | None = None
        try:
            plan = self.plan(api_name, raw_params, context)
            verdict = self.decide(plan)
            decision = verdict.decision
            if decision is Decision.DENY:
                result = self.denied(plan, verdict)
            elif decision is Decision.REQUIRE_PROPOSAL:
                result = self.propose(plan, verdict)
            else:
                result = self.applied(plan, verdict, self.publish(plan, verdict))
        except Exception as exc:
            # Any exception is an outcome too (an action's own bug included): announce it.
            self.emit_failure(api_name, context, decision, exc)
            raise
        return self.emit(plan, result)

    # -- plan --------------------------------------------------------------------------------

    def plan(
        self, api_name: str, raw_params: dict[str, Any] | BaseModel, context: ActionContext
    ) -> Plan:
        action_type = self.get(api_name)
        params = parse_params(action_type, raw_params)
        base = self.store.read_ref(self.ref)
        context.snapshot = Snapshot(self.store, base)
        plan = Plan(api_name, action_type, action_type(), params, context, base)
        self.criteria(plan)
        return plan

    def criteria(self, plan: Plan) -> None:
        """Every criterion of the action, on ``plan.context.snapshot``."""
        errors: list[str] = []
        for criterion in plan.action_type.criteria:
            errors.extend(criterion.check(plan.params, plan.context))
        if errors:
            raise ValidationFailed(f"{plan.api_name}: " + "; ".join(errors), findings=errors)

    # -- decide ------------------------------------------------------------------------------

    def decide(self, plan: Plan) -> Verdict:
        """The strictest answer of every policy plugin, pluggy's wrappers and ordering
        included. Governance fails closed: a policy plugin that raises, answers with
        something that is not a decision, or a wrapper that fails, makes it DENY."""
        outcome = self.plugins.call(
            "proctor_policy", action=plan.action_type, params=plan.params, context=plan.context
        )
        if outcome.failures:
            failed = tuple(outcome.failed_plugins)
            logger.warning(
                "policy plugin(s) %s failed; denying %s", ", ".join(failed), plan.api_name
            )
            return Verdict(Decision.DENY, failed_plugins=failed)
        answers: list[Decision | None] = []
        if plan.action_type.requires_proposal:
            answers.append(Decision.REQUIRE_PROPOSAL)
        bad: list[str] = []
        for answer in outcome.answers:
            try:
                answers.append(coerce(answer))
            except ValueError:
                bad.append(repr(answer))
        if bad:
            logger.warning("policy answered %s; denying %s", ", ".join(bad), plan.api_name)
            return Verdict(Decision.DENY, bad_answers=tuple(bad))
        return Verdict(strictest(answers))

    def denied(self, plan: Plan, verdict: Verdict) -> ActionResult:
        if verdict.failed_plugins:
            names = ", ".join(verdict.failed_plugins)
            error = f"policy plugin(s) {names} failed, so {plan.api_name} is denied"
        elif verdict.bad_answers:
            answers = ", ".join(verdict.bad_answers)
            error = (
                f"policy answered {answers}, which is not a decision, so {plan.api_name} is denied"
            )
        else:
            error = f"policy denies {plan.api_name} for {plan.context.actor}"
        logger.info("action %s denied by policy for %s", plan.api_name, plan.context.actor)
        return self._result(plan, verdict, "denied", errors=[error])

    def propose(self, plan: Plan, verdict: Verdict) -> ActionResult:
        """Hand the plan to the proposal handler; without one, say proposals are off."""
        if self.proposals is None:
            error = (
                f"policy requires a proposal for {plan.api_name}, "
                "and proposals are not enabled in this store"
            )
            return self._result(plan, verdict, "failed", errors=[error])
        receipt = self.proposals.propose(
            ProposalRequest(
                plan.api_name,
                plan.action_type,
                plan.params,
                plan.context,
                plan.base,
                verdict.decision,
            )
        )
        logger.info(
            "action %s proposed as %s by %s", plan.api_name, receipt.proposal, plan.context.actor
        )
        return self._result(
            plan, verdict, "proposed", proposal=receipt.proposal, commit=receipt.commit
        )

    # -- apply and publish -------------------------------------------------------------------

    def apply(self, plan: Plan) -> Change:
        """The action's change on ``plan.context.snapshot``, its code checked."""
        context = plan.context
        change = plan.action.apply(plan.params, context)
        if not change.message:
            change.message = plan.action.subject(plan.params)
        self.check_code(plan, change)
        change.consumed.update(self._consumed(context))
        return change

    def publish(self, plan: Plan, verdict: Verdict) -> Publication:
        """One CAS commit with the audit trailers. After a lost race the change is built
        again on the new tip, with the criteria re-run there first."""
        checked_on = [plan.base]

        def build(tip: str | None) -> Change:
            plan.context.snapshot = Snapshot(self.store, tip)
            if tip != checked_on[0]:
                self.criteria(plan)
                checked_on[0] = tip
            return self.apply(plan)

        context = plan.context
        trailers = {
            "Proctor-Action": plan.api_name,
            "Proctor-Actor": context.actor,
            "Proctor-Correlation-Id": context.correlation_id,
            "Proctor-Policy": verdict.decision.value,
        }
        if context.proposal:
            trailers["Proctor-Proposal"] = context.proposal
        written = self.store.write(
            self.ref,
            build,
            author=self.author,
            trailers=trailers,
            reason=f"proctor: {plan.api_name}",
        )
        commit = written.commit or (written.parent if written.tags else None)
        logger.info("action %s applied as %s by %s", plan.api_name, short(commit), context.actor)
        return Publication(commit, tuple(written.tags), written.attempts, tuple(written.warnings))

    def applied(self, plan: Plan, verdict: Verdict, publication: Publication) -> ActionResult:
        result = self._result(plan, verdict, "applied", commit=publication.commit)
        result.tags = list(publication.tags)
        result.attempts = publication.attempts
        result.warnings.extend(publication.warnings)
        return result

    def check_code(self, plan: Plan, change: Change) -> None:
        """Every file ``code_to_check`` names must pass the registered validators in
        procedure mode; an error-severity finding refuses the action."""
        from proctor.checks.runner import check_text
        from proctor.checks.settings import check_settings

        validators = self.plugins.validators()
        settings = check_settings(self.config)
        problems: list[Finding] = []
        for item in plan.action.code_to_check(change, plan.context):
            findings = check_text(
                item.path,
                item.text,
                mode="procedure",
                settings=settings,
                capabilities=item.capabilities,
                validators=validators,
            )
            problems.extend(f for f in findings if f.severity == "error")
        if problems:
            lines = [f.format_text() for f in problems]
            raise ValidationFailed(
                f"{plan.api_name}: the code does not pass the checks:\n  " + "\n  ".join(lines),
                findings=problems,
            )

    def _consumed(self, context: ActionContext) -> dict[str, bytes]:
        root = self.store.work_tree
        if not root or not context.inputs:
            return {}
        base = Path(root).resolve()
        out = {}
        for path, data in context.inputs.items():
            try:
                rel = Path(path).resolve().relative_to(base)
            except ValueError:
                continue
            out[rel.as_posix()] = data
        return out

    # -- emit --------------------------------------------------------------------------------

    def emit(self, plan: Plan, result: ActionResult) -> ActionResult:
        """The action's own side effects (after a commit only), then the event. Neither
        can change the outcome: a failure becomes a warning on the result."""
        if result.status == "applied":
            self._side_effects(plan, result)
        failures = self._announce(
            ActionEvent(
                actor=plan.context.actor,
                correlation_id=plan.context.correlation_id,
                action=result.action,
                status=result.status,
                commit=result.commit,
                tags=tuple(result.tags),
                proposal=result.proposal,
                decision=result.decision,
                errors=tuple(result.errors),
                message=result.message,
            )
        )
        result.warnings.extend(
            f"event handler of plugin {f.plugin!r} failed: {f.error}" for f in failures
        )
        return result

    def emit_failure(
        self, api_name: str, context: ActionContext, decision: Decision | None, exc: Exception
    ) -> None:
        """Announce an ``action.failed`` event for an exception about to propagate. A
        handler failing here is logged (there is no result to carry it) and never hides
        the original exception, strict mode included."""
        event = ActionEvent(
            actor=context.actor,
            correlation_id=context.correlation_id,
            action=api_name,
            status="failed",
            decision=None if decision is None else decision.value,
            errors=tuple(
                describe_error(exc)
                if isinstance(exc, ProctorError)
                else [f"{type(exc).__name__}: {exc}"]
            ),
        )
        try:
            self._announce(event)
        except PluginError as plugin_error:
            logger.warning("event handler failed after %s failed: %s", api_name, plugin_error)

    def _announce(self, event: ActionEvent) -> tuple[HookFailure, ...]:
        failures = self.plugins.emit(event)
        for f in failures:
            logger.warning(
                "event handler of plugin %s failed on %s: %s", f.plugin, event.kind, f.error
            )
        return failures

    def _side_effects(self, plan: Plan, result: ActionResult) -> None:
        registered = self.plugins.side_effects()
        for name in plan.action_type.side_effects:
            effect = registered.get(name)
            if effect is None:
                result.side_effects[name] = "not registered"
                continue
            try:
                effect.run(result, plan.context)
            except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
                result.side_effects[name] = f"error: {type(exc).__name__}: {exc}"
                logger.warning(
                    "side effect %s failed after %s: %s", name, short(result.commit), exc
                )
            else:
                result.side_effects[name] = "ok"

    # -- results -----------------------------------------------------------------------------

    @staticmethod
    def _result(
        plan: Plan,
        verdict: Verdict,
        status: Status,
        *,
        errors: list[str] | None = None,
        commit: str | None = None,
        proposal: str | None = None,
    ) -> ActionResult:
        return ActionResult(
            status=status,
            action=plan.api_name,
            commit=commit,
            proposal=proposal,
            errors=list(errors or []),
            message=plan.action.subject(plan.params) if status in ("applied", "proposed") else "",
            correlation_id=plan.context.correlation_id,
            decision=verdict.decision.value,
        )
