"""Built-in plugin: the procedure actions (create, update, delete, release, rollback)."""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_register_actions(register: Any) -> None:
    # Imported here: the action classes pull in pydantic, which --help must not pay for.
    from proctor.procedures.actions import BUILTIN_ACTIONS

    for action in BUILTIN_ACTIONS:
        register(action)
