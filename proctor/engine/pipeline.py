"""The pipeline every action runs through, as five named steps::

    plan     look the action up, parse its params, read the tip, run the criteria  -> Plan
    decide   ask every proctor_policy hook; the strictest answer wins              -> Verdict
             (an allowed action then asks proctor_before_commit: any veto denies)
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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from proctor.core.config import CONFIG_FILES, ProctorConfig, parse_config_text
from proctor.core.errors import (
    ConcurrencyError,
    PluginError,
    ProctorError,
    UsageError,
    ValidationFailed,
    describe_error,
)
from proctor.core.events import ActionEvent
from proctor.core.governance import Decision, Veto, coerce
from proctor.engine.actions import ActionContext, ActionResult, ActionType, Status, parse_params
from proctor.store.gitstore import Change, GitStore, Snapshot, short

if TYPE_CHECKING:
    from proctor.checks.validation import Finding
    from proctor.core.config import ProctorConfig
    from proctor.core.plugins import HookOutcome, PluginManager

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
    # The action the decision was made for when it is not the one that runs: what the
    # running action amounts to (``ActionType.governed_as``) answered more strictly.
    as_action: str | None = None
    vetoes: tuple[Veto, ...] = ()
    # What made the decision: the config rule (``policy."procedure.delete"``,
    # ``policy.rules[1] finance``), ``a policy plugin``, or ``default`` when none answered.
    rule: str = "default"
    reason: str = ""  # shown to the user on DENY
    approvals: int = 0  # what a REQUIRE_PROPOSAL needs: how many approvals...
    approvers: tuple[tuple[str, ...], ...] = ()  # ...each by one of every group listed
    policy_commit: str | None = None  # the commit the policy was read from

    def trailers(self) -> dict[str, str]:
        """The audit trailers naming this decision, for every commit it lets through."""
        return {
            "Proctor-Policy": self.decision.value,
            "Proctor-Policy-Commit": self.policy_commit or "none",
            "Proctor-Policy-Rule": trailer_text(self.rule),
        }


def trailer_text(text: str, limit: int = 200) -> str:
    """``text`` as one printable trailer line: a plugin's rule name may hold anything."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return (flat[: limit - 3] + "...") if len(flat) > limit else (flat or "-")


@dataclass(frozen=True)
class Publication:
    """What publish wrote: the commit (None when the change had no edits, e.g. a
    release that only creates its tag), the tags, and how many builds it took."""

    commit: str | None
    tags: tuple[str, ...]
    attempts: int
    backoff: float = 0.0
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
    verdict: Verdict | None = None


@dataclass(frozen=True)
class ProposalReceipt:
    """The proposal a handler recorded, and the commit that recorded it, if any."""

    proposal: str
    commit: str | None = None


class ProposalHandler(Protocol):
    """Records an action that policy sends to review; the governance work installs one."""

    def propose(self, request: ProposalRequest) -> ProposalReceipt: ...

    def applied_as_required(
        self, snapshot: Snapshot, proposal_id: str, verdict: Verdict
    ) -> str | None:
        """None when proposal ``proposal_id``, as ``snapshot`` holds it, was applied with
        the approvals ``verdict`` (this engine's policy) asks for; else why not. What a
        change made elsewhere through a proposal must show before it is taken here."""
        ...


@dataclass(frozen=True)
class _Answer:
    """A bare decision, with where it came from, combined like a ruling."""

    decision: Decision
    rule: str
    reason: str = ""
    approvals: int = 1
    approvers: tuple[str, ...] = ()


def combine(rulings: list[Any], policy_commit: str | None = None) -> Verdict:
    """The strictest of the rulings. Of several REQUIRE_PROPOSAL rulings the proposal
    needs the most approvals any asks for, each approval by one of every approver group."""
    if not rulings:
        return Verdict(Decision.ALLOW_IMMEDIATE, policy_commit=policy_commit)
    top = max(r.decision.rank for r in rulings)
    winners = [r for r in rulings if r.decision.rank == top]
    decision = winners[0].decision
    reasons = [r.reason for r in winners if r.reason]
    approvals = 0
    groups: tuple[tuple[str, ...], ...] = ()
    if decision is Decision.REQUIRE_PROPOSAL:
        approvals = max(max(1, int(r.approvals)) for r in winners)
        groups = tuple(dict.fromkeys(tuple(r.approvers) for r in winners if r.approvers))
    return Verdict(
        decision,
        rule="; ".join(dict.fromkeys(r.rule or "a policy plugin" for r in winners)),
        reason="; ".join(reasons),
        approvals=approvals,
        approvers=groups,
        policy_commit=policy_commit,
    )


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
        self,
        api_name: str,
        raw_params: dict[str, Any] | BaseModel,
        context: ActionContext,
        *,
        propose: bool = False,
    ) -> ActionResult:
        """Plan, decide, then publish, propose or deny; emit in every case.

        ``propose``: send the action to review even where policy would allow it at once
        (one approval by anyone but the proposer); a DENY still denies.
        """
        context.config = context.config or self.config
        decision: Decision | None = None
        try:
            plan = self.plan(api_name, raw_params, context)
            verdict = self.decide(plan)
            if propose and verdict.decision is Decision.ALLOW_IMMEDIATE:
                verdict = Verdict(
                    Decision.REQUIRE_PROPOSAL,
                    rule=f"{verdict.rule}; proposed by choice",
                    approvals=1,
                    policy_commit=verdict.policy_commit,
                )
            decision = verdict.decision
            if decision is Decision.DENY:
                result = self.denied(plan, verdict)
            elif decision is Decision.REQUIRE_PROPOSAL:
                result = self.propose(plan, verdict)
            else:
                verdict = self.before_commit(plan, verdict)
                if verdict.decision is Decision.DENY:
                    result = self.denied(plan, verdict)
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
        base = self.on_tip(context)
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

    # -- the committed policy ----------------------------------------------------------------

    def on_tip(self, context: ActionContext) -> str | None:
        """Point ``context`` at the tip: its snapshot, this engine, and the config
        committed there (where policy is read from; ``policy_commit`` names the commit).
        Returns the tip."""
        base = self.store.read_ref(self.ref)
        context.snapshot = Snapshot(self.store, base)
        context.engine = self
        committed = self.committed_config(context.snapshot)
        if committed is not None:
            context.config = committed
        context.policy_commit = base
        return base

    _config_cache: dict[tuple[str, str], ProctorConfig | None]

    def committed_config(self, snapshot: Snapshot) -> ProctorConfig | None:
        """The config committed at ``snapshot`` (an empty one when it has no file), which
        is where policy is read from; None on an unborn branch. Parsed once per blob."""
        if snapshot.commit is None:
            return None
        cache = self.__dict__.setdefault("_config_cache", {})
        for filename in CONFIG_FILES:
            entry = snapshot.entry(filename)
            if entry is None:
                continue
            key = (filename, entry[1])
            if key not in cache:
                data = snapshot.read(filename) or b""
                cache[key] = parse_config_text(data.decode("utf-8", "replace"), filename)
            found: ProctorConfig | None = cache[key]
            if found is not None:
                return found
        return ProctorConfig()

    def _config_blobs(self, commit: str | None) -> tuple[str | None, ...]:
        snapshot = Snapshot(self.store, commit)
        return tuple(None if (e := snapshot.entry(name)) is None else e[1] for name in CONFIG_FILES)

    # -- decide ------------------------------------------------------------------------------

    def decide(self, plan: Plan) -> Verdict:
        """The strictest answer of every policy plugin, pluggy's wrappers and ordering
        included, for the action and for each action it amounts to
        (``ActionType.governed_as``). Governance fails closed: a policy plugin that
        raises, answers with something that is not a decision, or a wrapper that fails,
        makes it DENY."""
        asked: list[tuple[type[ActionType], BaseModel]] = [(plan.action_type, plan.params)]
        asked += list(plan.action.governed_as(plan.params, plan.context))
        verdicts = [self._decide_one(plan, action_type, params) for action_type, params in asked]
        strictest_verdict = verdicts[0]
        for (action_type, _params), verdict in zip(asked[1:], verdicts[1:]):
            if verdict.decision.rank > strictest_verdict.decision.rank:
                strictest_verdict = replace(verdict, as_action=action_type.api_name)
        return strictest_verdict

    def _decide_one(self, plan: Plan, action_type: type[ActionType], params: BaseModel) -> Verdict:
        outcome = self.plugins.call(
            "proctor_policy", action=action_type, params=params, context=plan.context
        )
        if outcome.failures:
            failed = tuple(outcome.failed_plugins)
            logger.warning(
                "policy plugin(s) %s failed; denying %s", ", ".join(failed), plan.api_name
            )
            return Verdict(Decision.DENY, failed_plugins=failed)
        commit = plan.context.policy_commit
        rulings: list[Any] = []
        if action_type.requires_proposal:
            rulings.append(
                _Answer(Decision.REQUIRE_PROPOSAL, f"{action_type.api_name} requires a proposal")
            )
        bad: list[str] = []
        for answer in outcome.answers:
            try:
                decision = coerce(answer)
            except ValueError:
                bad.append(repr(answer))
                continue
            if decision is None:
                continue
            if getattr(answer, "decision", None) is decision:
                rulings.append(answer)
            else:
                rulings.append(_Answer(decision, "a policy plugin"))
        if bad:
            logger.warning("policy answered %s; denying %s", ", ".join(bad), plan.api_name)
            return Verdict(Decision.DENY, bad_answers=tuple(bad), policy_commit=commit)
        verdict = combine(rulings, commit)
        if verdict.decision is Decision.REQUIRE_PROPOSAL and action_type.review_step:
            # Moving a proposal is the review itself; it cannot wait for another one.
            verdict = Verdict(
                Decision.ALLOW_IMMEDIATE,
                rule=f"{verdict.rule} (a review step is not sent to review)",
                policy_commit=commit,
            )
        return verdict

    def _ask_before(self, hook: str, plan: Plan) -> tuple[Any, Verdict | None]:
        """Call ``hook`` (a before-commit or before-propose hook) about ``plan``; any
        implementation that raised makes the DENY returned beside the outcome (both
        hooks fail closed)."""
        outcome = self.plugins.call(
            hook, action=plan.action_type, params=plan.params, context=plan.context
        )
        if not outcome.failures:
            return outcome, None
        logger.warning(
            "%s plugin(s) %s failed; denying %s",
            hook.removeprefix("proctor_").replace("_", "-"),
            ", ".join(outcome.failed_plugins),
            plan.api_name,
        )
        failed = tuple(Veto(f"it failed ({f.error})", f.plugin) for f in outcome.failures)
        return outcome, Verdict(Decision.DENY, vetoes=failed)

    def before_commit(self, plan: Plan, verdict: Verdict) -> Verdict:
        """Ask every ``proctor_before_commit`` hook about an allowed action; a veto, a
        plugin that raises or one that answers something else turns it into DENY."""
        outcome, failed = self._ask_before("proctor_before_commit", plan)
        if failed is not None:
            return failed
        vetoes = tuple(a for a in outcome.answers if isinstance(a, Veto))
        if vetoes:
            logger.info(
                "action %s vetoed before commit by %s",
                plan.api_name,
                ", ".join(v.plugin or "?" for v in vetoes),
            )
            return Verdict(Decision.DENY, vetoes=vetoes)
        return verdict

    def before_propose(self, plan: Plan) -> Verdict | None:
        """Tell every ``proctor_before_propose`` hook the proposal's commit is coming;
        a plugin that raises makes it a DENY (returned), as before a commit."""
        return self._ask_before("proctor_before_propose", plan)[1]

    def denied(self, plan: Plan, verdict: Verdict) -> ActionResult:
        if verdict.vetoes:
            error = "; ".join(
                f"{plan.api_name} vetoed by plugin {v.plugin!r}: {v.reason}"
                if v.plugin
                else f"{plan.api_name} vetoed: {v.reason}"
                for v in verdict.vetoes
            )
        elif verdict.failed_plugins:
            names = ", ".join(verdict.failed_plugins)
            error = f"policy plugin(s) {names} failed, so {plan.api_name} is denied"
        elif verdict.bad_answers:
            answers = ", ".join(verdict.bad_answers)
            error = (
                f"policy answered {answers}, which is not a decision, so {plan.api_name} is denied"
            )
        elif verdict.as_action:
            error = (
                f"policy denies {verdict.as_action} for {plan.context.actor}, and "
                f"{plan.api_name} here amounts to a {verdict.as_action}"
            )
        else:
            error = f"policy denies {plan.api_name} for {plan.context.actor}"
            if verdict.reason:
                error += f": {verdict.reason}"
            if verdict.rule.startswith("policy"):
                error += f" ({verdict.rule})"
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
        failed = self.before_propose(plan)
        if failed is not None:
            return self.denied(plan, failed)
        receipt = self.proposals.propose(
            ProposalRequest(
                plan.api_name,
                plan.action_type,
                plan.params,
                plan.context,
                plan.base,
                verdict.decision,
                verdict,
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
        built: list[Change] = []
        policy_blobs = self._config_blobs(plan.base)

        def build(tip: str | None) -> Change:
            plan.context.snapshot = Snapshot(self.store, tip)
            if tip != checked_on[0]:
                if self._config_blobs(tip) != policy_blobs:
                    raise ConcurrencyError(
                        f"{plan.api_name}: the committed config (the policy) changed "
                        "while the action ran; run it again under the new policy",
                        expected=plan.base,
                        actual=tip,
                    )
                self.criteria(plan)
                checked_on[0] = tip
            change = self.apply(plan)
            built[:] = [change]
            return change

        context = plan.context
        trailers = {
            "Proctor-Action": plan.api_name,
            "Proctor-Actor": context.actor,
            "Proctor-Correlation-Id": context.correlation_id,
            **verdict.trailers(),
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
        commit = written.commit
        if commit is None and written.tags:
            # A change with tags only (a release): the commit is the one the tag names,
            # which need not be the tip.
            targets = [t.target for t in built[-1].tags if t.target] if built else []
            commit = targets[0] if targets else written.parent
        logger.info("action %s applied as %s by %s", plan.api_name, short(commit), context.actor)
        return Publication(
            commit,
            tuple(written.tags),
            written.attempts,
            written.backoff,
            tuple(written.warnings),
        )

    def applied(self, plan: Plan, verdict: Verdict, publication: Publication) -> ActionResult:
        result = self._result(plan, verdict, "applied", commit=publication.commit)
        result.tags = list(publication.tags)
        result.attempts = publication.attempts
        result.backoff = publication.backoff
        result.warnings.extend(publication.warnings)
        return result

    def check_code(self, plan: Plan, change: Change) -> None:
        """Every file ``code_to_check`` names must pass the registered validators in
        procedure mode; an error-severity finding refuses the action."""
        from proctor.checks.runner import check_text
        from proctor.checks.settings import check_settings

        validators = self.plugins.validators()
        # The committed config at the tip the change is built on, as the policy is.
        settings = check_settings(plan.context.config or self.config)
        problems: list[Finding] = []
        for item in plan.action.code_to_check(change, plan.context):
            findings = check_text(
                item.path,
                item.text,
                mode="procedure",
                settings=settings,
                capabilities=item.capabilities,
                validators=validators,
                tree=item.tree,
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
        outcome = self._announce(
            ActionEvent(
                actor=plan.context.actor,
                correlation_id=plan.context.correlation_id,
                store=self.store.common_dir,
                action=result.action,
                status=result.status,
                commit=result.commit,
                tags=tuple(result.tags),
                proposal=result.proposal,
                decision=result.decision,
                errors=tuple(result.errors),
                message=result.message,
                ref=self.ref,
                attempts=result.attempts,
                backoff=result.backoff,
            )
        )
        for answer in outcome.answers:
            if not isinstance(answer, Mapping):
                continue
            for name, state in answer.items():
                result.side_effects[str(name)] = str(state)
                if str(state).startswith("pending"):
                    result.warnings.append(
                        f"side effect {name} is {state}; the commit stands, and the next "
                        "write or `proctor side-effects retry` delivers it"
                    )
                elif str(state).startswith("failed"):
                    result.warnings.append(
                        f"side effect {name} {state}; the commit stands, and only "
                        "`proctor side-effects retry` sends it again"
                    )
        result.warnings.extend(
            f"event handler of plugin {f.plugin!r} failed: {f.error}" for f in outcome.failures
        )
        return result

    def emit_failure(
        self, api_name: str, context: ActionContext, decision: Decision | None, exc: Exception
    ) -> None:
        """Announce an ``action.failed`` event for an exception about to propagate. A
        handler failing here is logged (there is no result to carry it) and never hides
        the original exception, strict mode included."""
        conflict = exc if isinstance(exc, ConcurrencyError) else None
        event = ActionEvent(
            actor=context.actor,
            correlation_id=context.correlation_id,
            store=self.store.common_dir,
            action=api_name,
            status="failed",
            decision=None if decision is None else decision.value,
            errors=tuple(
                describe_error(exc)
                if isinstance(exc, ProctorError)
                else [f"{type(exc).__name__}: {exc}"]
            ),
            ref=self.ref,
            attempts=conflict.attempts if conflict else 0,
            backoff=conflict.backoff if conflict else 0.0,
            retries_exhausted=bool(conflict and conflict.exhausted),
            conflict_delta=self._conflict_delta(conflict) if conflict else None,
        )
        try:
            self._announce(event)
        except PluginError as plugin_error:
            logger.warning("event handler failed after %s failed: %s", api_name, plugin_error)

    def _announce(self, event: ActionEvent) -> HookOutcome:
        outcome = self.plugins.call("proctor_on_event", event=event)
        for f in outcome.failures:
            logger.warning(
                "event handler of plugin %s failed on %s: %s", f.plugin, event.kind, f.error
            )
        return outcome

    def _conflict_delta(self, exc: ConcurrencyError) -> int | None:
        """How far the other writer got past the version this write expected: the
        difference of two proposal versions, or the commits between two tips."""
        expected, actual = exc.expected, exc.actual
        if expected is not None and actual is not None and expected.isdigit() and actual.isdigit():
            return int(actual) - int(expected)
        if actual is None or expected == actual:
            return 0 if actual is not None else None
        span = actual if expected is None else f"{expected}..{actual}"
        try:
            proc = self.store.git("rev-list", "--count", span, check=False)
        except (OSError, ProctorError):
            return None
        text = proc.stdout.decode("ascii", "replace").strip()
        return int(text) if proc.returncode == 0 and text.isdigit() else None

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
