"""proctor: a git-native store for executable Python procedures.

The public face is lazy on purpose: ``import proctor`` must stay cheap because the
pre-commit hooks and ``proctor --help`` import it, so names load on first access.

Errors: everything proctor raises on purpose is a :class:`ProctorError` whose
``exit_code`` is what the CLI exits with (``UsageError`` and its kin 2, ``ConcurrencyError``
3, ``StoreError`` and ``PluginError`` 1); catch those, by type, from the Python API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from proctor.checks.validation import Finding, Rule, Validator
    from proctor.core.errors import (
        EXIT_CONFLICT,
        EXIT_FINDINGS,
        EXIT_OK,
        EXIT_USAGE,
        ConcurrencyError,
        ConfigError,
        DirtyWorkTreeError,
        NotARepositoryError,
        NotFoundError,
        PluginError,
        ProctorError,
        StoreError,
        UsageError,
        ValidationFailed,
    )
    from proctor.core.events import ActionEvent, Event
    from proctor.core.governance import Decision
    from proctor.core.hookspecs import hookimpl
    from proctor.engine.actions import ActionContext, ActionResult, ActionType, Params
    from proctor.engine.criteria import (
        AllowedValues,
        Criterion,
        CustomCriterion,
        CustomValidator,
        MaxLength,
        RequiredField,
    )
    from proctor.procedures.spec import ProcedureSpec
    from proctor.store.gitstore import Change, TagSpec
    from proctor.workspace import Workspace

_ERRORS = (
    "ProctorError",
    "UsageError",
    "ConfigError",
    "NotFoundError",
    "NotARepositoryError",
    "ValidationFailed",
    "DirtyWorkTreeError",
    "StoreError",
    "ConcurrencyError",
    "PluginError",
    "EXIT_OK",
    "EXIT_FINDINGS",
    "EXIT_USAGE",
    "EXIT_CONFLICT",
)

_LAZY = {
    "Workspace": "proctor.workspace",
    "hookimpl": "proctor.core.hookspecs",
    "ActionType": "proctor.engine.actions",
    "ActionContext": "proctor.engine.actions",
    "ActionResult": "proctor.engine.actions",
    "Params": "proctor.engine.actions",
    "Criterion": "proctor.engine.criteria",
    "RequiredField": "proctor.engine.criteria",
    "AllowedValues": "proctor.engine.criteria",
    "MaxLength": "proctor.engine.criteria",
    "CustomCriterion": "proctor.engine.criteria",
    "CustomValidator": "proctor.engine.criteria",
    "Change": "proctor.store.gitstore",
    "TagSpec": "proctor.store.gitstore",
    "Decision": "proctor.core.governance",
    "Event": "proctor.core.events",
    "ActionEvent": "proctor.core.events",
    "ProcedureSpec": "proctor.procedures.spec",
    "Finding": "proctor.checks.validation",
    "Rule": "proctor.checks.validation",
    "Validator": "proctor.checks.validation",
    **dict.fromkeys(_ERRORS, "proctor.core.errors"),
}

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_USAGE",
    "ActionContext",
    "ActionEvent",
    "ActionResult",
    "ActionType",
    "AllowedValues",
    "Change",
    "ConcurrencyError",
    "ConfigError",
    "Criterion",
    "CustomCriterion",
    "CustomValidator",
    "Decision",
    "DirtyWorkTreeError",
    "Event",
    "Finding",
    "MaxLength",
    "NotARepositoryError",
    "NotFoundError",
    "Params",
    "PluginError",
    "ProcedureSpec",
    "ProctorError",
    "RequiredField",
    "Rule",
    "StoreError",
    "TagSpec",
    "UsageError",
    "ValidationFailed",
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


def _hand_builtins_to_core() -> None:
    """Core loads built-in plugins without naming them: hand it the table here, the one
    module every proctor process imports first, so the process-wide plugin manager (and
    each ``proctor check -j`` worker's) has them whichever layer asks first."""
    from proctor.plugins import install

    install()


_hand_builtins_to_core()
