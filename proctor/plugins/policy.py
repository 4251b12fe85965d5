"""Built-in plugin: the ``[policy]`` table of the committed configuration.

The simple form maps an action's api_name (or a glob, ``"*"`` for every action) to
ALLOW_IMMEDIATE, REQUIRE_PROPOSAL or DENY; ``[policy.roles]``, ``[policy.owners]`` and
``[[policy.rules]]`` add rules on actors, roles and procedure owners
(:mod:`proctor.core.policy`, the rule engine this plugin hands the table to). The
answer is a :class:`~proctor.core.policy.Ruling`, so the engine knows the rule, the
approvals a proposal needs and the reason of a DENY. Other policy plugins are combined
with this one and the strictest answer wins.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_policy(action: Any, params: Any, context: Any) -> Any:
    config = getattr(context, "config", None)
    if config is None:
        return None
    policy = config.governance
    if not policy:
        return None
    from proctor.core.policy import PolicyRequest

    procedures = tuple(action.procedures(params)) if hasattr(action, "procedures") else ()
    return policy.evaluate(PolicyRequest(action.api_name, context.actor, procedures))
