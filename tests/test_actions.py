"""The action pipeline: its steps, criteria re-run after a lost race, side effects and event
handlers that fail, code checks, the proposal seam, and what callers cannot spoof."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from conftest import GREET, git

from proctor import (
    ActionContext,
    ActionEvent,
    ActionType,
    Change,
    CustomCriterion,
    Params,
    Workspace,
    hookimpl,
)
from proctor.core.errors import ConcurrencyError, StoreError, ValidationFailed
from proctor.core.plugins import PluginInfo, PluginManager
from proctor.engine.pipeline import ProposalReceipt, ProposalRequest


class TouchParams(Params):
    path: str
    text: str


def make_manager(*plugins: object, disabled: frozenset[str] = frozenset()) -> PluginManager:
    manager = PluginManager()
    manager.load_builtins(set(disabled))
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
        calls.setdefault("tips", []).append(context.require_snapshot().commit)  # type: ignore[attr-defined]

    class Touch(ActionType):
        api_name = "test.touch"
        Params = TouchParams
        criteria = (CustomCriterion(criterion),)

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
        side_effects = ("boom", "missing")

        def apply(self, params: TouchParams, context: ActionContext) -> Change:
            return Change(edits={params.path: params.text.encode()})

    with Workspace.open(store, plugins=make_manager(plugin_of((Noisy,), (Boom(),)))) as ws:
        result = ws.execute("test.noisy", {"path": "n.txt", "text": "x"})
    assert result.status == "applied"
    assert result.side_effects == {
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
        assert manager.infos["test0"].error == (
            "proctor_policy: RuntimeError: policy service down"
            if answer == "raise"
            else "proctor_policy: ValueError: not a governance decision: 'MAYBE'"
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


# -- what the pipeline does not let a caller change --------------------------------------------


def policy_plugin(answer: str) -> object:
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_policy(action: Any) -> Any:
        return answer

    plugin.proctor_policy = proctor_policy  # type: ignore[attr-defined]
    return plugin


@pytest.mark.parametrize("answer", ["ALLOW_IMMEDIATE", "DENY"])
def test_caller_metadata_cannot_spoof_the_policy_outcome(store: Path, answer: str) -> None:
    """``metadata`` is the caller's: a key the engine once used as a side channel for
    failed policy plugins changes neither the decision nor the message."""
    head = git(store, "rev-parse", "HEAD")
    manager = make_manager(policy_plugin(answer))
    spoof = {"policy_failures": ["policy"], "decision": "DENY", "proposal": "p-1"}
    with Workspace.open(store, plugins=manager, actor="ana@example.com") as ws:
        result = ws.execute(
            "procedure.update", {"name": "greet", "description": "x"}, metadata=spoof
        )
    assert result.decision == answer
    if answer == "DENY":
        assert result.status == "denied"
        assert result.errors == ["policy denies procedure.update for ana@example.com"]
        assert git(store, "rev-parse", "HEAD") == head
    else:
        assert result.status == "applied" and result.errors == []
        assert result.proposal is None
        assert "Proctor-Proposal" not in git(store, "log", "-1", "--format=%B")


class Proposals:
    def __init__(self) -> None:
        self.requests: list[ProposalRequest] = []

    def propose(self, request: ProposalRequest) -> ProposalReceipt:
        self.requests.append(request)
        return ProposalReceipt(proposal="p-0001")


def test_require_proposal_goes_to_the_installed_handler(store: Path) -> None:
    head = git(store, "rev-parse", "HEAD")
    # Without the proposal actions (the built-in "proposals" disabled) nothing can move a
    # proposal, so none is recorded.
    manager = make_manager(policy_plugin("REQUIRE_PROPOSAL"), disabled=frozenset({"proposals"}))
    with Workspace.open(store, plugins=manager) as ws:
        assert ws.engine.proposals is None
        off = ws.execute("procedure.update", {"name": "greet", "description": "x"})
        handler = Proposals()
        ws.engine.proposals = handler
        on = ws.execute("procedure.update", {"name": "greet", "description": "x"})

    assert (off.status, off.decision, off.proposal) == ("failed", "REQUIRE_PROPOSAL", None)
    assert off.errors == [
        "policy requires a proposal for procedure.update, and proposals are not enabled in "
        "this store"
    ]
    assert (on.status, on.decision, on.proposal) == ("proposed", "REQUIRE_PROPOSAL", "p-0001")
    assert on.exit_code == 0 and off.exit_code == 1
    [request] = handler.requests
    assert request.api_name == "procedure.update"
    assert request.params.description == "x"  # type: ignore[attr-defined]
    assert request.base == head.strip()
    assert git(store, "rev-parse", "HEAD") == head  # nothing written by the engine


def event_plugin(seen: list[Any], fail: bool = False) -> object:
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_on_event(event: Any) -> None:
        seen.append(event)
        if fail:
            raise RuntimeError("metrics endpoint down")

    plugin.proctor_on_event = proctor_on_event  # type: ignore[attr-defined]
    return plugin


def test_every_outcome_is_one_event(store: Path) -> None:
    seen: list[ActionEvent] = []
    calls = {"criteria": 0, "apply": 0}
    manager = make_manager(
        event_plugin(seen),
        racing_plugin(store, calls, "mine.txt"),
        policy_plugin("ALLOW_IMMEDIATE"),
    )
    with Workspace.open(store, plugins=manager) as ws:
        applied = ws.execute("procedure.update", {"name": "greet", "description": "new"})
        with pytest.raises(ValidationFailed):
            ws.execute("procedure.update", {"name": "greet", "bogus": 1})
        with pytest.raises(ConcurrencyError):
            ws.execute("test.touch", {"path": "mine.txt", "text": "mine"})
        with pytest.raises(Exception, match="unknown action"):
            ws.execute("no.such", {})

    assert [e.kind for e in seen] == [
        "action.applied",
        "action.failed",
        "action.failed",
        "action.failed",
    ]
    assert all(isinstance(e, ActionEvent) for e in seen)
    assert seen[0].commit == applied.commit == git(store, "rev-parse", "HEAD~1").strip()
    assert seen[0].correlation_id == applied.correlation_id
    assert "bogus" in seen[1].errors[0] and seen[1].decision is None
    assert seen[2].action == "test.touch" and seen[2].decision == "ALLOW_IMMEDIATE"
    assert seen[3].action == "no.such"


def test_an_action_that_crashes_is_announced_and_still_raises(store: Path) -> None:
    class Crashes(ActionType):
        api_name = "test.crashes"
        Params = TouchParams

        def apply(self, params: TouchParams, context: ActionContext) -> Change:
            raise RuntimeError("a bug in the action")

    seen: list[ActionEvent] = []
    head = git(store, "rev-parse", "HEAD")
    manager = make_manager(event_plugin(seen), plugin_of((Crashes,)))
    with Workspace.open(store, plugins=manager) as ws, pytest.raises(RuntimeError, match="bug"):
        ws.execute("test.crashes", {"path": "x", "text": "y"})
    [event] = seen
    assert (event.kind, event.decision) == ("action.failed", "ALLOW_IMMEDIATE")
    assert event.errors == ("RuntimeError: a bug in the action",)
    assert git(store, "rev-parse", "HEAD") == head


def test_a_failing_event_handler_is_a_warning_on_the_result(store: Path) -> None:
    seen: list[Any] = []
    manager = make_manager(event_plugin(seen, fail=True), event_plugin(seen))
    with Workspace.open(store, plugins=manager) as ws:
        result = ws.execute("procedure.update", {"name": "greet", "description": "kept"})
    assert result.status == "applied"
    assert result.commit == git(store, "rev-parse", "HEAD").strip()
    assert result.warnings == [
        "event handler of plugin 'test0' failed: RuntimeError: metrics endpoint down"
    ]
    assert len(seen) == 2  # the other handler still ran
    assert result.to_json()["warnings"] == result.warnings
    assert manager.infos["test0"].error == "proctor_on_event: RuntimeError: metrics endpoint down"


def test_the_old_names_still_work_and_say_so(store: Path) -> None:
    import proctor.engine.criteria as criteria

    with pytest.warns(DeprecationWarning, match="CustomCriterion"):
        assert criteria.CustomValidator is CustomCriterion
    context = ActionContext(actor="ana@example.com")
    with pytest.raises(RuntimeError, match="inside the pipeline"):
        context.require_snapshot()
    with pytest.warns(DeprecationWarning, match="require_snapshot"), pytest.raises(RuntimeError):
        context.tip()
