"""The plugin manager: built-ins first, then the ``proctor`` entry-point group.

Core names no plugin. The built-ins are a table (name -> module) handed over by the
layer that owns them (:func:`set_builtin_plugins`; ``proctor.plugins`` keeps the table
and the ``proctor`` package hands it over on import), so a built-in is loaded exactly
like a third-party plugin, only earlier.

Every hook is called through ``pm.hook.<name>(...)``, so pluggy's own ordering
(``tryfirst``/``trylast``), wrappers and ``firstresult`` apply to built-ins and third
parties alike. Isolation is added underneath, at registration: each hook implementation's
function is guarded so that an exception is recorded on its plugin (``proctor plugins``
shows it), the failed implementation contributes no answer, and the caller learns of it
from the :class:`HookOutcome` (policy, for one, then denies). A wrapper that raises fails
the whole call, which the caller sees the same way. ``PROCTOR_STRICT_PLUGINS=1``
re-raises instead, for plugin authors and CI. ``PROCTOR_DISABLE_PLUGINS=a,b`` blocks
plugins by name, built-ins included, before they are imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from proctor.core.errors import PluginError

if TYPE_CHECKING:
    import pluggy

    from proctor.core.events import Event

ENTRY_POINT_GROUP = "proctor"

# name -> module of the built-in plugins, as handed over by the layer that owns them.
_builtin_plugins: dict[str, str] = {}


def set_builtin_plugins(table: Mapping[str, str]) -> None:
    """Hand core the built-in plugins (name -> module), loaded before entry points.

    The name is what ``PROCTOR_DISABLE_PLUGINS`` and ``proctor plugins`` use. A module
    that cannot be imported becomes that plugin's recorded error, not a crash.
    """
    _builtin_plugins.clear()
    _builtin_plugins.update(table)


def builtin_plugins() -> dict[str, str]:
    """The built-in table handed over by :func:`set_builtin_plugins` (a copy)."""
    return dict(_builtin_plugins)


class PluginInfo:
    """What ``proctor plugins`` reports about one plugin."""

    # A plain class, not a dataclass: the pre-commit hooks build these, and importing
    # dataclasses (and the inspect module behind it) is a measurable part of a hook run.
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


class HookFailure(NamedTuple):
    """One hook implementation (or wrapper) that raised during one call."""

    plugin: str
    hook: str
    error: str
    exception: BaseException | None = None

    def describe(self) -> str:
        return f"plugin {self.plugin!r} failed in {self.hook}: {self.error}"


class HookOutcome(NamedTuple):
    """What one ``pm.hook.<name>(...)`` call gave.

    ``value`` is what pluggy returned: the list of answers (None answers and failed
    implementations contribute nothing), or for a ``firstresult`` hook the first answer.
    ``failures`` lists every implementation that raised; when a wrapper raised, the
    call as a whole failed and ``value`` is empty.
    """

    hook: str
    value: Any
    failures: tuple[HookFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def answers(self) -> list[Any]:
        if isinstance(self.value, list):
            return list(self.value)
        return [] if self.value is None else [self.value]

    @property
    def failed_plugins(self) -> list[str]:
        return list(dict.fromkeys(f.plugin for f in self.failures))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def strict_plugins() -> bool:
    return _env_flag("PROCTOR_STRICT_PLUGINS")


def disabled_plugins() -> set[str]:
    raw = os.environ.get("PROCTOR_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _policy_answer(answer: object) -> object:
    """A policy answer must be a decision or None: anything else is the plugin's failure,
    caught where the plugin is still known, so governance can fail closed on it. A ruling
    (a decision with its rule, reason and approvals) is kept whole."""
    from proctor.core.governance import coerce

    decision = coerce(answer)
    return answer if getattr(answer, "decision", None) is decision is not None else decision


def _veto_answer(answer: object) -> object:
    """A before-commit answer must be a veto or None, and a veto names its plugin."""
    from dataclasses import replace

    from proctor.core.governance import coerce_veto

    veto = coerce_veto(answer)
    if veto is None or veto.plugin:
        return veto
    return replace(veto, plugin=running_plugin() or "")


# Checks applied to each implementation's answer inside its guard.
_ANSWER_CHECKS: dict[str, Callable[[object], object]] = {
    "proctor_policy": _policy_answer,
    "proctor_before_commit": _veto_answer,
}

# The failures of the hook call in progress (None outside PluginManager.call), and the
# plugin whose implementation is running (so ``register`` knows who registers).
_call_failures: contextvars.ContextVar[list[HookFailure] | None] = contextvars.ContextVar(
    "proctor_call_failures", default=None
)
_running_plugin: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "proctor_running_plugin", default=None
)


def running_plugin() -> str | None:
    """The name of the plugin whose hook implementation is running, if any."""
    return _running_plugin.get()


@contextlib.contextmanager
def _running(plugin: str) -> Iterator[None]:
    token = _running_plugin.set(plugin)
    try:
        yield
    finally:
        _running_plugin.reset(token)


class PluginManager:
    """Wraps pluggy's manager with per-plugin isolation and a record of what loaded."""

    def __init__(self) -> None:
        # Imported here: the CLI reads this module's env switches without paying for pluggy.
        import pluggy

        from proctor.core import hookspecs

        self.pm: pluggy.PluginManager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._order: dict[str, int] = {}
        self._registries: dict[str, dict[str, Any]] = {}

    # -- loading -----------------------------------------------------------------------

    @staticmethod
    def _record(info: PluginInfo, error: str) -> None:
        """Keep every error of a plugin: one that fails in two hooks shows both."""
        info.error = error if not info.error else f"{info.error}; {error}"

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        self._record(info, _describe(exc))
        if strict_plugins():
            raise PluginError(f"plugin {info.name!r} failed: {info.error}") from exc

    def _info(self, name: str) -> PluginInfo:
        return self.infos.setdefault(name, PluginInfo(name=name, module="?"))

    def register(self, name: str, plugin: object, info: PluginInfo) -> None:
        """Register one plugin object and guard its hook implementations.

        A registration pluggy refuses (a hook implementation taking an argument its hook
        does not have, say) is recorded on ``info``; strict mode re-raises.
        """
        self.infos[name] = info
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
            self._fail(info, exc)
            return
        self._order[name] = len(self._order)
        callers = self.pm.get_hookcallers(plugin) or []
        for caller in callers:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    self._guard(name, caller.name, impl)
        info.hooks = sorted(caller.name for caller in callers)

    def load_builtins(
        self, disabled: Collection[str] = frozenset(), table: Mapping[str, str] | None = None
    ) -> None:
        """Import and register the built-ins: ``table``, else the handed-over one."""
        for name, module_name in (_builtin_plugins if table is None else table).items():
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

    def load_entry_points(self, disabled: Collection[str] = frozenset()) -> None:
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
        """Fail loudly on a hookimpl whose name matches no hookspec (a misspelt hook).

        Each offending plugin is recorded and unregistered, one per round, so the loop
        ends after at most one round per plugin. A hookimpl whose plugin cannot be
        unregistered (pluggy no longer knows it) cannot be isolated: that raises.
        """
        import pluggy

        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                bad = exc.plugin
                name = self.pm.get_name(bad) if bad is not None else None
                if name is None or self.pm.unregister(bad) is None:
                    raise PluginError(
                        f"cannot unregister the plugin of an unknown hook: {exc}"
                    ) from exc
                self._record(self._info(name), _describe(exc))
                self._order.pop(name, None)
                if strict_plugins():
                    raise PluginError(str(exc)) from exc

    # -- guarding ----------------------------------------------------------------------

    def _failed(self, plugin: str, hook: str, exc: BaseException) -> None:
        """Record that ``plugin`` raised in ``hook``; strict mode re-raises."""
        self._record(self._info(plugin), f"{hook}: {_describe(exc)}")
        collector = _call_failures.get()
        if collector is not None:
            collector.append(HookFailure(plugin, hook, _describe(exc), exc))
        if strict_plugins():
            if isinstance(exc, PluginError):
                raise exc
            raise PluginError(f"plugin {plugin!r} failed in {hook}: {exc}") from exc

    def _guard(self, plugin: str, hook: str, impl: pluggy.HookImpl) -> None:
        function = impl.function
        if impl.wrapper or impl.hookwrapper:
            guarded = self._guard_wrapper(plugin, hook, function)
        else:
            guarded = self._guard_call(plugin, hook, function, _ANSWER_CHECKS.get(hook))
        # HookImpl declares ``function`` Final; its slot is writable and pluggy reads it
        # at every call, which is what lets isolation sit under pluggy's own calling.
        object.__setattr__(impl, "function", guarded)

    def _guard_call(
        self,
        plugin: str,
        hook: str,
        function: Callable[..., Any],
        check: Callable[[object], object] | None,
    ) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                with _running(plugin):
                    answer = function(*args, **kwargs)
                    return answer if check is None else check(answer)
            except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; isolate it
                self._failed(plugin, hook, exc)
                return None  # no answer: pluggy drops None, firstresult asks the next

        return guarded

    def _guard_wrapper(
        self, plugin: str, hook: str, function: Callable[..., Any]
    ) -> Callable[..., Generator[Any, Any, Any]]:
        """A wrapper's own exceptions are recorded and fail the call; an exception pluggy
        throws into it (from inner implementations) passes through unattributed."""

        def guarded(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                with _running(plugin):
                    gen = function(*args, **kwargs)
                    first = next(gen)
            except StopIteration:
                error = RuntimeError(f"wrapper for {hook} did not yield")
                self._failed(plugin, hook, error)
                raise error from None
            except Exception as exc:
                self._failed(plugin, hook, exc)
                raise
            try:
                try:
                    sent = yield first
                except GeneratorExit:
                    raise
                except BaseException as thrown:  # noqa: BLE001 - forwarded to the wrapper as is
                    try:
                        with _running(plugin):
                            gen.throw(thrown)
                    except StopIteration as stop:
                        return stop.value
                    except BaseException as exc:
                        if exc is thrown or not isinstance(exc, Exception):
                            raise
                        self._failed(plugin, hook, exc)
                        raise
                else:
                    try:
                        with _running(plugin):
                            gen.send(sent)
                    except StopIteration as stop:
                        return stop.value
                    except Exception as exc:
                        self._failed(plugin, hook, exc)
                        raise
                error = RuntimeError(f"wrapper for {hook} yielded more than once")
                self._failed(plugin, hook, error)
                raise error
            finally:
                gen.close()

        return guarded

    # -- calling -----------------------------------------------------------------------

    def call(self, hook: str, **kwargs: Any) -> HookOutcome:
        """Call ``pm.hook.<hook>(**kwargs)`` and report who failed.

        A failed implementation is recorded on its plugin and contributes no answer; a
        failed wrapper fails the call (``value`` is then empty). An exception no plugin
        is known to have raised propagates: it is proctor's, or pluggy's, to report.
        An unknown hook name raises AttributeError.
        """
        caller = getattr(self.pm.hook, hook)
        collected: list[HookFailure] = []
        token = _call_failures.set(collected)
        try:
            value = caller(**kwargs)
        except Exception as exc:
            if isinstance(exc, PluginError) or not any(f.exception is exc for f in collected):
                raise
            firstresult = caller.spec is not None and caller.spec.opts.get("firstresult")
            value = None if firstresult else []
        finally:
            _call_failures.reset(token)
        return HookOutcome(hook, value, tuple(collected))

    def emit(self, event: Event) -> tuple[HookFailure, ...]:
        """Announce ``event`` through ``proctor_on_event``; the handlers that failed."""
        return self.call("proctor_on_event", event=event).failures

    def collect(self, hook: str, key: Callable[[Any], str]) -> dict[str, Any]:
        """Run a ``register`` hook and gather what each plugin registers, keyed by name.

        pluggy decides the calling order (last registered first, ``tryfirst`` and
        ``trylast`` honoured), but not who keeps a name: a name registered twice stays
        with the plugin registered earlier (built-ins before entry points), and the
        later one gets the error. So a plugin cannot replace a built-in, whatever order
        it asks for.
        """
        entries: list[tuple[str, str, Any]] = []

        def register(item: Any) -> None:
            k = key(item)
            if not k:
                raise ValueError(f"{item!r} has no name")
            entries.append((running_plugin() or "?", k, item))

        self.call(hook, register=register)
        last = len(self._order)
        entries.sort(key=lambda entry: self._order.get(entry[0], last))
        items: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for plugin, k, item in entries:
            if k in items:
                clash = ValueError(f"{k!r} is already registered by plugin {owners[k]!r}")
                self._failed(plugin, hook, clash)
                continue
            items[k] = item
            owners[k] = plugin
        return items

    # -- registries (cached: plugins are loaded once per process) ------------------------

    def registry(self, hook: str, key: Callable[[Any], str]) -> dict[str, Any]:
        """What ``hook`` registers, collected on first use and cached."""
        if hook not in self._registries:
            self._registries[hook] = self.collect(hook, key)
        return self._registries[hook]

    def validators(self) -> dict[str, Any]:
        return self.registry("proctor_register_validators", lambda v: v.name)

    def actions(self) -> dict[str, Any]:
        return self.registry("proctor_register_actions", lambda a: a.api_name)

    def side_effects(self) -> dict[str, Any]:
        return self.registry("proctor_register_side_effects", lambda s: s.name)

    def llm_backends(self) -> dict[str, Any]:
        return self.registry("proctor_register_llm_backends", lambda b: b.name)

    def formats(self) -> dict[str, Any]:
        return self.registry("proctor_register_formats", lambda f: f.name)

    def load_registries(self) -> None:
        """Run every registration hook now, so their errors show in ``proctor plugins``."""
        self.actions()
        self.validators()
        self.side_effects()
        self.llm_backends()
        self.formats()


_manager: PluginManager | None = None


def get_plugin_manager(*, reload: bool = False) -> PluginManager:
    """The process-wide plugin manager, loaded on first use: the handed-over built-ins,
    then the entry points (unless ``PROCTOR_NO_ENTRY_POINTS`` is set)."""
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
