"""Proposals: a gated action becomes one commit adding ``proposals/<id>.json``; approvals
are bound to content; the last one applies the change on the current tip in one commit;
a conflicting tip fails the proposal with nothing half-applied; every transition bumps
the version and a stale one is a conflict (exit 3); two processes giving the last
approval at once apply it exactly once. Real git repositories, the CLI as real
subprocesses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, GREET, IDENTITY, git, repo_state, run_cli

from proctor import Workspace
from proctor.core.errors import ConcurrencyError, NotFoundError, UsageError, ValidationFailed

POLICY = """\
[policy]
"procedure.delete" = "REQUIRE_PROPOSAL"

[policy.roles]
"bob@example.com" = ["maintainer"]
"carol@example.com" = ["maintainer"]
"dave@example.com" = ["maintainer"]

[[policy.rules]]
name = "two maintainers"
actions = ["procedure.update"]
decision = "REQUIRE_PROPOSAL"
approvals = 2
approvers = ["role:maintainer"]
"""

ANA, BOB, CAROL, DAVE, EVE = (f"{n}@example.com" for n in ("ana", "bob", "carol", "dave", "eve"))


@pytest.fixture
def gated(repo: Path) -> Path:
    """A store with the policy above committed and procedure ``greet``."""
    (repo / "proctor.toml").write_text(POLICY)
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "policy")
    with Workspace.open(repo, actor=ANA) as ws:
        ws.execute("procedure.create", {"name": "greet", "code": GREET, "description": "Greets"})
    return repo


def propose_update(repo: Path, description: str = "Greets people") -> str:
    with Workspace.open(repo, actor=ANA) as ws:
        result = ws.execute("procedure.update", {"name": "greet", "description": description})
    assert result.status == "proposed" and result.proposal, result
    return result.proposal


def stored(repo: Path, proposal_id: str, rev: str = "HEAD") -> dict[str, object]:
    return json.loads(git(repo, "show", f"{rev}:proposals/{proposal_id}.json"))  # type: ignore[no-any-return]


def trailers(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    out = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def description(repo: Path, rev: str = "HEAD") -> str:
    return json.loads(git(repo, "show", f"{rev}:procedures/greet/metadata.json"))["description"]  # type: ignore[no-any-return]


def test_a_gated_action_is_one_commit_adding_the_pending_proposal(gated: Path) -> None:
    base = git(gated, "rev-parse", "HEAD").strip()
    first = propose_update(gated)
    second = propose_update(gated, "Greets everyone")
    assert sorted([second, first]) == [first, second]  # ids sort by time
    assert git(gated, "rev-list", "--count", f"{base}..HEAD").strip() == "2"
    assert git(gated, "diff", "--name-status", base, "HEAD~1").split() == [
        "A",
        f"proposals/{first}.json",
    ]
    data = stored(gated, first)
    assert {k: data[k] for k in ("status", "version", "base", "required_approvals")} == {
        "status": "pending",
        "version": 1,
        "base": base,
        "required_approvals": 2,
    }
    assert data["action"] == "procedure.update" and data["created_by"] == ANA
    assert data["params"]["description"] == "Greets people"  # type: ignore[index]
    assert str(data["content_hash"]).startswith("sha256:")
    assert data["approvers"] == [["role:maintainer"]]
    assert trailers(gated, "HEAD~1") | {"Proctor-Correlation-Id": ""} == {
        "Proctor-Action": "proposal.create",
        "Proctor-Actor": ANA,
        "Proctor-Correlation-Id": "",
        "Proctor-Proposal": first,
        "Proctor-Proposed-Action": "procedure.update",
        "Proctor-Policy": "REQUIRE_PROPOSAL",
        "Proctor-Policy-Commit": base,
        "Proctor-Policy-Rule": "policy.rules[0] two maintainers",
    }
    assert description(gated) == "Greets"  # nothing applied
    assert git(gated, "status", "--porcelain") == ""


def test_the_last_approval_applies_the_change_in_one_commit(gated: Path) -> None:
    pid = propose_update(gated)
    with Workspace.open(gated, actor=BOB) as ws:
        one = ws.approve(pid, "looks right")
    assert (one.status, one.proposal.version, len(one.proposal.approvals())) == ("pending", 2, 1)
    assert description(gated) == "Greets"
    tip = git(gated, "rev-parse", "HEAD").strip()
    with Workspace.open(gated, actor=CAROL) as ws:
        two = ws.approve(pid)
    assert (two.status, two.proposal.version) == ("applied", 3)
    assert two.proposal.result == {"applied_on": tip, "by": CAROL}
    # One commit: the edit and the proposal's new status together.
    assert git(gated, "rev-parse", "HEAD~1").strip() == tip
    assert sorted(git(gated, "diff", "--name-only", tip, "HEAD").split()) == [
        "procedures/greet/metadata.json",
        f"proposals/{pid}.json",
    ]
    assert description(gated) == "Greets people"
    assert stored(gated, pid)["status"] == "applied"
    found = trailers(gated)
    assert {k: found[k] for k in found if k != "Proctor-Correlation-Id"} == {
        "Proctor-Action": "proposal.approve",
        "Proctor-Actor": CAROL,
        "Proctor-Policy": "ALLOW_IMMEDIATE",
        "Proctor-Policy-Commit": tip,
        "Proctor-Policy-Rule": "default",
        "Proctor-Applied-Policy": "REQUIRE_PROPOSAL",
        "Proctor-Applied-Policy-Rule": "policy.rules[0] two maintainers",
        "Proctor-Proposed-By": ANA,
        "Proctor-Proposal": pid,
        "Proctor-Proposed-Action": "procedure.update",
        "Proctor-Proposal-Status": "applied",
        "Proctor-Proposal-Version": "3",
    }
    assert git(gated, "status", "--porcelain") == ""
    # Governance is auditable from git log alone.
    log = git(gated, "log", "--format=%(trailers:key=Proctor-Action,valueonly)", f"--grep={pid}")
    assert [line for line in log.splitlines() if line.strip()] == [
        "proposal.approve",
        "proposal.approve",
        "proposal.create",
    ]


def test_bad_input_is_one_clear_error_and_no_change(gated: Path) -> None:
    pid = propose_update(gated)
    with Workspace.open(gated, actor=BOB) as ws:
        ws.approve(pid)
    before = repo_state(gated)
    cases: list[tuple[str, tuple[str, ...], int, str]] = [
        (ANA, ("approve", pid), 2, f"{ANA} proposed {pid} and cannot approve it"),
        (BOB, ("approve", pid), 2, f"{BOB} has already approved {pid}"),
        (
            EVE,
            ("approve", pid),
            2,
            f"{EVE} may not approve {pid}: its approvers are one of role:maintainer",
        ),
        (
            BOB,
            ("approve", "20990101-000000-000000-abcdef"),
            2,
            "no proposal 20990101-000000-000000-abcdef",
        ),
        (BOB, ("approve", "../../etc"), 2, "is not a proposal id"),
        (BOB, ("reject", pid, "-m", ""), 2, "comment is required"),
        (EVE, ("withdraw", pid), 2, f"only its proposer ({ANA}) can withdraw {pid}"),
        (BOB, ("apply", pid), 2, f"proposal {pid} has 1 of the 2 approval(s) it needs"),
        (BOB, ("approve", pid, "--expect-version", "1"), 3, "is at version 2 (pending), not 1"),
    ]
    for actor, args, code, message in cases:
        run = run_cli("proposal", *args, "--actor", actor, cwd=gated)
        assert (run.code, run.out) == (code, ""), (args, run)
        assert run.err.startswith("error: ") and message in run.err, (args, run.err)
        assert "Traceback" not in run.err
        assert repo_state(gated) == before, args


def test_a_broken_proposal_file_and_closed_proposals_are_refused(gated: Path) -> None:
    pid = propose_update(gated)
    withdrawn = propose_update(gated, "Other")
    with Workspace.open(gated, actor=ANA) as ws:
        assert ws.withdraw(withdrawn).status == "withdrawn"
    with Workspace.open(gated, actor=BOB) as ws:
        rejected = ws.reject(propose_update(gated, "Third"), "not this way")
    assert rejected.status == "rejected"
    assert rejected.proposal.reviews[-1].comment == "not this way"
    # A hand edit that breaks the file, committed with plain git.
    (gated / f"proposals/{pid}.json").write_text('{"id": "' + pid + '", "status": ')
    git(gated, "commit", "-qam", "hand edit")
    before = repo_state(gated)
    with Workspace.open(gated, actor=BOB) as ws:
        with pytest.raises(ValidationFailed, match=f"proposals/{pid}.json is not valid JSON"):
            ws.approve(pid)
        for closed, status in ((withdrawn, "withdrawn"), (rejected.proposal.id, "rejected")):
            with pytest.raises(
                UsageError, match=f"is {status}; only a pending proposal can be applied"
            ):
                ws.apply_proposal(closed)
            with pytest.raises(
                UsageError, match=f"is {status}; only a pending proposal can be approved"
            ):
                ws.approve(closed)
        with pytest.raises(NotFoundError):
            ws.get_proposal("20990101-000000-000000-abcdef")
        listing = ws.list_proposals()
        assert [p.status for p in listing.proposals] == ["withdrawn", "rejected"]
        assert list(listing.broken) == [f"proposals/{pid}.json"]
        with pytest.raises(UsageError, match="unknown status"):
            ws.list_proposals("merged")
    assert repo_state(gated) == before
    listed = run_cli("proposal", "list", cwd=gated)
    assert listed.code == 0 and f"warning: proposals/{pid}.json is not valid JSON" in listed.err


def test_an_edit_voids_earlier_approvals(gated: Path) -> None:
    pid = propose_update(gated)
    with Workspace.open(gated, actor=BOB) as ws:
        first_hash = ws.approve(pid).proposal.content_hash
    with Workspace.open(gated, actor=ANA) as ws:
        edited = ws.edit_proposal(pid, {"name": "greet", "description": "Greets kindly"}, "wording")
    assert (edited.status, edited.proposal.version) == ("pending", 3)
    assert edited.proposal.content_hash != first_hash
    assert edited.proposal.approvals() == [] and len(edited.proposal.void_approvals()) == 1
    with Workspace.open(gated, actor=CAROL) as ws:
        assert ws.approve(pid).status == "pending"  # bob's approval no longer counts
    with Workspace.open(gated, actor=BOB) as ws:
        assert ws.approve(pid).status == "applied"  # bob approves what he now sees
    assert description(gated) == "Greets kindly"
    shown = run_cli("proposal", "show", pid, cwd=gated)
    assert "(void: given to earlier content)" in shown.out


def test_an_edit_of_a_release_message_voids_earlier_approvals(gated: Path) -> None:
    """A release's notes are part of what was reviewed: the content hash covers the
    tag's message, so changing only the message voids the approvals given before."""
    (gated / "proctor.toml").write_text(
        POLICY + '\n[[policy.rules]]\nname = "releases"\n'
        'actions = ["procedure.release"]\ndecision = "REQUIRE_PROPOSAL"\napprovals = 2\n'
        'approvers = ["role:maintainer"]\n'
    )
    git(gated, "commit", "-qam", "releases need two")
    with Workspace.open(gated, actor=ANA) as ws:
        result = ws.execute("procedure.release", {"name": "greet", "message": "reviewed"})
    assert result.status == "proposed" and result.proposal
    pid = result.proposal
    with Workspace.open(gated, actor=BOB) as ws:
        first_hash = ws.approve(pid).proposal.content_hash
    with Workspace.open(gated, actor=ANA) as ws:
        edited = ws.edit_proposal(pid, {"name": "greet", "message": "CHANGED"}, "notes")
    assert edited.proposal.content_hash != first_hash
    assert edited.proposal.approvals() == []
    with Workspace.open(gated, actor=CAROL) as ws:
        assert ws.approve(pid).status == "pending"  # bob's approval was for other notes
    assert git(gated, "tag", "--list", "procedures/greet/*") == ""


def test_a_conflicting_tip_fails_the_proposal_with_nothing_half_applied(gated: Path) -> None:
    pid = propose_update(gated)
    with Workspace.open(gated, actor=BOB) as ws:
        ws.approve(pid)
    # Someone changes the procedure the proposal touches, directly (a maintainer may
    # update code without review? not here: the config lets create/update of code go
    # through a plain git commit, outside proctor).
    meta = json.loads((gated / "procedures/greet/metadata.json").read_text())
    meta["category"] = "moved"
    (gated / "procedures/greet/metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    git(gated, "commit", "-qam", "direct edit")
    tip = git(gated, "rev-parse", "HEAD").strip()
    with Workspace.open(gated, actor=CAROL) as ws:
        outcome = ws.approve(pid)
    assert outcome.status == "failed"
    error = str((outcome.proposal.result or {})["error"])
    assert "procedures/greet/metadata.json changed since the proposal's base" in error
    # One commit, holding the proposal file alone: the procedure is as the tip had it.
    assert git(gated, "diff", "--name-only", tip, "HEAD").split() == [f"proposals/{pid}.json"]
    assert (
        json.loads(git(gated, "show", "HEAD:procedures/greet/metadata.json"))["category"] == "moved"
    )
    assert description(gated) == "Greets"
    assert trailers(gated)["Proctor-Proposal-Status"] == "failed"


def test_policy_and_validators_run_again_on_the_tip(gated: Path) -> None:
    with Workspace.open(gated, actor=ANA) as ws:
        deleting = ws.execute("procedure.delete", {"name": "greet"}).proposal
    assert deleting
    # The policy changes after the proposal: deletes are denied now.
    text = POLICY.replace('"procedure.delete" = "REQUIRE_PROPOSAL"', '"procedure.delete" = "DENY"')
    with Workspace.open(gated, actor=ANA) as ws:
        assert ws.execute("config.update", {"text": text}).status == "applied"
    with Workspace.open(gated, actor=BOB) as ws:
        outcome = ws.approve(deleting)
    assert outcome.status == "failed"
    assert "the current policy denies procedure.delete" in str(outcome.proposal.result)
    assert (gated / "procedures/greet/main.py").exists()
    # Code that passes the checks when proposed but not under the checks on the tip.
    code = GREET.replace("def run", "import json\n\n\ndef run")
    with Workspace.open(gated, actor=ANA) as ws:
        pid = ws.propose("procedure.update", {"name": "greet", "code": code}).proposal
    assert pid
    strict = text + '\n[safety]\nallowed-imports = ["math"]\n'
    with Workspace.open(gated, actor=ANA) as ws:
        assert ws.execute("config.update", {"text": strict}).status == "applied"
    with Workspace.open(gated, actor=BOB) as ws:
        assert ws.approve(pid).status == "pending"
        outcome = ws.approve(pid, actor=CAROL)
    assert outcome.status == "failed" and "json" in str(outcome.proposal.result)
    assert "import json" not in (gated / "procedures/greet/main.py").read_text()


def test_show_renders_the_diff_and_the_findings_plain_when_piped(gated: Path) -> None:
    pid = propose_update(gated)
    run = run_cli("proposal", "show", pid, cwd=gated)
    assert run.code == 0, run
    assert "\x1b[" not in run.out
    assert f"proposal {pid}: pending (version 1)" in run.out
    assert "approvals: 0 of 2, by one of role:maintainer" in run.out
    assert '-  "description": "Greets",\n+  "description": "Greets people",' in run.out
    assert "findings: none" in run.out
    data = json.loads(run_cli("proposal", "show", pid, "--json", cwd=gated).out)
    assert data["hash_matches"] is True and data["findings"] == [] and data["moved"] == []
    assert data["proposal"]["id"] == pid


def test_a_stale_version_is_a_concurrency_error(gated: Path) -> None:
    pid = propose_update(gated)
    with Workspace.open(gated, actor=BOB) as ws:
        ws.approve(pid)
        with pytest.raises(ConcurrencyError) as err:
            ws.withdraw(pid, version=1, actor=ANA)
    assert err.value.exit_code == 3
    assert (err.value.expected, err.value.actual) == ("version 1", "version 2")


def approve_process(repo: Path, actor: str, pid: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "proctor"),
            "proposal",
            "approve",
            pid,
            "--expect-version",
            "2",
            "--actor",
            actor,
            "--json",
        ],
        cwd=repo,
        env={**__import__("os").environ, **IDENTITY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_giving_the_last_approval_apply_it_exactly_once(gated: Path) -> None:
    for round_ in range(3):
        pid = propose_update(gated, f"Round {round_}")
        with Workspace.open(gated, actor=BOB) as ws:
            assert ws.approve(pid).proposal.version == 2
        racers = [approve_process(gated, actor, pid) for actor in (CAROL, DAVE)]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in racers]  # type: ignore[union-attr]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 3], results
        loser = next(err for code, _, err in results if code == 3)
        assert "is at version 3 (applied), not 2" in loser
        applied = git(
            gated,
            "log",
            "--format=%H",
            "--grep=Proctor-Proposal-Status: applied",
            f"--grep={pid}",
            "--all-match",
        )
        assert len(applied.split()) == 1
        assert stored(gated, pid)["status"] == "applied" and stored(gated, pid)["version"] == 3
        assert description(gated) == f"Round {round_}"
    assert git(gated, "status", "--porcelain") == ""


def test_every_transition_is_announced_as_a_proposal_event(gated: Path) -> None:
    import types
    from typing import Any

    from proctor.core.events import ProposalEvent
    from proctor.core.hookspecs import hookimpl
    from proctor.core.plugins import PluginInfo, PluginManager

    seen: list[Any] = []
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_on_event(event: Any) -> None:
        if isinstance(event, ProposalEvent):
            seen.append(event)

    plugin.proctor_on_event = proctor_on_event  # type: ignore[attr-defined]
    manager = PluginManager()
    manager.load_builtins(set())
    manager.register("watch", plugin, PluginInfo(name="watch", module="tests"))
    manager.check_pending()
    with Workspace.open(gated, actor=ANA, plugins=manager) as ws:
        pid = ws.execute("procedure.update", {"name": "greet", "description": "x"}).proposal
        assert pid
        ws.approve(pid, actor=BOB)
        last = ws.approve(pid, actor=CAROL)
        withdrawn = ws.execute("procedure.delete", {"name": "greet"}).proposal
        assert withdrawn
        ws.withdraw(withdrawn)
    assert [(e.kind, e.transition, e.version, e.proposal) for e in seen] == [
        ("proposal.pending", "proposal.create", 1, pid),
        ("proposal.pending", "proposal.approve", 2, pid),
        ("proposal.applied", "proposal.approve", 3, pid),
        ("proposal.pending", "proposal.create", 1, withdrawn),
        ("proposal.withdrawn", "proposal.withdraw", 2, withdrawn),
    ]
    assert seen[2].commit == last.commit and seen[2].action == "procedure.update"


def on_a_terminal(repo: Path, *args: str) -> str:
    """The CLI's output with its stdout on a pseudo-terminal, as a person sees it."""
    import os
    import pty

    main, child = pty.openpty()
    env = {**os.environ, **IDENTITY, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [str(BIN / "proctor"), *args], cwd=repo, env=env, stdout=child, stderr=subprocess.PIPE
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_show_highlights_the_diff_on_a_terminal_unless_no_color(gated: Path) -> None:
    pid = propose_update(gated)
    coloured = on_a_terminal(gated, "proposal", "show", pid)
    assert "\x1b[" in coloured and "Greets people" in coloured
    plain = on_a_terminal(gated, "proposal", "show", pid, "--no-color")
    assert "\x1b[" not in plain and '+  "description": "Greets people",' in plain


def test_policy_may_deny_a_transition_itself(gated: Path) -> None:
    pid = propose_update(gated)
    text = POLICY + (
        '\n[[policy.rules]]\nactions = ["proposal.approve"]\nactors = ["dave@*"]\n'
        'decision = "DENY"\nreason = "dave is on leave"\n'
        '\n[[policy.rules]]\nactions = ["proposal.*"]\nactors = ["carol@*"]\n'
        'decision = "REQUIRE_PROPOSAL"\n'
    )
    with Workspace.open(gated, actor=ANA) as ws:
        assert ws.execute("config.update", {"text": text}).status == "applied"
    before = repo_state(gated)
    run = run_cli("proposal", "approve", pid, "--actor", DAVE, cwd=gated)
    assert run.code == 1 and "dave is on leave" in run.err, run
    assert repo_state(gated) == before
    # REQUIRE_PROPOSAL on a review step would need a proposal to move a proposal: allowed.
    with Workspace.open(gated, actor=CAROL) as ws:
        outcome = ws.approve(pid)
    assert outcome.result.status == "applied" and outcome.status == "pending"
    assert "a review step is not sent to review" in trailers(gated)["Proctor-Policy-Rule"]
