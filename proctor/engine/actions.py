"""Actions: the only way to change the store.

An action type declares typed params (a pydantic model), submission criteria
(:mod:`proctor.engine.criteria`), whether it needs a proposal, and the side effects that
belong to it; ``apply`` turns params into a :class:`Change` against a snapshot of the
store. The pipeline that runs it (:mod:`proctor.engine.pipeline`) is the same for every
action, so a plugin's action gets optimistic locking, policy, audit trailers, code
checks and events for free.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from proctor.core.errors import EXIT_FINDINGS, EXIT_OK, ValidationFailed, describe_error
from proctor.core.governance import Decision
from proctor.engine.criteria import (
    AllowedValues,
    Criterion,
    CustomCriterion,
    MaxBytes,
    MaxLength,
    RequiredField,
)
from proctor.store.gitstore import Change, Snapshot

if TYPE_CHECKING:
    import ast

    from proctor.checks.validation import Capabilities, Finding
    from proctor.core.config import ProctorConfig

__all__ = [
    "ActionContext",
    "ActionResult",
    "ActionType",
    "AllowedValues",
    "CodeToCheck",
    "Criterion",
    "CustomCriterion",
    "MaxBytes",
    "MaxLength",
    "Params",
    "RequiredField",
    "Status",
    "describe_error",
    "parse_params",
]

Status = Literal["applied", "proposed", "denied", "failed"]


class Params(BaseModel):
    """Base for action params: unknown keys are refused, so a typo is an error.

    Built on first use (``defer_build``): every registered action's params are declared
    when the plugins load, and a write validates one action's.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)


@dataclass
class ActionContext:
    """Who acts and why, and the snapshot the change is being built on.

    ``metadata`` is the caller's, for plugins to read (a ticket number, a client name);
    the pipeline never reads it, so nothing put there can change an outcome.
    ``snapshot`` is set by the pipeline: the store tip the change is being built on.
    """

    actor: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    metadata: dict[str, Any] = field(default_factory=dict)
    config: ProctorConfig | None = None
    snapshot: Snapshot | None = None
    proposal: str | None = None
    # The commit whose committed config the policy was read from (set by the pipeline in
    # plan; None on an unborn branch, where the work tree's config is all there is).
    policy_commit: str | None = None
    # The engine running this action (set by the pipeline), for actions that build another
    # action's change: a proposal's approval re-runs the proposed action through it.
    engine: Any = None
    # Absolute paths of local files the caller read to build the params, with the bytes
    # read; lets the store accept a work-tree file edited in place and handed over.
    inputs: dict[str, bytes] = field(default_factory=dict)
    # Code the action already parsed while building its change, by path: (text, module).
    # The code checks reuse the module when the text is the one they check, so a write
    # parses its code once (an action that parses nothing leaves it empty).
    parsed: dict[str, tuple[str, ast.Module]] = field(default_factory=dict)
    # Data files the action built or read while building its change, by path: (bytes,
    # what it made of them), for later steps that would otherwise decode them again.
    decoded: dict[str, tuple[bytes, Any]] = field(default_factory=dict)

    def require_snapshot(self) -> Snapshot:
        """``snapshot``, which criteria and ``apply`` may rely on: the pipeline sets it
        before calling either. Outside the pipeline there is none, and this raises."""
        if self.snapshot is None:
            raise RuntimeError("no snapshot: criteria and apply() run only inside the pipeline")
        return self.snapshot

    def tip(self) -> Snapshot:
        """Deprecated: :meth:`require_snapshot` (``tip`` is a commit id everywhere else)."""
        warnings.warn(
            "ActionContext.tip() is now require_snapshot()", DeprecationWarning, stacklevel=2
        )
        return self.require_snapshot()


@dataclass
class ActionResult:
    """What happened. ``to_json`` is the CLI's ``--json`` contract.

    ``warnings`` are problems after the outcome was settled (a side effect or an event
    handler that failed): they never change ``status``, and never undo a commit.
    """

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
    warnings: list[str] = field(default_factory=list)
    attempts: int = 0
    backoff: float = 0.0  # seconds the write slept between builds after lost races

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
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class CodeToCheck:
    """A file an action writes that validators must pass, and its declared capabilities."""

    path: str
    text: str
    capabilities: Capabilities | None = None
    # ``text`` already parsed (from ``ActionContext.parsed``): the checks use it as is.
    tree: ast.Module | None = None


class ActionType:
    """Subclass this to add an action; register the class with ``proctor_register_actions``.

    Set ``api_name`` (``"<domain>.<verb>"``), ``description``, ``Params`` (a
    :class:`Params` subclass) and optionally ``criteria``, ``requires_proposal`` and
    ``side_effects`` (names registered through ``proctor_register_side_effects``, run
    after this action's commit; effects for every action belong on ``proctor_on_event``);
    implement :meth:`apply`. ``apply`` must be a pure function of params and
    ``context.snapshot``: it may run again on a newer tip after a lost race.
    """

    api_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = Params
    criteria: ClassVar[Sequence[Criterion]] = ()
    requires_proposal: ClassVar[bool] = False
    side_effects: ClassVar[Sequence[str]] = ()
    # A step of a review itself (approve, reject, ...): policy may deny it, but sending it
    # to review would ask for a proposal to move a proposal, so REQUIRE_PROPOSAL allows it.
    review_step: ClassVar[bool] = False

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

    def governed_as(
        self, params: Any, context: ActionContext
    ) -> Sequence[tuple[type[ActionType], BaseModel]]:
        """Other actions this one amounts to on ``context.snapshot``, with their params.

        Policy is asked about each of them as well and the strictest answer wins, so an
        action cannot do under its own name what policy refuses under the other's (a
        rollback that restores nothing is a delete). None by default.
        """
        return ()

    @classmethod
    def procedures(cls, params: Any) -> tuple[str, ...]:
        """The procedures the action is about, for policy rules on owners: the ``name``
        param when there is one. Override when an action names them otherwise."""
        name = getattr(params, "name", None)
        return (name,) if isinstance(name, str) else ()


def parse_params(action: type[ActionType], raw: dict[str, Any] | BaseModel) -> BaseModel:
    """The action's params model from a dict (or another model); ValidationFailed lists
    every field in error, as ``field: message``."""
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


def __getattr__(name: str) -> Any:
    # Moved to their own modules; old imports keep working.
    if name == "CustomValidator":
        from proctor.engine import criteria

        return getattr(criteria, name)
    if name == "ActionEngine":
        from proctor.engine.pipeline import ActionEngine

        return ActionEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
