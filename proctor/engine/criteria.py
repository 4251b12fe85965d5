"""Submission criteria: checks on an action's params before anything is written.

A criterion sees the validated params and the :class:`~proctor.engine.actions.ActionContext`
(with ``context.snapshot``, the tip the change is built on) and returns error messages;
an empty list passes. The pipeline runs every criterion of an action in the plan step
and again on the new tip whenever a lost race makes it rebuild, so a criterion may read
the store.

These are not code validators (``proctor.checks.validation.Validator``, which check the
Python files an action writes): a criterion judges the request, a validator the code.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from proctor.engine.actions import ActionContext


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
class MaxBytes(Criterion):
    """A size limit in bytes, as stored: text is counted UTF-8 encoded, so a limit
    means the same for "é" as for "e" (``MaxLength`` counts characters)."""

    name: str
    limit: int

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        v = _value(params, self.name)
        if v is None:
            return []
        size = len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else len(v)
        if size > self.limit:
            return [f"{self.name} is {size} bytes; the limit is {self.limit} bytes"]
        return []


@dataclass
class CustomCriterion(Criterion):
    """Any callable ``(params, context) -> str | list[str] | None`` (None or empty: ok)."""

    func: Callable[[Any, ActionContext], str | list[str] | None]
    label: str = ""

    def check(self, params: BaseModel, context: ActionContext) -> list[str]:
        out = self.func(params, context)
        if not out:
            return []
        return [out] if isinstance(out, str) else list(out)


def __getattr__(name: str) -> Any:
    # The old name said "validator" for what is a submission criterion; kept working.
    if name == "CustomValidator":
        warnings.warn(
            "CustomValidator is now CustomCriterion (a submission criterion, not a code "
            "validator); the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return CustomCriterion
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
