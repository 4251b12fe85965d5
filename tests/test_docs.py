"""The examples in the docs run as written."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
from conftest import git

from proctor import Workspace
from proctor.core.errors import UsageError, ValidationFailed
from proctor.core.plugins import PluginInfo, PluginManager

DOCS = Path(__file__).resolve().parents[1] / "docs"
README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture
def notes_manager() -> PluginManager:
    code = python_blocks((DOCS / "actions.md").read_text())[0]
    module = types.ModuleType("notes_plugin")
    exec(compile(code, "docs/actions.md", "exec"), module.__dict__)
    manager = PluginManager()
    manager.load_builtins(set())
    manager.register("notes", module, PluginInfo(name="notes", module="notes_plugin"))
    manager.check_pending()
    return manager


def test_actions_doc_example(repo: Path, notes_manager: PluginManager) -> None:
    with Workspace.open(repo, actor="ana@example.com", plugins=notes_manager) as ws:
        assert "note.add" in ws.actions()
        result = ws.execute("note.add", {"name": "standup", "text": "Ship it on Friday"})
        assert result.status == "applied"
        assert (repo / "notes/standup.md").read_text() == "# standup\n\nShip it on Friday\n"
        body = git(repo, "log", "-1", "--format=%B")
        assert body.startswith("Add note standup\n")
        assert "Proctor-Action: note.add" in body
        head = git(repo, "rev-parse", "HEAD")
        with pytest.raises(ValidationFailed, match="do not write the whole note in capitals"):
            ws.execute("note.add", {"name": "loud", "text": "SHIP IT"})
        with pytest.raises(ValidationFailed, match="tone must be one of"):
            ws.execute("note.add", {"name": "x", "text": "ok", "tone": "grumpy"})
        with pytest.raises(ValidationFailed, match="text is required"):
            ws.execute("note.add", {"name": "x", "text": ""})
        with pytest.raises(ValidationFailed, match="invalid params for note.add"):
            ws.execute("note.add", {"name": "x"})
        with pytest.raises(UsageError, match="already exists"):
            ws.execute("note.add", {"name": "standup", "text": "again"})
        assert git(repo, "rev-parse", "HEAD") == head


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    blocks = re.findall(r"```(?:console|sh|bash)\n(.*?)```", text, flags=re.DOTALL)
    assert "proctor quickstart" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    test_line = [line for line in blocks[1].splitlines() if "pytest" in line][0]
    assert test_line.split("&&")[-1].strip() in ci
