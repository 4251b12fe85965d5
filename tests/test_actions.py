"""The action pipeline: criteria re-run after a lost race, side effects that fail, code checks."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from conftest import GREET, git

from proctor import ActionContext, ActionType, Change, CustomValidator, Params, Workspace, hookimpl
from proctor.core.errors import ConcurrencyError, StoreError, ValidationFailed
from proctor.core.plugins import PluginInfo, PluginManager


class TouchParams(Params):
    path: str
    text: str


def make_manager(*plugins: object) -> PluginManager:
    manager = PluginManager()
    manager.load_builtins(set())
    for i, plugin in enumerate(plugins):
        manager.register(f"test{i}", plugin, PluginInfo(name=f"test{i}", module="tests"))
    manager.check_pending()
    return manager


def plugin_of(
    actions: tuple[type[ActionType], ...] = (), side_effects: tuple[Any, ...] = ()
) -> object:
    """A plugin object registering the given actions and side effects through the hooks."""
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_register_actions(register: Any) -> None:
        for action in actions:
            register(action)

    @hookimpl
    def proctor_register_side_effects(register: Any) -> None:
        for effect in side_effects:
            register(effect)

    plugin.proctor_register_actions = proctor_register_actions  # type: ignore[attr-defined]
    plugin.proctor_register_side_effects = proctor_register_side_effects  # type: ignore[attr-defined]
    return plugin


def racing_plugin(repo: Path, calls: dict[str, int], race_path: str) -> object:
    """An action whose first apply lets another writer move the branch first."""

    def criterion(params: TouchParams, context: ActionContext) -> None:
        calls["criteria"] += 1
        calls.setdefault("tips", []).append(context.tip().commit)  # type: ignore[attr-defined]

    class Touch(ActionType):
        api_name = "test.touch"
        Params = TouchParams
        criteria = (CustomValidator(criterion),)

        def apply(self, params: TouchParams, context: ActionContext) -> Change:
            calls["apply"] += 1
            if calls["apply"] == 1:
                # Another git writer (a person committing) moves the branch meanwhile.
                (repo / race_path).write_text("theirs")
                git(repo, "add", race_path)
                git(repo, "commit", "-qm", "theirs")
            return Change(edits={params.path: params.text.encode()})

    return plugin_of((Touch,))


def test_lost_race_on_other_path_rebuilds_and_reruns_criteria(store: Path) -> None:
    calls = {"criteria": 0, "apply": 0}
    manager = make_manager(racing_plugin(store, calls, "elsewhere.txt"))
    with Workspace.open(store, plugins=manager) as ws:
        result = ws.execute("test.touch", {"path": "mine.txt", "text": "mine"})
    assert result.status == "applied" and result.attempts == 2
    assert calls["apply"] == 2
    assert calls["criteria"] == 2  # once on the first tip, again on the tip that won
    assert calls["tips"][0] != calls["tips"][1]  # type: ignore[index]
    log = git(store, "log", "--format=%s").splitlines()
    assert log[:2] == ["test.touch", "theirs"]
    assert git(store, "show", "HEAD:elsewhere.txt") == "theirs"
    assert git(store, "status", "--porcelain") == ""


def test_lost_race_on_same_path_is_a_conflict(store: Path) -> None:
    calls = {"criteria": 0, "apply": 0}
    manager = make_manager(racing_plugin(store, calls, "mine.txt"))
    with Workspace.open(store, plugins=manager) as ws, pytest.raises(ConcurrencyError) as info:
        ws.execute("test.touch", {"path": "mine.txt", "text": "mine"})
    assert info.value.actual == git(store, "rev-parse", "HEAD").strip()
    assert git(store, "show", "HEAD:mine.txt") == "theirs"


class Boom:
    name = "boom"

    def run(self, result: Any, context: Any) -> None:
        raise RuntimeError("webhook unreachable")


def test_failing_side_effect_keeps_the_commit(store: Path) -> None:
    class Noisy(ActionType):
        api_name = "test.noisy"
        Params = TouchParams
        side_effects = ("log", "boom", "missing")

        def apply(self, params: TouchParams, context: ActionContext) -> Change:
            return Change(edits={params.path: params.text.encode()})

    with Workspace.open(store, plugins=make_manager(plugin_of((Noisy,), (Boom(),)))) as ws:
        result = ws.execute("test.noisy", {"path": "n.txt", "text": "x"})
    assert result.status == "applied"
    assert result.side_effects == {
        "log": "ok",
        "boom": "error: RuntimeError: webhook unreachable",
        "missing": "not registered",
    }
    assert git(store, "show", "HEAD:n.txt") == "x"


def test_every_python_file_an_action_writes_is_checked(store: Path) -> None:
    class WritePy(ActionType):
        api_name = "test.write_py"
        Params = TouchParams

        def apply(self, params: TouchParams, context: ActionContext) -> Change:
            return Change(edits={params.path: params.text.encode()})

    head = git(store, "rev-parse", "HEAD")
    with Workspace.open(store, plugins=make_manager(plugin_of((WritePy,)))) as ws:
        with pytest.raises(ValidationFailed) as info:
            ws.execute("test.write_py", {"path": "tools/x.py", "text": "def f(:\n"})
        assert [f.code for f in info.value.findings] == ["PC001"]
        ok = ws.execute("test.write_py", {"path": "tools/x.py", "text": "X = 1\n"})
    assert ok.status == "applied"
    assert git(store, "rev-parse", "HEAD^") == head


def test_greet_fixture_is_a_real_commit(store: Path) -> None:
    assert git(store, "show", "HEAD:procedures/greet/main.py") == GREET


def test_a_crashing_policy_plugin_denies(store: Path) -> None:
    """Governance fails closed: a policy that raises (or answers nonsense) is a DENY."""
    for answer in ("raise", "MAYBE"):
        plugin = types.SimpleNamespace()

        @hookimpl
        def proctor_policy(action: Any) -> Any:
            if answer == "raise":  # noqa: B023 - called inside this iteration
                raise RuntimeError("policy service down")
            return answer  # noqa: B023

        plugin.proctor_policy = proctor_policy  # type: ignore[attr-defined]
        head = git(store, "rev-parse", "HEAD")
        manager = make_manager(plugin)
        with Workspace.open(store, plugins=manager) as ws:
            result = ws.execute("procedure.update", {"name": "greet", "description": "x"})
        assert result.status == "denied", answer
        assert result.errors == ["policy plugin(s) test0 failed, so procedure.update is denied"]
        assert git(store, "rev-parse", "HEAD") == head
        if answer == "raise":
            assert manager.infos["test0"].error == (
                "proctor_policy: RuntimeError: policy service down"
            )


def test_an_action_cannot_start_a_nested_write(store: Path) -> None:
    """A nested write to the same branch would wait on its own lock: refused instead."""

    class Nested(ActionType):
        api_name = "test.nested"
        Params = TouchParams

        def apply(self, params: TouchParams, context: ActionContext) -> Change:
            with Workspace.open(store) as inner:
                inner.execute("procedure.update", {"name": "greet", "description": "inner"})
            return Change(edits={params.path: params.text.encode()})

    head = git(store, "rev-parse", "HEAD")
    with Workspace.open(store, plugins=make_manager(plugin_of((Nested,)))) as ws:
        with pytest.raises(StoreError, match="already in progress in this thread"):
            ws.execute("test.nested", {"path": "n.txt", "text": "x"})
    assert git(store, "rev-parse", "HEAD") == head
