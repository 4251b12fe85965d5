"""Durable side effects: the outbox, the webhook against a real receiver on 127.0.0.1, a
process killed between its commit and the delivery, and the before-commit veto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import GREET, IDENTITY, git, repo_state, run_cli
from effects_receiver import Receiver, free_port

from proctor import Workspace
from proctor.core.config import parse_config_text
from proctor.core.errors import ConfigError
from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import PluginInfo, PluginManager
from proctor.plugins import BUILTIN_PLUGINS
from proctor.plugins.side_effects.deliver import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)
from proctor.plugins.side_effects.outbox import Outbox
from proctor.plugins.side_effects.settings import effects

SECRET = "s3cret-for-tests"
ACTOR = "ana@example.com"


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)


def configure(repo: Path, url: str, **extra: Any) -> None:
    """Commit a proctor.toml with one webhook effect ``hook`` (and ``extra`` keys)."""
    lines = [
        "[side-effects.hook]",
        'type = "webhook"',
        f'url = "{url}"',
        'secret-env = "HOOK_SECRET"',
        "timeout = 2",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    (repo / "proctor.toml").write_text('entry-point = "run"\n\n' + "\n".join(lines) + "\n")
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "Configure a webhook")


def create(repo: Path, name: str) -> Any:
    with Workspace.open(repo, actor=ACTOR) as ws:
        return ws.execute("procedure.create", {"name": name, "code": GREET})


def outbox(repo: Path) -> Outbox:
    return Outbox(repo / ".git")


# -- delivered once, signed ----------------------------------------------------------------


def test_webhook_delivered_once_with_a_valid_signature(repo: Path) -> None:
    with Receiver() as receiver:
        configure(repo, receiver.url)
        result = create(repo, "greet")

        assert result.status == "applied"
        assert result.side_effects == {"hook": "delivered"}
        assert result.warnings == []
        assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert verify(SECRET.encode(), request.headers, request.body)
    assert request.headers[IDEMPOTENCY_HEADER] == f"{result.commit}:hook"
    body = json.loads(request.body)
    assert body["kind"] == "action.applied"
    assert body["action"] == "procedure.create"
    assert body["actor"] == ACTOR
    assert body["commit"] == result.commit == git(repo, "rev-parse", "HEAD").strip()
    assert body["correlation_id"] == result.correlation_id
    assert body["decision"] == "ALLOW_IMMEDIATE"
    assert body["proposal"] is None
    assert body["idempotency_key"] == f"{result.commit}:hook"
    # A receiver refuses a changed body, another secret, and an old (replayed) delivery.
    assert not verify(SECRET.encode(), request.headers, request.body + b" ")
    assert not verify(b"other", request.headers, request.body)
    stamp = int(request.headers[TIMESTAMP_HEADER])
    assert not verify(SECRET.encode(), request.headers, request.body, now=stamp + 301)
    assert request.headers[SIGNATURE_HEADER] == sign(SECRET.encode(), str(stamp), request.body)
    assert [d.state for d in outbox(repo).rows()] == ["delivered"]


def test_events_filter_chooses_the_kinds_and_actions_delivered(repo: Path) -> None:
    with Receiver() as receiver:
        configure(
            repo, receiver.url, events=["action.applied", "action.failed"], actions=["*.delete"]
        )
        create(repo, "greet")
        assert receiver.requests == []
        with Workspace.open(repo, actor=ACTOR) as ws:
            deleted = ws.execute("procedure.delete", {"name": "greet"})
        assert deleted.side_effects == {"hook": "delivered"}
        assert [json.loads(r.body)["action"] for r in receiver.requests] == ["procedure.delete"]


# -- a dead receiver, then retry -----------------------------------------------------------


def test_receiver_down_keeps_it_in_the_outbox_and_retry_delivers(repo: Path) -> None:
    port = free_port()
    configure(repo, f"http://127.0.0.1:{port}/hook", **{"max-attempts": 2})
    result = create(repo, "greet")

    assert result.status == "applied"
    assert result.exit_code == 0
    assert result.commit == git(repo, "rev-parse", "HEAD").strip()
    assert result.side_effects["hook"].startswith("pending: ")
    assert any("side effect hook" in w and "retry" in w for w in result.warnings)
    listed = run_cli("side-effects", "list", "--json", cwd=repo)
    assert listed.code == 0, listed.err
    [row] = json.loads(listed.out)
    assert (row["state"], row["key"], row["attempts"]) == ("pending", f"{result.commit}:hook", 2)

    down = run_cli("side-effects", "retry", cwd=repo)
    assert down.code == 1
    assert "pending" in down.out
    with Receiver(port=port) as receiver:
        retried = run_cli("side-effects", "retry", "--json", cwd=repo)
        assert retried.code == 0, retried.err
        assert [r["state"] for r in json.loads(retried.out)] == ["delivered"]
        assert receiver.keys() == [f"{result.commit}:hook"]
        assert verify(SECRET.encode(), receiver.requests[0].headers, receiver.requests[0].body)
        again = run_cli("side-effects", "retry", cwd=repo)
        assert (again.code, again.out.strip()) == (0, "nothing to deliver")
    assert len(receiver.requests) == 1


def test_the_next_write_delivers_what_is_pending(repo: Path) -> None:
    port = free_port()
    configure(repo, f"http://127.0.0.1:{port}/hook", **{"max-attempts": 1})
    first = create(repo, "first")
    assert first.side_effects["hook"].startswith("pending")
    [row] = outbox(repo).rows()
    # Make the pending row due now (a write waits for its backoff otherwise).
    import sqlite3

    with sqlite3.connect(outbox(repo).path) as db:
        db.execute("UPDATE deliveries SET next_at = 0 WHERE id = ?", (row.id,))
    with Receiver(port=port) as receiver:
        second = create(repo, "second")
        assert second.side_effects == {"hook": "delivered"}
        assert receiver.keys() == [f"{first.commit}:hook", f"{second.commit}:hook"]


def test_a_read_delivers_nothing(repo: Path) -> None:
    port = free_port()
    configure(repo, f"http://127.0.0.1:{port}/hook", **{"max-attempts": 1})
    create(repo, "greet")
    with Receiver(port=port) as receiver:
        assert run_cli("procedure", "list", cwd=repo).code == 0
        assert run_cli("side-effects", "list", cwd=repo).code == 0
        assert receiver.requests == []


# -- transient and permanent answers --------------------------------------------------------


def test_401_is_not_retried_and_only_an_explicit_retry_sends_it_again(repo: Path) -> None:
    with Receiver(script=[(401, {})]) as receiver:
        configure(repo, receiver.url, **{"max-attempts": 4})
        result = create(repo, "greet")
        assert result.side_effects["hook"] == f"failed: {receiver.url} answered 401"
        assert result.warnings == [
            f"side effect hook failed: {receiver.url} answered 401; the commit stands, "
            "and only `proctor side-effects retry` sends it again"
        ]
        assert len(receiver.requests) == 1
        assert [d.state for d in outbox(repo).rows()] == ["failed"]
        # The next write does not resend a refused delivery ...
        second = create(repo, "other")
        assert receiver.keys() == [f"{result.commit}:hook", f"{second.commit}:hook"]
        # ... an explicit retry does.
        retried = run_cli("side-effects", "retry", cwd=repo)
        assert retried.code == 0, retried.out + retried.err
        assert receiver.keys()[-1] == f"{result.commit}:hook"
        assert len(receiver.requests) == 3


def test_429_waits_what_retry_after_asks(repo: Path) -> None:
    with Receiver(script=[(429, {"Retry-After": "1"})]) as receiver:
        configure(repo, receiver.url)
        result = create(repo, "greet")
        assert result.side_effects == {"hook": "delivered"}
        first, second = receiver.requests
    assert second.at - first.at >= 1.0
    assert first.headers[IDEMPOTENCY_HEADER] == second.headers[IDEMPOTENCY_HEADER]


def test_retry_after_is_capped_and_5xx_is_retried(repo: Path) -> None:
    script = [(429, {"Retry-After": "120"}), (503, {}), (502, {})]
    with Receiver(script=script) as receiver:
        configure(repo, receiver.url, **{"max-attempts": 4, "max-retry-after": 0.5})
        start = time.monotonic()
        result = create(repo, "greet")
        elapsed = time.monotonic() - start
        assert result.side_effects == {"hook": "delivered"}
        assert len(receiver.requests) == 4
    gap = receiver.requests[1].at - receiver.requests[0].at
    assert 0.5 <= gap < 5
    assert elapsed < 30


# -- a process killed between the commit and the delivery -----------------------------------

KILLER = """
import os, signal, sys

from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import PluginInfo
from proctor.plugins import plugin_manager


class Killer:
    # Runs before every other event handler: the commit is published, nothing delivered.
    @hookimpl(tryfirst=True)
    def proctor_on_event(self, event):
        if event.kind == os.environ.get("KILL_ON", "action.applied"):
            os.kill(os.getpid(), signal.SIGKILL)


plugin_manager().register("killer", Killer(), PluginInfo(name="killer", module="killer"))
from proctor.cli import main

sys.exit(main(sys.argv[1:]))
"""


def run_killed(
    repo: Path, tmp_path: Path, *args: str, kill_on: str = "action.applied"
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY, "PROCTOR_NO_ENTRY_POINTS": "1", "KILL_ON": kill_on},
        timeout=120,
    )


def test_killed_after_the_commit_is_delivered_by_the_next_command(
    repo: Path, tmp_path: Path
) -> None:
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    with Receiver() as receiver:
        configure(repo, receiver.url)
        killed = run_killed(repo, tmp_path, "procedure", "create", "greet", "--code", str(code))
        assert killed.returncode == -9, killed.stderr
        commit = git(repo, "rev-parse", "HEAD").strip()
        assert "Create procedure greet" in git(repo, "log", "-1", "--format=%s")
        assert receiver.requests == []
        assert [d.state for d in outbox(repo).rows()] == ["prepared"]

        # The next write settles it first: the commit is found by its correlation id.
        other = run_cli("procedure", "create", "other", "--code", str(code), cwd=repo)
        assert other.code == 0, other.err
        assert receiver.keys() == [
            f"{commit}:hook",
            f"{git(repo, 'rev-parse', 'HEAD').strip()}:hook",
        ]
        body = json.loads(receiver.requests[0].body)
        assert (body["commit"], body["action"], body["status"]) == (
            commit,
            "procedure.create",
            "applied",
        )
        assert verify(SECRET.encode(), receiver.requests[0].headers, receiver.requests[0].body)
        assert run_cli("side-effects", "retry", cwd=repo).out.strip() == "nothing to deliver"
    assert len(receiver.requests) == 2


def test_killed_after_the_proposal_commit_is_delivered_by_the_next_command(
    repo: Path, tmp_path: Path
) -> None:
    """Policy sends creates to review; the process is killed once the proposal's own
    commit is written and before anything is delivered. Its ``action.proposed`` row was
    written before that commit, so the next command delivers it, keyed and shaped as the
    live event would have been, and never twice."""
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    with Receiver() as receiver:
        (repo / "proctor.toml").write_text(
            'entry-point = "run"\n\n'
            "[[policy.rules]]\n"
            'name = "creates are reviewed"\n'
            'actions = ["procedure.create"]\n'
            'decision = "REQUIRE_PROPOSAL"\n\n'
            "[side-effects.hook]\n"
            'type = "webhook"\n'
            f'url = "{receiver.url}"\n'
            'secret-env = "HOOK_SECRET"\n'
            'events = ["action.applied", "action.proposed"]\n'
        )
        git(repo, "add", "proctor.toml")
        git(repo, "commit", "-q", "-m", "Review creates, notify")
        killed = run_killed(
            repo,
            tmp_path,
            "procedure",
            "create",
            "greet",
            "--code",
            str(code),
            kill_on="action.proposed",
        )
        assert killed.returncode == -9, killed.stderr
        commit = git(repo, "rev-parse", "HEAD").strip()
        trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)")
        assert "Proctor-Action: proposal.create" in trailers
        [correlation] = [
            line.split(": ", 1)[1]
            for line in trailers.splitlines()
            if line.startswith("Proctor-Correlation-Id: ")
        ]
        [proposal] = [
            line.split(": ", 1)[1]
            for line in trailers.splitlines()
            if line.startswith("Proctor-Proposal: ")
        ]
        assert receiver.requests == []
        assert [(d.state, d.kind) for d in outbox(repo).rows()] == [("prepared", "action.proposed")]

        listed = run_cli("procedure", "list", cwd=repo)  # a read delivers nothing
        assert listed.code == 0 and receiver.requests == []
        other = run_cli("procedure", "create", "other", "--code", str(code), cwd=repo)
        assert other.code == 0, other.err  # proposed too: the next write settles the first
        request, own = receiver.requests
        assert own.headers[IDEMPOTENCY_HEADER] != request.headers[IDEMPOTENCY_HEADER]
        assert request.headers[IDEMPOTENCY_HEADER] == f"{correlation}:hook"
        assert verify(SECRET.encode(), request.headers, request.body)
        body = json.loads(request.body)
        assert (body["kind"], body["status"], body["action"]) == (
            "action.proposed",
            "proposed",
            "procedure.create",
        )
        assert (body["commit"], body["proposal"]) == (commit, proposal)
        assert body["decision"] == "REQUIRE_PROPOSAL"
        assert run_cli("side-effects", "retry", cwd=repo).out.strip() == "nothing to deliver"
    assert len(receiver.requests) == 2


def test_killed_after_the_commit_is_delivered_by_retry(repo: Path, tmp_path: Path) -> None:
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    with Receiver() as receiver:
        configure(repo, receiver.url)
        killed = run_killed(repo, tmp_path, "procedure", "create", "greet", "--code", str(code))
        assert killed.returncode == -9
        retried = run_cli("side-effects", "retry", "--json", cwd=repo)
        assert retried.code == 0, retried.err
        assert receiver.keys() == [f"{git(repo, 'rev-parse', 'HEAD').strip()}:hook"]


def test_a_prepared_row_whose_action_never_committed_is_dropped(repo: Path) -> None:
    with Receiver() as receiver:
        configure(repo, receiver.url)
        create(repo, "greet")
        base = git(repo, "rev-parse", "HEAD").strip()
        box = outbox(repo)
        box.prepare(
            effect="hook",
            kind="action.applied",
            correlation_id="never-committed",
            ref="",
            base=base,
            payload={"action": "procedure.create"},
            settings=effects(
                parse_config_text((repo / "proctor.toml").read_text(), "proctor.toml")
            )["hook"].to_json(),
        )
        notes = box.recover()
        assert notes == ["hook: never-committed never committed; dropped"]
        assert [d.state for d in box.rows()] == ["delivered"]
        assert len(receiver.requests) == 1


# -- the veto -------------------------------------------------------------------------------


class Approvals:
    """An approval service as a plugin: it vetoes deleting anything."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def proctor_before_commit(self, action: Any, params: Any, context: Any) -> Any:
        self.asked.append(action.api_name)
        if action.api_name == "procedure.delete":
            return "no approval ticket for this deletion"
        return None


def manager_with(name: str, plugin: object) -> PluginManager:
    manager = PluginManager()
    manager.load_builtins(table=BUILTIN_PLUGINS)
    manager.register(name, plugin, PluginInfo(name=name, module=f"tests.{name}"))
    return manager


def test_a_veto_denies_before_anything_is_written(repo: Path) -> None:
    approvals = Approvals()
    manager = manager_with("approvals", approvals)
    with Receiver() as receiver:
        configure(repo, receiver.url, events=["action.applied"])
        with Workspace.open(repo, actor=ACTOR, plugins=manager) as ws:
            ws.execute("procedure.create", {"name": "greet", "code": GREET})
            before = repo_state(repo)
            result = ws.execute("procedure.delete", {"name": "greet"})
        assert result.status == "denied"
        assert result.exit_code == 1
        assert result.commit is None
        assert result.errors == [
            "procedure.delete vetoed by plugin 'approvals': no approval ticket for this deletion"
        ]
        assert repo_state(repo) == before
        assert approvals.asked == ["procedure.create", "procedure.delete"]
        # The outbox keeps nothing for the vetoed action, and nothing was sent for it.
        assert [d.payload["action"] for d in outbox(repo).rows()] == ["procedure.create"]
        assert len(receiver.requests) == 1


class Broken:
    @hookimpl
    def proctor_before_commit(self, action: Any, params: Any, context: Any) -> Any:
        raise RuntimeError("approval service unreachable")


class Odd:
    @hookimpl
    def proctor_before_commit(self, action: Any, params: Any, context: Any) -> Any:
        return 42


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (Broken(), "it failed (RuntimeError: approval service unreachable)"),
        (Odd(), "it failed (ValueError: not a veto: 42)"),
    ],
    ids=["raises", "not-a-veto"],
)
def test_a_failing_before_commit_plugin_denies(repo: Path, plugin: object, reason: str) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    before = repo_state(repo)
    with Workspace.open(repo, actor=ACTOR, plugins=manager_with("gate", plugin)) as ws:
        result = ws.execute("procedure.create", {"name": "greet", "code": GREET})
    assert result.status == "denied"
    assert result.errors == [f"procedure.create vetoed by plugin 'gate': {reason}"]
    assert repo_state(repo) == before


class BrokenOutbox:
    @hookimpl
    def proctor_before_propose(self, action: Any, params: Any, context: Any) -> None:
        raise OSError("no space left on device")


def test_a_failing_before_propose_plugin_denies_and_writes_no_proposal(repo: Path) -> None:
    """What must be recorded before a proposal's commit could not be: the action is
    denied (fail closed), and no proposal commit is made."""
    (repo / "proctor.toml").write_text(
        '[[policy.rules]]\nname = "review"\nactions = ["procedure.create"]\n'
        'decision = "REQUIRE_PROPOSAL"\n'
    )
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "review creates")
    before = repo_state(repo)
    with Workspace.open(repo, actor=ACTOR, plugins=manager_with("box", BrokenOutbox())) as ws:
        result = ws.execute("procedure.create", {"name": "greet", "code": GREET})
    assert result.status == "denied" and result.proposal is None
    assert result.errors == [
        "procedure.create vetoed by plugin 'box': it failed (OSError: no space left on device)"
    ]
    assert repo_state(repo) == before


def test_the_cli_exits_1_with_the_reason_of_a_veto(repo: Path, tmp_path: Path) -> None:
    """A webhook table with the secret written in is refused before the commit."""
    (repo / "proctor.toml").write_text(
        '[side-effects.hook]\nurl = "http://127.0.0.1:9/x"\nsecret = "oops"\n'
    )
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "A bad table")
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    before = repo_state(repo)
    proc = run_cli("procedure", "create", "greet", "--code", str(code), cwd=repo)
    assert proc.code == 1
    assert "never commit the secret" in proc.err
    assert "Traceback" not in proc.err
    assert repo_state(repo) == before


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url = "http://x.invalid"\nsecret = "s"', "never commit the secret"),
        ('url = "ftp://x.invalid"\nsecret-env = "S"', "expected an http(s) URL"),
        ('url = "http://x.invalid"', "name the environment variable"),
        ('url = "http://x.invalid"\nsecret-env = "S"\ntimout = 3', "unknown key(s) timout"),
        ('type = "email"', "expected one of webhook, log"),
        ('url = "http://x.invalid"\nsecret-env = "S"\ntimeout = -1', "expected a number"),
    ],
)
def test_bad_tables_are_clear_errors(table: str, message: str) -> None:
    text = f"[side-effects.hook]\n{table}\n"
    if "type" not in table:
        text = text.replace("[side-effects.hook]", '[side-effects.hook]\ntype = "webhook"')
    config = parse_config_text(text, "proctor.toml")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        effects(config)


def test_log_effect_is_a_durable_log_line(repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    (repo / "proctor.toml").write_text('[side-effects.log]\nevents = ["action.*"]\n')
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "Log every action")
    with caplog.at_level("INFO", logger="proctor.side_effects"):
        result = create(repo, "greet")
    assert result.side_effects == {"log": "delivered"}
    lines = [r.getMessage() for r in caplog.records if r.name == "proctor.side_effects"]
    assert any(
        f"procedure.create applied by {ACTOR} commit={result.commit}" in line for line in lines
    )
