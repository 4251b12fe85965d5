"""Built-in plugin: the proposal transitions (approve, reject, withdraw, apply, edit), and
the side effect that announces each as a ``proposal.<status>`` event.

Registered as any plugin's actions are, so ``PROCTOR_DISABLE_PLUGINS=proposals`` turns
proposals off: an action policy sends to review then fails saying they are not enabled.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_register_actions(register: Any) -> None:
    from proctor.proposals.actions import PROPOSAL_ACTIONS

    for action in PROPOSAL_ACTIONS:
        register(action)


@hookimpl
def proctor_register_side_effects(register: Any) -> None:
    from proctor.proposals.actions import AnnounceTransition

    register(AnnounceTransition())
