"""Built-in plugin: the policy table from configuration.

``[policy]`` in proctor.toml maps an action's api_name (or ``"*"`` for every action) to
ALLOW_IMMEDIATE, REQUIRE_PROPOSAL or DENY. Other policy plugins are combined with this
one and the strictest answer wins.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_policy(action: Any, context: Any) -> Any:
    config = getattr(context, "config", None)
    if config is None or not config.policy:
        return None
    table = config.policy
    return table.get(action.api_name) or table.get("*")
