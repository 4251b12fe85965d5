"""The plugin manager: built-ins first, then the ``proctor`` entry-point group.

Each plugin is loaded and called in isolation: one that fails to import, to register or
inside a registration hook is recorded (``proctor plugins`` shows it with its error) and
every other plugin keeps working. ``PROCTOR_STRICT_PLUGINS=1`` re-raises instead, for
plugin authors and CI. ``PROCTOR_DISABLE_PLUGINS=a,b`` blocks plugins by name, built-ins
included, before they are imported.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from proctor.core.errors import PluginError

# Built-in plugins, registered through the same hooks as third-party ones.
# name -> module; the name is what PROCTOR_DISABLE_PLUGINS and `proctor plugins` use.
DEFAULT_PLUGINS: dict[str, str] = {
    "procedures": "proctor.plugins.procedure_actions",
    "safety": "proctor.plugins.safety",
    "log-lint": "proctor.plugins.loglint",
    "policy": "proctor.plugins.policy",
    "side-effects": "proctor.plugins.audit_log",
    "formats": "proctor.plugins.formats",
}

ENTRY_POINT_GROUP = "proctor"


class PluginInfo:
    """What ``proctor plugins`` reports about one plugin."""

    def __init__(
        self,
        name: str,
        module: str,
        version: str | None = None,
        builtin: bool = False,
        hooks: list[str] | None = None,
        error: str | None = None,
        disabled: bool = False,
    ) -> None:
        self.name = name
        self.module = module
        self.version = version
        self.builtin = builtin
        self.hooks = list(hooks or [])
        self.error = error
        self.disabled = disabled

    def __repr__(self) -> str:
        return f"PluginInfo({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def strict_plugins() -> bool:
    return _env_flag("PROCTOR_STRICT_PLUGINS")


def disabled_plugins() -> set[str]:
    raw = os.environ.get("PROCTOR_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Wraps pluggy's manager with per-plugin isolation and a record of what loaded."""

    def __init__(self) -> None:
        # Imported here: the CLI reads this module's env switches without paying for pluggy.
        import pluggy

        from proctor.core import hookspecs

        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._objects: dict[str, object] = {}

    # -- loading -----------------------------------------------------------------------

    @staticmethod
    def _record(info: PluginInfo, error: str) -> None:
        """Keep every error of a plugin: one that fails in two hooks shows both."""
        info.error = error if not info.error else f"{info.error}; {error}"

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        self._record(info, _describe(exc))
        if strict_plugins():
            raise PluginError(f"plugin {info.name!r} failed: {info.error}") from exc

    def register(self, name: str, plugin: object, info: PluginInfo) -> None:
        self.infos[name] = info
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
            self._fail(info, exc)
            return
        self._objects[name] = plugin
        info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    def load_builtins(self, disabled: set[str]) -> None:
        for name, module_name in DEFAULT_PLUGINS.items():
            info = PluginInfo(name=name, module=module_name, builtin=True)
            if name in disabled:
                info.disabled = True
                self.infos[name] = info
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
                self.infos[name] = info
                self._fail(info, exc)
                continue
            self.register(name, module, info)

    def load_entry_points(self, disabled: set[str]) -> None:
        from proctor.core.entrypoints import entry_points

        for ep in entry_points(ENTRY_POINT_GROUP):
            info = PluginInfo(name=ep.name, module=ep.value, version=ep.version)
            if ep.name in disabled:
                info.disabled = True
                self.infos[ep.name] = info
                continue
            if ep.name in self.infos:
                info.error = f"name {ep.name!r} is already taken by another plugin"
                self.infos[f"{ep.name} ({ep.value})"] = info
                if strict_plugins():
                    raise PluginError(info.error)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
                self.infos[ep.name] = info
                self._fail(info, exc)
                continue
            self.register(ep.name, plugin, info)

    def check_pending(self) -> None:
        """Fail loudly on a hookimpl whose name matches no hookspec (a misspelt hook)."""
        import pluggy

        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            bad = getattr(exc, "plugin", None)
            for name, obj in self._objects.items():
                if obj is bad:
                    self._record(self.infos[name], _describe(exc))
                    self.pm.unregister(obj)
                    del self._objects[name]
                    break
            if strict_plugins():
                raise PluginError(str(exc)) from exc
            self.check_pending()

    # -- calling -----------------------------------------------------------------------

    def call_each(
        self, hook_name: str, failures: list[str] | None = None, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, each in isolation, in registration order.

        Returns ``(plugin_name, result)`` pairs. An implementation that raises is recorded
        on its plugin's info and skipped (its name is appended to ``failures`` when given,
        so a caller such as governance can fail closed), unless strict mode is on.
        """
        caller = getattr(self.pm.hook, hook_name)
        results: list[tuple[str, Any]] = []
        for impl in caller.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            args = {arg: kwargs[arg] for arg in impl.argnames}
            try:
                results.append((name, impl.function(**args)))
            except Exception as exc:
                info = self.infos.setdefault(name, PluginInfo(name=name, module="?"))
                self._record(info, f"{hook_name}: {_describe(exc)}")
                if failures is not None:
                    failures.append(name)
                if strict_plugins():
                    raise PluginError(f"plugin {name!r} failed in {hook_name}: {exc}") from exc
        return results

    def collect(self, hook_name: str, key: Callable[[Any], str]) -> dict[str, Any]:
        """Run a ``register`` hook and gather what each plugin registers, keyed by name.

        Plugins are asked in registration order, built-ins first, so a second
        registration under a taken name is an error on the later plugin and the first
        one stays: a plugin cannot silently replace a built-in.
        """
        items: dict[str, Any] = {}
        owners: dict[str, str] = {}
        current: list[str] = [""]

        def register(item: Any) -> None:
            k = key(item)
            if not k:
                raise ValueError(f"{item!r} has no name")
            if k in items:
                raise ValueError(f"{k!r} is already registered by plugin {owners[k]!r}")
            items[k] = item
            owners[k] = current[0]

        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            current[0] = name
            try:
                impl.function(register=register)
            except Exception as exc:
                info = self.infos.setdefault(name, PluginInfo(name=name, module="?"))
                self._record(info, f"{hook_name}: {_describe(exc)}")
                if strict_plugins():
                    raise PluginError(f"plugin {name!r} failed in {hook_name}: {exc}") from exc
        return items

    # -- registries (cached: plugins are loaded once per process) ------------------------

    def validators(self) -> dict[str, Any]:
        if not hasattr(self, "_validators"):
            self._validators = self.collect("proctor_register_validators", lambda v: v.name)
        return self._validators

    def actions(self) -> dict[str, Any]:
        if not hasattr(self, "_actions"):
            self._actions = self.collect("proctor_register_actions", lambda a: a.api_name)
        return self._actions

    def side_effects(self) -> dict[str, Any]:
        if not hasattr(self, "_side_effects"):
            self._side_effects = self.collect("proctor_register_side_effects", lambda s: s.name)
        return self._side_effects

    def llm_backends(self) -> dict[str, Any]:
        if not hasattr(self, "_llm_backends"):
            self._llm_backends = self.collect("proctor_register_llm_backends", lambda b: b.name)
        return self._llm_backends

    def load_registries(self) -> None:
        """Run every registration hook now, so their errors show in ``proctor plugins``."""
        self.actions()
        self.validators()
        self.side_effects()
        self.llm_backends()


_manager: PluginManager | None = None


def get_plugin_manager(*, reload: bool = False) -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    if _manager is None or reload:
        manager = PluginManager()
        disabled = disabled_plugins()
        manager.load_builtins(disabled)
        if "PROCTOR_NO_ENTRY_POINTS" not in os.environ:
            manager.load_entry_points(disabled)
        manager.check_pending()
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests change the environment between loads)."""
    global _manager
    _manager = None
