"""Actions: the only way to change the store.

An action type declares typed params (a pydantic model), submission criteria, whether it
needs a proposal, and side effects; ``apply`` turns params into a :class:`Change` against
a snapshot of the store. The pipeline is fixed::

    parse params → criteria → policy (hook) → apply → code checks → one CAS commit
                                                  ↑ rebuilt, criteria re-run, on a lost race
                 → side effects (hook)

so a plugin's action gets optimistic locking, audit trailers and validators for free.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from proctor.core.errors import EXIT_FINDINGS, EXIT_OK, ProctorError, UsageError, ValidationFailed
from proctor.core.governance import Decision, coerce, strictest
from proctor.store.gitstore import Change, GitStore, Snapshot, short

if TYPE_CHECKING:
    from proctor.checks.validation import Capabilities, Finding
    from proctor.core.config import ProctorConfig
    from proctor.core.plugins import PluginManager

logger = logging.getLogger("proctor.actions")

Status = Literal["applied", "proposed", "denied", "failed"]


class Params(BaseModel):
    """Base for action params: unknown keys are refused, so a typo is an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionContext:
    """Who acts and why; ``snapshot`` is the store tip the change is being built on."""

    actor: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    metadata: dict[str, Any] = field(default_factory=dict)
    config: ProctorConfig | None = None
    snapshot: Snapshot | None = None
    proposal: str | None = None
    # Absolute paths of local files the caller read to build the params, with the bytes
    # read; lets the store accept a work-tree file edited in place and handed over.
    inputs: dict[str, bytes] = field(default_factory=dict)

    def tip(self) -> Snapshot:
        if self.snapshot is None:
            raise RuntimeError("no snapshot: apply() runs only inside the pipeline")
        return self.snapshot


@dataclass
class ActionResult:
    """What happened. ``to_json`` is the CLI's ``--json`` contract."""

    status: Status
    action: str
    commit: str | None = None
    proposal: str | None = None
    errors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    message: str = ""
    correlation_id: str = ""
    decision: str = Decision.ALLOW_IMMEDIATE.value
    findings: list[Finding] = field(default_factory=list)
    side_effects: dict[str, str] = field(default_factory=dict)
    attempts: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.status in ("applied", "proposed") else EXIT_FINDINGS

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": self.action,
            "commit": self.commit,
            "proposal": self.proposal,
            "errors": self.errors,
            "tags": self.tags,
            "message": self.message,
            "correlation_id": self.correlation_id,
            "decision": self.decision,
            "findings": [f.to_dict() for f in self.findings],
            "side_effects": self.side_effects,
        }


# -- submission criteria -------------------------------------------------------------------


class Criterion:
    """A check on params before anything is written. Returns error messages (empty: ok)."""

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        raise NotImplementedError


def _value(params: BaseModel, name: str) -> Any:
    return getattr(params, name, None)


@dataclass
class RequiredField(Criterion):
    """The field must be present and non-empty (pydantic alone accepts ``""``)."""

    name: str

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        v = _value(params, self.name)
        if v is None or (isinstance(v, (str, list, dict, tuple, set)) and len(v) == 0):
            return [f"{self.name} is required"]
        return []


@dataclass
class AllowedValues(Criterion):
    name: str
    values: Sequence[Any]

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        v = _value(params, self.name)
        if v is not None and v not in self.values:
            allowed = ", ".join(repr(x) for x in self.values)
            return [f"{self.name} must be one of {allowed}, got {v!r}"]
        return []


@dataclass
class MaxLength(Criterion):
    name: str
    limit: int

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        v = _value(params, self.name)
        if v is not None and len(v) > self.limit:
            return [f"{self.name} is {len(v)} long; the limit is {self.limit}"]
        return []


@dataclass
class CustomValidator(Criterion):
    """Any callable ``(params, context) -> str | list[str] | None`` (None or empty: ok)."""

    func: Callable[[Any, ActionContext], str | list[str] | None]
    label: str = ""

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        out = self.func(params, context)
        if not out:
            return []
        return [out] if isinstance(out, str) else list(out)


# -- action types --------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeToCheck:
    """A file an action writes that validators must pass, and its declared capabilities."""

    path: str
    text: str
    capabilities: Capabilities | None = None


class ActionType:
    """Subclass this to add an action; register the class with ``proctor_register_actions``.

    Set ``api_name`` (``"<domain>.<verb>"``), ``description``, ``Params`` (a
    :class:`Params` subclass) and optionally ``criteria``, ``requires_proposal`` and
    ``side_effects``; implement :meth:`apply`. ``apply`` must be a pure function of params
    and ``context.snapshot``: it may run again on a newer tip after a lost race.
    """

    api_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = Params
    criteria: ClassVar[Sequence[Criterion]] = ()
    requires_proposal: ClassVar[bool] = False
    side_effects: ClassVar[Sequence[str]] = ("log",)

    def apply(self, params: Any, context: ActionContext) -> Change:
        raise NotImplementedError

    def code_to_check(self, change: Change, context: ActionContext) -> list[CodeToCheck]:
        """Files of the change that validators check in procedure mode: every ``.py`` by
        default. Override to attach capabilities declared elsewhere in the change."""
        out = []
        for path, content in change.edits.items():
            if content is not None and path.endswith(".py"):
                out.append(CodeToCheck(path, content.decode("utf-8", "replace")))
        return out

    def subject(self, params: Any) -> str:
        """The commit subject line; override for something a reader of git log wants."""
        return self.api_name


def parse_params(action: type[ActionType], raw: dict[str, Any] | BaseModel) -> BaseModel:
    if isinstance(raw, action.Params):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    try:
        return action.Params.model_validate(raw)
    except PydanticValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ())) or "params"
            errors.append(f"{loc}: {err.get('msg', 'invalid')}")
        raise ValidationFailed(
            f"invalid params for {action.api_name}: " + "; ".join(errors), findings=errors
        ) from None


class ActionEngine:
    """Runs actions through the pipeline against one store branch."""

    def __init__(
        self, store: GitStore, ref: str, plugins: PluginManager, config: ProctorConfig, author: str
    ) -> None:
        self.store = store
        self.ref = ref
        self.plugins = plugins
        self.config = config
        self.author = author

    def actions(self) -> dict[str, type[ActionType]]:
        return self.plugins.actions()

    def get(self, api_name: str) -> type[ActionType]:
        actions = self.actions()
        if api_name not in actions:
            known = ", ".join(sorted(actions)) or "(none)"
            raise UsageError(f"unknown action {api_name!r}; known actions: {known}")
        return actions[api_name]

    # -- the pipeline --------------------------------------------------------------------

    def run(
        self, api_name: str, raw_params: dict[str, Any] | BaseModel, context: ActionContext
    ) -> ActionResult:
        action_cls = self.get(api_name)
        action = action_cls()
        context.config = context.config or self.config
        params = parse_params(action_cls, raw_params)
        result = ActionResult(
            status="failed", action=api_name, correlation_id=context.correlation_id
        )

        tip = self.store.read_ref(self.ref)
        context.snapshot = Snapshot(self.store, tip)
        self._criteria(action_cls, params, context)

        decision = self.decide(action_cls, params, context)
        result.decision = decision.value
        if decision is Decision.DENY:
            result.status = "denied"
            failed = context.metadata.get("policy_failures")
            result.errors = [
                f"policy plugin(s) {', '.join(failed)} failed, so {api_name} is denied"
                if failed
                else f"policy denies {api_name} for {context.actor}"
            ]
            logger.info("action %s denied by policy for %s", api_name, context.actor)
            return result
        if decision is Decision.REQUIRE_PROPOSAL:
            result.errors = [
                f"policy requires a proposal for {api_name}; proposals are not supported yet"
            ]
            return result

        validated_at = [tip]

        def build(current_tip: str | None) -> Change:
            snapshot = Snapshot(self.store, current_tip)
            context.snapshot = snapshot
            if current_tip != validated_at[0]:
                self._criteria(action_cls, params, context)
                validated_at[0] = current_tip
            change = action.apply(params, context)
            if not change.message:
                change.message = action.subject(params)
            self._check_code(action, change, context)
            change.consumed.update(self._consumed(context))
            return change

        trailers = {
            "Proctor-Action": api_name,
            "Proctor-Actor": context.actor,
            "Proctor-Correlation-Id": context.correlation_id,
            "Proctor-Policy": decision.value,
        }
        if context.proposal:
            trailers["Proctor-Proposal"] = context.proposal
        written = self.store.write(
            self.ref, build, author=self.author, trailers=trailers, reason=f"proctor: {api_name}"
        )
        result.status = "applied"
        result.commit = written.commit or (written.parent if written.tags else None)
        result.tags = written.tags
        result.attempts = written.attempts
        result.message = action.subject(params)
        logger.info("action %s applied as %s by %s", api_name, short(result.commit), context.actor)
        self._side_effects(action_cls, result, context)
        return result

    def _consumed(self, context: ActionContext) -> dict[str, bytes]:
        root = self.store.work_tree
        if not root or not context.inputs:
            return {}
        from pathlib import Path

        base = Path(root).resolve()
        out = {}
        for path, data in context.inputs.items():
            try:
                rel = Path(path).resolve().relative_to(base)
            except ValueError:
                continue
            out[rel.as_posix()] = data
        return out

    def _criteria(
        self, action_cls: type[ActionType], params: BaseModel, context: ActionContext
    ) -> None:
        errors: list[str] = []
        for criterion in action_cls.criteria:
            errors.extend(criterion.check(params, context))
        if errors:
            raise ValidationFailed(f"{action_cls.api_name}: " + "; ".join(errors), findings=errors)

    def decide(
        self, action_cls: type[ActionType], params: BaseModel, context: ActionContext
    ) -> Decision:
        """The strictest answer of every policy plugin. A policy plugin that raises
        counts as DENY: governance fails closed, never open."""
        answers: list[object] = []
        if action_cls.requires_proposal:
            answers.append(Decision.REQUIRE_PROPOSAL)
        failed: list[str] = []
        for name, answer in self.plugins.call_each(
            "proctor_policy", failures=failed, action=action_cls, params=params, context=context
        ):
            try:
                answers.append(coerce(answer))
            except ValueError:
                failed.append(name)
        if failed:
            logger.warning(
                "policy plugin(s) %s failed; denying %s", ", ".join(failed), action_cls.api_name
            )
            context.metadata["policy_failures"] = failed
            return Decision.DENY
        return strictest(answers)

    def _check_code(self, action: ActionType, change: Change, context: ActionContext) -> None:
        from proctor.checks.runner import check_text
        from proctor.checks.settings import check_settings

        validators = self.plugins.validators()
        settings = check_settings(self.config)
        problems: list[Finding] = []
        for item in action.code_to_check(change, context):
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
                f"{action.api_name}: the code does not pass the checks:\n  " + "\n  ".join(lines),
                findings=problems,
            )

    def _side_effects(
        self, action_cls: type[ActionType], result: ActionResult, context: ActionContext
    ) -> None:
        registered = self.plugins.side_effects()
        for name in action_cls.side_effects:
            effect = registered.get(name)
            if effect is None:
                result.side_effects[name] = "not registered"
                continue
            try:
                effect.run(result, context)
            except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
                result.side_effects[name] = f"error: {type(exc).__name__}: {exc}"
                logger.warning(
                    "side effect %s failed after %s: %s", name, short(result.commit), exc
                )
            else:
                result.side_effects[name] = "ok"


def describe_error(exc: ProctorError) -> list[str]:
    findings = getattr(exc, "findings", None)
    if findings:
        return [f.format_text() if hasattr(f, "format_text") else str(f) for f in findings]
    return [exc.message]
