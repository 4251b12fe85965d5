"""Built-in plugin: ``config.update``, the action that changes ``proctor.toml``.

The configuration holds the policy, so changing it is an action like the others: the
policy in force (read from the commit the action is planned on) decides on it, and a
``"config.update" = "REQUIRE_PROPOSAL"`` entry makes every policy change a proposal. The
new text must parse as a configuration, policy included, before it can be committed.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


def _action() -> Any:
    from proctor.core.config import parse_config_text
    from proctor.core.errors import ConfigError, ValidationFailed
    from proctor.engine.actions import ActionContext, ActionType, Params
    from proctor.store.gitstore import Change

    class ConfigParams(Params):
        text: str

    class UpdateConfig(ActionType):
        api_name = "config.update"
        description = "Replace proctor.toml (the configuration and its policy)"
        Params = ConfigParams

        def subject(self, params: Any) -> str:
            return "Update proctor.toml"

        def apply(self, params: Any, context: ActionContext) -> Change:
            try:
                parse_config_text(params.text, "proctor.toml")
            except ConfigError as exc:
                raise ValidationFailed(f"config.update: {exc.message}") from None
            snapshot = context.require_snapshot()
            if snapshot.read_text("proctor.toml") == params.text:
                raise ValidationFailed("config.update: proctor.toml already says exactly this")
            return Change(edits={"proctor.toml": params.text.encode()})

    return UpdateConfig


@hookimpl
def proctor_register_actions(register: Any) -> None:
    register(_action())
