"""``proctor mcp`` driven by the official SDK's own client over stdio: the tools listed
(one per released procedure, with its schema from the metadata), a run through the
sandbox and the log, a denied run, and a change that policy holds for approval: the
agent's own proposal, which the agent cannot approve and a human's approval applies."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, IDENTITY, git
from runs_helpers import GREET, create, greet_metadata, make_store

pytest.importorskip("mcp", reason="the mcp extra is not installed (pip install 'proctor[mcp]')")

WRITER = """\
def run(directory: str) -> str:
    with open(directory + "/hook", "w") as fh:
        fh.write("#!/bin/sh\\necho owned\\n")
    return "done"
"""


async def session_calls(
    repo: Path, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[Any, list[Any]]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {**os.environ, **IDENTITY, "PROCTOR_ACTOR": "agent@example.com"}
    params = StdioServerParameters(
        command=str(BIN / "proctor"), args=["mcp"], cwd=str(repo), env=env
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
    return tools, results


def payload(result: Any) -> dict[str, Any]:
    data = json.loads(result.content[0].text)
    assert data == result.structured_content
    return data  # type: ignore[no-any-return]


@pytest.fixture
def served(repo: Path) -> Path:
    make_store(repo, '[policy]\n"procedure.update" = "REQUIRE_PROPOSAL"\n')
    create(repo, "greet", GREET, greet_metadata(), release=True)
    create(
        repo,
        "writer",
        WRITER,
        {
            "name": "writer",
            "description": "Writes a file",
            "parameters": [{"name": "directory", "type": "str", "required": True}],
            "capabilities": {"filesystem_write": [".git/hooks"]},
        },
    )
    create(repo, "draft", GREET, greet_metadata() | {"name": "draft"})  # never released
    return repo


def test_list_run_denied_and_held_for_approval(served: Path) -> None:
    head = git(served, "rev-parse", "HEAD")
    hooks = sorted(p.name for p in (served / ".git/hooks").iterdir())
    tools, results = asyncio.run(
        session_calls(
            served,
            [
                ("list_procedures", {}),
                ("show_procedure", {"name": "greet"}),
                ("greet", {"name": "Ada"}),
                ("run_procedure", {"name": "greet", "params": {"name": "Bo", "punctuation": "?"}}),
                (
                    "run_procedure",
                    {"name": "writer", "params": {"directory": str(served / ".git/hooks")}},
                ),
                ("run_procedure", {"name": "greet", "params": {"nmae": "x"}}),
                (
                    "propose_change",
                    {
                        "action": "procedure.update",
                        "params": {"name": "greet", "description": "Greets agents"},
                    },
                ),
            ],
        )
    )
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {
        "list_procedures",
        "show_procedure",
        "run_procedure",
        "propose_change",
        "greet",  # released: a tool of its own; writer and draft never were
    }
    schema = by_name["greet"].input_schema
    assert schema["required"] == ["name"]
    assert schema["properties"]["name"] == {"type": "string", "description": "Who to greet"}
    assert schema["properties"]["punctuation"]["default"] == "!"
    assert "release v0.1.0" in (by_name["greet"].description or "")

    listed, shown, own_tool, generic, denied, bad_call, change = results
    names = [p["name"] for p in payload(listed)["procedures"]]
    assert names == ["draft", "greet", "writer"]
    assert payload(shown)["releases"] == ["0.1.0"] and "def run" in payload(shown)["code"]

    assert not own_tool.is_error
    ran = payload(own_tool)
    assert (ran["status"], ran["value"], ran["version"]) == ("ok", "Hello, Ada!", "0.1.0")
    assert ran["actor"] == "agent@example.com" and ran["recorded"] is True
    assert payload(generic)["value"] == "Hello, Bo?"

    assert denied.is_error
    refused = payload(denied)
    assert refused["status"] == "denied" and refused["exit_code"] == 7
    assert "inside the repository's git directory" in refused["reason"]
    assert sorted(p.name for p in (served / ".git/hooks").iterdir()) == hooks

    assert bad_call.is_error and payload(bad_call)["error"] == "ParamsError"

    # Policy holds the change: one commit adding a pending proposal, nothing applied.
    held = payload(change)
    assert held["status"] == "proposed" and not change.is_error, held
    proposal_id = held["proposal"]
    assert git(served, "rev-parse", "HEAD~1") == head
    changed = git(served, "diff", "--name-status", head.strip(), "HEAD").split()
    assert changed == ["A", f"proposals/{proposal_id}.json"]
    assert "Greets agents" not in git(served, "show", "HEAD:procedures/greet/metadata.json")
    stored = json.loads(git(served, "show", f"HEAD:proposals/{proposal_id}.json"))
    assert (stored["status"], stored["action"], stored["version"]) == (
        "pending",
        "procedure.update",
        1,
    )

    with sqlite3.connect(served / ".git/proctor/runs.sqlite") as db:
        rows = db.execute(
            "SELECT procedure, status, actor FROM proctor_runs ORDER BY started"
        ).fetchall()
    assert rows == [
        ("greet", "ok", "agent@example.com"),
        ("greet", "ok", "agent@example.com"),
        ("writer", "denied", "agent@example.com"),
    ]

    # The proposal is the calling actor's (the server's --actor / $PROCTOR_ACTOR) ...
    assert stored["created_by"] == "agent@example.com"
    assert "Proctor-Actor: agent@example.com" in git(served, "log", "-1", "--format=%B", "HEAD")
    # ... so that actor cannot approve it, asking through MCP ...
    _tools, (own_approval,) = asyncio.run(
        session_calls(
            served,
            [("propose_change", {"action": "proposal.approve", "params": {"id": proposal_id}})],
        )
    )
    assert own_approval.is_error
    refusal = payload(own_approval)
    assert refusal["status"] == "invalid" and refusal["error"] == "UsageError"
    assert refusal["errors"] == [f"agent@example.com proposed {proposal_id} and cannot approve it"]
    # ... or through the Python API; either way nothing changed.
    from proctor import Workspace
    from proctor.core.errors import UsageError

    pending_tip = git(served, "rev-parse", "HEAD")
    with (
        Workspace.open(served, actor="agent@example.com") as ws,
        pytest.raises(UsageError, match="cannot approve it"),
    ):
        ws.approve(proposal_id)
    assert git(served, "rev-parse", "HEAD") == pending_tip
    # A human's approval applies it.
    with Workspace.open(served, actor="human@example.com") as ws:
        outcome = ws.approve(proposal_id, "looks right")
        assert outcome.status == "applied", outcome
        assert ws.get_procedure("greet").spec.description == "Greets agents"
        assert ws.get_proposal(proposal_id).status == "applied"
    meta = json.loads(git(served, "show", "HEAD:procedures/greet/metadata.json"))
    assert meta["description"] == "Greets agents"
    assert "Proctor-Actor: human@example.com" in git(served, "log", "-1", "--format=%B", "HEAD")


def test_without_procedure_tools_and_unknown_tools(served: Path) -> None:
    async def calls() -> tuple[Any, Any]:
        from mcp import ClientSession, StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=str(BIN / "proctor"),
            args=["mcp", "--no-procedure-tools"],
            cwd=str(served),
            env={**os.environ, **IDENTITY},
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await session.list_tools(), await session.call_tool("greet", {"name": "x"})

    tools, result = asyncio.run(calls())
    assert [t.name for t in tools.tools] == [
        "list_procedures",
        "show_procedure",
        "run_procedure",
        "propose_change",
    ]
    assert result.is_error and payload(result)["errors"] == ["unknown tool 'greet'"]
