"""Pydantic models of the procedure domain: the spec stored as ``metadata.json``.

Field names are a contract (``metadata.json`` is read by people, scripts and other
tools): add fields, never rename them. The proposal file's model belongs to
``proctor.proposals``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from proctor.core.names import check_name
from proctor.procedures.capabilities import parse_capabilities


# List fields default to ``[]``, not ``Field(default_factory=list)``: pydantic copies a
# mutable default for each instance all the same, and asking ``list`` for its signature
# (which a factory costs) tokenizes its text signature, ~1.6 ms of every CLI write.
class _Model(BaseModel):
    # Built on first use: a write builds only the models it validates.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class Parameter(_Model):
    """One parameter of ``run``.

    ``default`` is the default when it is a JSON value; a default that is not one
    (``time.time()``, a tuple, a module constant) is kept as source text in
    ``default_repr``, with ``default`` null. ``kind`` is how ``run`` takes it:
    ``positional`` (by position or name), ``keyword`` (keyword-only, after ``*``) or
    ``positional_only`` (before ``/``: callers pass params by name, so it only ever takes
    its default). ``*args`` and ``**kwargs`` are not parameters here.
    """

    name: str
    type: str = "Any"
    description: str = ""
    default: Any = None
    required: bool = True
    kind: Literal["positional", "keyword", "positional_only"] = "positional"
    default_repr: str | None = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError(f"parameter name {v!r} is not a Python identifier")
        return v


class Example(_Model):
    params: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None


class CapabilitiesModel(_Model):
    """What a procedure may do beyond pure computation; unlocks imports in checks."""

    network: bool = False
    subprocess: bool = False
    filesystem_write: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _strict(cls, data: Any) -> Any:
        # The one parser decides what is valid, so the pre-commit hook and the pipeline
        # agree (pydantic alone would read "network": "yes" as True).
        if not isinstance(data, CapabilitiesModel):
            try:
                parse_capabilities(data, where="")
            except ValueError as exc:
                raise PydanticCustomError("invalid_capabilities", str(exc)) from None
        return data


class Generation(_Model):
    """Where generated code came from (``procedure.generate``): the model, the prompt's
    hash, the final confidence and how it was reached, and every attempt made.

    ``source`` is ``model`` (the model's code) or ``skeleton`` (the deterministic
    skeleton, stored when no attempt produced usable code). ``band`` is the decision band
    the confidence fell in (``apply``, ``review``, ``expert``); ``checks`` and
    ``examples`` the results the confidence was computed from; ``attempts`` one entry per
    round (the model calls of the round, its findings and failing examples).
    """

    model: str
    confidence: float | None = None
    prompt_hash: str | None = None
    backend: str | None = None
    source: Literal["model", "skeleton"] | None = None
    model_confidence: float | None = None
    band: str | None = None
    explanation: str | None = None
    checks: dict[str, Any] | None = None
    examples: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    repairs: int | None = None
    attempts: list[dict[str, Any]] = []


class ProcedureSpec(_Model):
    """``procedures/<name>/metadata.json``."""

    name: str
    description: str = ""
    category: str = "general"
    parameters: list[Parameter] = []
    returns: str = "Any"
    examples: list[Example] = []
    steps: list[str] = []
    preconditions: list[str] = []
    postconditions: list[str] = []
    capabilities: CapabilitiesModel = Field(default_factory=CapabilitiesModel)
    owners: list[str] = []
    code_language: Literal["python"] = "python"
    generation: Generation | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("parameters")
    @classmethod
    def _unique_params(cls, v: list[Parameter]) -> list[Parameter]:
        seen: set[str] = set()
        for p in v:
            if p.name in seen:
                raise ValueError(f"parameter {p.name!r} is listed twice")
            seen.add(p.name)
        return v

    def to_json(self) -> str:
        """Stable, diff-friendly JSON: fixed key order, two-space indent, final newline."""
        # ``steps`` (what generation starts from) is left out while empty, so the
        # metadata of procedures written before it existed stays byte for byte the same.
        exclude = None if self.steps else {"steps"}
        return self.model_dump_json(indent=2, exclude=exclude) + "\n"
