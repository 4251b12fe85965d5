"""proctor: a git-native store for executable Python procedures.

The public face is lazy on purpose: ``import proctor`` must stay cheap because the
pre-commit hooks and ``proctor --help`` import it, so names load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from proctor.core.actions import (
        ActionContext,
        ActionResult,
        ActionType,
        AllowedValues,
        CustomValidator,
        MaxLength,
        Params,
        RequiredField,
    )
    from proctor.core.gitstore import Change, TagSpec
    from proctor.core.governance import Decision
    from proctor.core.hookspecs import hookimpl
    from proctor.core.models import ProcedureSpec
    from proctor.core.validation import Finding, Rule, Validator
    from proctor.workspace import Workspace

_LAZY = {
    "Workspace": "proctor.workspace",
    "hookimpl": "proctor.core.hookspecs",
    "ActionType": "proctor.core.actions",
    "ActionContext": "proctor.core.actions",
    "ActionResult": "proctor.core.actions",
    "Params": "proctor.core.actions",
    "RequiredField": "proctor.core.actions",
    "AllowedValues": "proctor.core.actions",
    "MaxLength": "proctor.core.actions",
    "CustomValidator": "proctor.core.actions",
    "Change": "proctor.core.gitstore",
    "TagSpec": "proctor.core.gitstore",
    "Decision": "proctor.core.governance",
    "ProcedureSpec": "proctor.core.models",
    "Finding": "proctor.core.validation",
    "Rule": "proctor.core.validation",
    "Validator": "proctor.core.validation",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'proctor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
