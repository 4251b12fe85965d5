"""Policy: the simple form and the rules beside it (actions, actors, roles, owners), the
rule engine as a pure function of the table, plugins combined strictest-first, the
trailers every commit carries, ``proctor policy explain``, and a policy change governed
by the policy in force. Real git repositories; the CLI as a real subprocess."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest
from conftest import GREET, git, repo_state, run_cli

from proctor import Workspace
from proctor.core.errors import ConfigError
from proctor.core.governance import Decision
from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import PluginInfo, PluginManager
from proctor.core.policy import PolicyRequest, Ruling, evaluate, parse_policy

TABLE: dict[str, Any] = {
    "*": "ALLOW_IMMEDIATE",
    "procedure.*": "REQUIRE_PROPOSAL",
    "procedure.delete": "DENY",
    "roles": {"bob@example.com": ["maintainer"], "*@bots.example": ["bot"]},
    "owners": {"*": ["role:maintainer"], "billing_*": ["role:finance"], "billing_old": []},
    "rules": [
        {
            "name": "maintainers ship",
            "actions": ["procedure.release"],
            "roles": ["maintainer"],
            "decision": "ALLOW_IMMEDIATE",
        },
        {
            "name": "finance reviews billing",
            "actions": "procedure.*",
            "owners": ["role:finance"],
            "decision": "REQUIRE_PROPOSAL",
            "approvals": 2,
            "approvers": ["owners"],
        },
        {
            "name": "no bots",
            "actors": ["*@bots.example"],
            "decision": "DENY",
            "reason": "bots propose through the MCP server",
        },
    ],
}


def rule(action: str, actor: str = "ana@example.com", *procs: str) -> Ruling | None:
    return evaluate(TABLE, PolicyRequest(action, actor, procs))


def test_the_simple_form_exact_names_beat_globs() -> None:
    assert evaluate(
        {"procedure.delete": "require_proposal"}, PolicyRequest("procedure.delete", "a")
    ) == Ruling(Decision.REQUIRE_PROPOSAL, rule='policy."procedure.delete"')
    assert evaluate({"procedure.delete": "DENY"}, PolicyRequest("procedure.create", "a")) is None
    assert rule("config.update").decision is Decision.ALLOW_IMMEDIATE  # type: ignore[union-attr]
    assert rule("procedure.update").rule == 'policy."procedure.*"'  # type: ignore[union-attr]
    assert rule("procedure.delete").decision is Decision.DENY  # type: ignore[union-attr]


def test_rules_match_roles_actors_and_owners_and_the_last_match_wins() -> None:
    # A role exempts maintainers from the glob's proposal...
    ship = rule("procedure.release", "bob@example.com", "greet")
    assert ship is not None and ship.decision is Decision.ALLOW_IMMEDIATE
    assert ship.rule == "policy.rules[0] maintainers ship"
    assert rule("procedure.release", "ana@example.com", "greet").decision is (  # type: ignore[union-attr]
        Decision.REQUIRE_PROPOSAL
    )
    # ...a later rule on owners overrides it for billing procedures (last match wins),
    # with the owners as the approvers.
    billing = rule("procedure.release", "bob@example.com", "billing_invoice")
    assert billing == Ruling(
        Decision.REQUIRE_PROPOSAL,
        rule="policy.rules[1] finance reviews billing",
        approvals=2,
        approvers=("role:finance",),
    )
    # Owners patterns: last match wins, so billing_old has no owners and the rule
    # does not match it.
    assert rule("procedure.update", "ana@example.com", "billing_old").rule == 'policy."procedure.*"'  # type: ignore[union-attr]
    denied = rule("procedure.update", "ci@bots.example", "greet")
    assert denied is not None and denied.decision is Decision.DENY
    assert denied.reason == "bots propose through the MCP server"
    policy = parse_policy(TABLE)
    assert policy.roles_of("x@bots.example") == {"bot"}
    assert policy.may_approve("bob@example.com", ["role:maintainer"])
    assert not policy.may_approve("ana@example.com", ["role:maintainer", "carol@*"])
    assert policy.may_approve("carol@example.com", ["role:maintainer", "carol@*"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"procedure.create": "MAYBE"}, "expected one of ALLOW_IMMEDIATE"),
        ({"rules": [{"actions": "*"}]}, "a rule needs a decision"),
        ({"rules": [{"decision": "DENY", "approvals": 2}]}, "apply only to REQUIRE_PROPOSAL"),
        ({"rules": [{"decision": "REQUIRE_PROPOSAL", "approvals": 0}]}, "1..100"),
        ({"rules": [{"decision": "DENY", "who": "x"}]}, "unknown key(s) who"),
        ({"roles": {"a": "ok", "b": 3}}, "policy.roles.b: expected a string"),
        ({"rules": {"decision": "DENY"}}, "expected [[policy.rules]] tables"),
    ],
)
def test_a_bad_policy_table_is_a_config_error(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(table, "proctor.toml")
    assert message in str(err.value)


def committed(repo: Path, config: str) -> str:
    (repo / "proctor.toml").write_text(config)
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "config")
    return git(repo, "rev-parse", "HEAD").strip()


def trailers(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    out = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_every_commit_names_the_decision_its_rule_and_the_policy_commit(repo: Path) -> None:
    config_commit = committed(repo, '[policy]\n"procedure.create" = "ALLOW_IMMEDIATE"\n')
    with Workspace.open(repo, actor="ana@example.com") as ws:
        created = ws.execute("procedure.create", {"name": "greet", "code": GREET})
        updated = ws.execute("procedure.update", {"name": "greet", "description": "Hi"})
    assert trailers(repo, created.commit or "") | {} == {
        "Proctor-Action": "procedure.create",
        "Proctor-Actor": "ana@example.com",
        "Proctor-Correlation-Id": created.correlation_id,
        "Proctor-Policy": "ALLOW_IMMEDIATE",
        "Proctor-Policy-Commit": config_commit,
        "Proctor-Policy-Rule": 'policy."procedure.create"',
    }
    # The next action reads the policy from the tip it is planned on: the create commit.
    later = trailers(repo, updated.commit or "")
    assert later["Proctor-Policy-Commit"] == created.commit
    assert later["Proctor-Policy-Rule"] == "default"


def test_a_deny_says_why_and_writes_nothing(repo: Path) -> None:
    committed(
        repo,
        '[[policy.rules]]\nname = "frozen"\nactions = ["procedure.*"]\ndecision = "DENY"\n'
        'reason = "the store is frozen for the audit"\n',
    )
    code = repo.parent / "greet.py"
    code.write_text(GREET)
    before = repo_state(repo)
    run = run_cli("procedure", "create", "greet", "--code", str(code), cwd=repo)
    assert run.code == 1, run
    assert run.err.strip().endswith(
        "policy denies procedure.create for author@example.com: the store is frozen for the "
        "audit (policy.rules[0] frozen)"
    )
    assert repo_state(repo) == before


def test_policy_explain_prints_the_decision_and_rule_and_writes_nothing(repo: Path) -> None:
    policy_commit = committed(
        repo,
        "[policy]\n"
        '"procedure.*" = "REQUIRE_PROPOSAL"\n'
        '[policy.roles]\n"bob@example.com" = ["maintainer"]\n'
        '[policy.owners]\n"*" = ["role:maintainer"]\n'
        '[[policy.rules]]\nname = "owners approve"\nactions = ["procedure.delete"]\n'
        'decision = "REQUIRE_PROPOSAL"\napprovals = 2\napprovers = ["owners"]\n',
    )
    before = repo_state(repo)
    run = run_cli(
        "policy",
        "explain",
        "procedure.delete",
        "-p",
        "name=greet",
        "--actor",
        "bob@example.com",
        cwd=repo,
    )
    assert run.code == 0, run
    assert run.out.splitlines() == [
        "procedure.delete by bob@example.com: REQUIRE_PROPOSAL",
        "  rule: policy.rules[0] owners approve",
        "  approvals: 2, by one of role:maintainer",
        "  roles of bob@example.com: maintainer",
        "  owners of greet: role:maintainer",
        f"  policy read from: {policy_commit}",
    ]
    as_json = run_cli("policy", "explain", "procedure.update", "-p", "name=x", "--json", cwd=repo)
    data = json.loads(as_json.out)
    assert (data["decision"], data["rule"], data["approvals"]) == (
        "REQUIRE_PROPOSAL",
        'policy."procedure.*"',
        1,
    )
    bad = run_cli("policy", "explain", "no.such", cwd=repo)
    assert bad.code == 2 and "unknown action 'no.such'" in bad.err
    assert repo_state(repo) == before


def ruling_plugin(answer: object) -> object:
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_policy(action: Any) -> Any:
        return answer if action.api_name == "procedure.update" else None

    plugin.proctor_policy = proctor_policy  # type: ignore[attr-defined]
    return plugin


def manager_with(plugin: object) -> PluginManager:
    manager = PluginManager()
    manager.load_builtins(set())
    manager.register("org", plugin, PluginInfo(name="org", module="tests"))
    manager.check_pending()
    return manager


def test_plugin_rulings_combine_with_the_config_strictest_and_most_approvals(repo: Path) -> None:
    committed(
        repo,
        '[[policy.rules]]\nactions = ["procedure.update"]\ndecision = "REQUIRE_PROPOSAL"\n'
        'approvals = 2\napprovers = ["role:maintainer"]\n',
    )
    plugin = ruling_plugin(
        Ruling(
            Decision.REQUIRE_PROPOSAL, rule="org review", approvals=3, approvers=("*@org.example",)
        )
    )
    with Workspace.open(repo, actor="ana@example.com", plugins=manager_with(plugin)) as ws:
        ws.execute("procedure.create", {"name": "greet", "code": GREET})
        explained = ws.explain_policy("procedure.update", {"name": "greet"})
        result = ws.execute("procedure.update", {"name": "greet", "description": "x"})
        assert result.status == "proposed" and result.proposal
        proposal = ws.get_proposal(result.proposal)
    assert explained.approvals == 3
    assert set(explained.approvers) == {("role:maintainer",), ("*@org.example",)}
    assert (proposal.required_approvals, sorted(proposal.approvers)) == (
        3,
        [["*@org.example"], ["role:maintainer"]],
    )
    # A DENY from a plugin beats the config's REQUIRE_PROPOSAL.
    with Workspace.open(
        repo, actor="ana@example.com", plugins=manager_with(ruling_plugin("DENY"))
    ) as ws:
        denied = ws.execute("procedure.update", {"name": "greet", "description": "y"})
    assert (denied.status, denied.decision) == ("denied", "DENY")


def test_changing_the_policy_is_an_action_the_current_policy_governs(repo: Path) -> None:
    strict = '[policy]\n"config.update" = "REQUIRE_PROPOSAL"\n"procedure.create" = "DENY"\n'
    committed(repo, strict)
    loose = tmp = repo.parent / "loose.toml"
    tmp.write_text('[policy]\n"config.update" = "ALLOW_IMMEDIATE"\n')
    # The loosened policy does not apply to its own adoption: the one in force holds it.
    run = run_cli("policy", "update", str(loose), "--actor", "ana@example.com", "--json", cwd=repo)
    assert run.code == 0, run
    held = json.loads(run.out)
    assert held["status"] == "proposed" and held["decision"] == "REQUIRE_PROPOSAL"
    assert (repo / "proctor.toml").read_text() == strict
    bad = repo.parent / "bad.toml"
    bad.write_text('[policy]\n"x" = "SOMETIMES"\n')
    refused = run_cli("policy", "update", str(bad), cwd=repo)
    assert refused.code == 2 and "expected one of ALLOW_IMMEDIATE" in refused.err
    with Workspace.open(repo, actor="bob@example.com") as ws:
        outcome = ws.approve(held["proposal"])
        assert outcome.status == "applied"
    assert (repo / "proctor.toml").read_text() == tmp.read_text()
    assert trailers(repo)["Proctor-Proposed-Action"] == "config.update"
    with Workspace.open(repo, actor="ana@example.com") as ws:
        assert ws.execute("procedure.create", {"name": "greet", "code": GREET}).status == "applied"


OWNED = """\
[policy.roles]
"fin@example.com" = ["finance"]
[policy.owners]
"billing_*" = ["role:finance"]
[[policy.rules]]
name = "billing is finance-only"
actions = ["procedure.*"]
owners = ["role:finance"]
decision = "DENY"
[[policy.rules]]
name = "finance may"
actions = ["procedure.*"]
owners = ["role:finance"]
roles = ["finance"]
decision = "ALLOW_IMMEDIATE"
"""


def test_an_import_is_governed_by_the_names_it_imports_and_as_their_creation(repo: Path) -> None:
    """The procedures an import adds are named in its items, not in a ``name`` param:
    rules on their owners see them, and each is governed as the create it amounts to."""
    committed(repo, OWNED)
    item = {"name": "billing_payout", "description": "pays", "returns": "int"}
    before = repo_state(repo)
    with Workspace.open(repo, actor="mallory@example.com") as ws:
        result = ws.execute("procedure.import", {"procedures": [item]})
    assert result.status == "denied", result
    assert "billing is finance-only" in " ".join(result.errors)
    assert repo_state(repo) == before
    # Where creating is denied outright, importing is too, whoever imports.
    committed(repo, '[policy]\n"procedure.create" = "DENY"\n')
    with Workspace.open(repo, actor="fin@example.com") as ws:
        result = ws.execute("procedure.import", {"procedures": [item]})
    assert result.status == "denied" and "procedure.create" in " ".join(result.errors)
    committed(repo, OWNED)
    with Workspace.open(repo, actor="fin@example.com") as ws:
        assert ws.execute("procedure.import", {"procedures": [item]}).status == "applied"
