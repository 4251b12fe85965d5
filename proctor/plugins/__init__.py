"""Built-in plugins. Each registers through the hooks in ``proctor.core.hookspecs``,
exactly as a third-party plugin does, and imports nothing heavy at module level.

:data:`BUILTIN_PLUGINS` is the one list of them; core never names a built-in, it is
handed this table (``proctor/__init__.py`` does so on import, so every process, check
workers included, loads the same built-ins) and loads it before the ``proctor``
entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proctor.core.plugins import PluginManager

# name -> module; the name is what PROCTOR_DISABLE_PLUGINS and `proctor plugins` use.
BUILTIN_PLUGINS: dict[str, str] = {
    "procedures": "proctor.plugins.procedure_actions",
    "proposals": "proctor.plugins.proposal_actions",
    "config": "proctor.plugins.config_actions",
    "safety": "proctor.plugins.safety",
    "log-lint": "proctor.plugins.loglint",
    "formats": "proctor.plugins.formats",
    "policy": "proctor.plugins.policy",
    "audit-log": "proctor.plugins.audit_log",
    "side-effects": "proctor.plugins.side_effects",
    "metrics": "proctor.plugins.metrics",
    "llm": "proctor.plugins.llm_builtin",
    "llm-litellm": "proctor.plugins.llm_litellm",
    "llm-generation": "proctor.plugins.llm_generation",
}


def install() -> None:
    """Hand :data:`BUILTIN_PLUGINS` to the core plugin manager. Cheap: imports no pluggy."""
    from proctor.core.plugins import set_builtin_plugins

    set_builtin_plugins(BUILTIN_PLUGINS)


def plugin_manager(*, reload: bool = False) -> PluginManager:
    """The process-wide plugin manager with these built-ins, loaded on first use."""
    from proctor.core.plugins import get_plugin_manager

    install()
    return get_plugin_manager(reload=reload)
