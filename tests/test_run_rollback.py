"""Auto-rollback: a current release whose success rate falls below the threshold is
rolled back to the release before it through ``Workspace.execute`` (so policy decides),
once, and the run result and an event say so. Real sandboxed runs; a small window
(``[runs.rollback]``) keeps the tests short."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import git
from runs_helpers import GREET, create, event_manager, greet_metadata, make_store

from proctor import Workspace
from proctor.core.events import ActionEvent, RollbackEvent

FAILING = GREET.replace('return "Hello, " + name + punctuation', 'raise RuntimeError("broken")')
WINDOW = "[runs.rollback]\nwindow = 4\nmin-runs = 3\nthreshold = 0.5\n"


def two_releases(repo: Path, config: str = "") -> None:
    """greet 0.1.0 works; 0.1.1, the current release, always raises."""
    make_store(repo, WINDOW + config)
    create(repo, "greet", GREET, greet_metadata(), release=True)
    create(repo, "greet", FAILING, greet_metadata(), release=True)


def tags(repo: Path) -> list[str]:
    return git(repo, "tag", "--sort=v:refname").split()


def test_a_failing_release_is_rolled_back_once(repo: Path) -> None:
    two_releases(repo)
    seen: list[object] = []
    with Workspace.open(repo, plugins=event_manager(seen)) as ws:
        first, second = (ws.run("greet", {"name": "a"}) for _ in range(2))
        assert first.rollback is None and second.rollback is None  # under min-runs
        third = ws.run("greet", {"name": "a"})
    assert third.status == "error" and third.version == "0.1.1"
    rollback = third.rollback
    assert rollback is not None
    assert (rollback.release, rollback.to, rollback.outcome) == ("0.1.1", "0.1.0", "applied")
    assert (rollback.runs, rollback.success_rate) == (3, 0.0)
    assert "rolled back to v0.1.0" in rollback.describe()
    assert tags(repo) == [f"procedures/greet/v0.1.{v}" for v in (0, 1, 2)]
    restored = git(repo, "show", "procedures/greet/v0.1.2:procedures/greet/main.py")
    assert restored == GREET
    # The commit went through the engine: its trailers say who and why.
    log = git(repo, "log", "-1", "--format=%s%n%(trailers)")
    assert "Proctor-Action: procedure.rollback" in log and "Proctor-Actor: " in log

    events = [e for e in seen if isinstance(e, RollbackEvent)]
    assert len(events) == 1 and events[0].kind == "run.rollback"
    assert (events[0].outcome, events[0].run_id) == ("applied", third.run_id)
    actions = [e for e in seen if isinstance(e, ActionEvent)]
    assert [e.action for e in actions] == ["procedure.rollback"]

    with Workspace.open(repo) as ws:
        # The default now runs the restored release; the failing one is no longer current.
        assert ws.run("greet", {"name": "b"}).value == "Hello, b!"
        again = ws.run("greet", {"name": "b"}, version="0.1.1")
    assert again.status == "error" and again.rollback is None
    assert len(tags(repo)) == 3
    with sqlite3.connect(repo / ".git/proctor/runs.sqlite") as db:
        rows = db.execute("SELECT release, to_release, outcome FROM proctor_rollbacks").fetchall()
    assert rows == [("0.1.1", "0.1.0", "applied")]


@pytest.mark.parametrize("decision", ["DENY", "REQUIRE_PROPOSAL"])
def test_policy_decides_and_a_release_is_judged_once(repo: Path, decision: str) -> None:
    two_releases(repo, f'\n[policy]\n"procedure.rollback" = "{decision}"\n')
    head = git(repo, "rev-parse", "HEAD")
    with Workspace.open(repo) as ws:
        records = [ws.run("greet", {"name": "a"}) for _ in range(4)]
    rollback = records[2].rollback
    assert rollback is not None
    if decision == "DENY":
        assert rollback.outcome == "denied"
        assert git(repo, "rev-parse", "HEAD") == head
    else:
        # One commit adding the proposal file, and nothing else: the release stays
        # current until someone approves the rollback.
        assert rollback.outcome == "proposed" and rollback.proposal
        assert git(repo, "rev-parse", "HEAD~1") == head
        added = git(repo, "diff", "--name-status", head.strip(), "HEAD").split()
        assert added == ["A", f"proposals/{rollback.proposal}.json"]
        with Workspace.open(repo) as ws:
            proposal = ws.get_proposal(rollback.proposal)
        assert (proposal.status, proposal.action, proposal.version) == (
            "pending",
            "procedure.rollback",
            1,
        )
    assert records[3].rollback is None  # once per release, whatever the outcome
    assert tags(repo) == ["procedures/greet/v0.1.0", "procedures/greet/v0.1.1"]


def test_a_healthy_release_and_a_disabled_rollback_stay(repo: Path) -> None:
    make_store(repo, WINDOW.replace("threshold = 0.5", "threshold = 0.5\nenabled = false"))
    create(repo, "greet", GREET, greet_metadata(), release=True)
    create(repo, "greet", FAILING, greet_metadata(), release=True)
    with Workspace.open(repo) as ws:
        assert all(ws.run("greet", {"name": "a"}).rollback is None for _ in range(3))
    assert len(tags(repo)) == 2


def test_the_first_release_has_nothing_to_roll_back_to(repo: Path) -> None:
    make_store(repo, WINDOW)
    create(repo, "greet", FAILING, greet_metadata(), release=True)
    with Workspace.open(repo) as ws:
        records = [ws.run("greet", {"name": "a"}) for _ in range(4)]
    rollback = records[2].rollback
    assert rollback is not None and rollback.outcome == "skipped" and rollback.to is None
    assert "no earlier release" in rollback.describe()
    assert records[3].rollback is None
    assert tags(repo) == ["procedures/greet/v0.1.0"]
