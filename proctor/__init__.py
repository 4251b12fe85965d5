"""proctor: a git-native store for executable Python procedures.

The public face is lazy on purpose: ``import proctor`` must stay cheap because the
pre-commit hooks and ``proctor --help`` import it, so names load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from proctor.checks.validation import Finding, Rule, Validator
    from proctor.core.governance import Decision
    from proctor.core.hookspecs import hookimpl
    from proctor.engine.actions import (
        ActionContext,
        ActionResult,
        ActionType,
        AllowedValues,
        CustomValidator,
        MaxLength,
        Params,
        RequiredField,
    )
    from proctor.procedures.spec import ProcedureSpec
    from proctor.store.gitstore import Change, TagSpec
    from proctor.workspace import Workspace

_LAZY = {
    "Workspace": "proctor.workspace",
    "hookimpl": "proctor.core.hookspecs",
    "ActionType": "proctor.engine.actions",
    "ActionContext": "proctor.engine.actions",
    "ActionResult": "proctor.engine.actions",
    "Params": "proctor.engine.actions",
    "RequiredField": "proctor.engine.actions",
    "AllowedValues": "proctor.engine.actions",
    "MaxLength": "proctor.engine.actions",
    "CustomValidator": "proctor.engine.actions",
    "Change": "proctor.store.gitstore",
    "TagSpec": "proctor.store.gitstore",
    "Decision": "proctor.core.governance",
    "ProcedureSpec": "proctor.procedures.spec",
    "Finding": "proctor.checks.validation",
    "Rule": "proctor.checks.validation",
    "Validator": "proctor.checks.validation",
}

__all__ = [
    "ActionContext",
    "ActionResult",
    "ActionType",
    "AllowedValues",
    "Change",
    "CustomValidator",
    "Decision",
    "Finding",
    "MaxLength",
    "Params",
    "ProcedureSpec",
    "RequiredField",
    "Rule",
    "TagSpec",
    "Validator",
    "Workspace",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'proctor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
