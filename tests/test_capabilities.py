"""The one parser of a procedure's ``capabilities`` block, and proof that its two readers
agree: the pre-commit procedure hook (which reads ``metadata.json`` from the work tree)
and the action pipeline (which validates the spec and checks the code before committing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import write_file as write

from proctor import Workspace
from proctor.checks.validation import UNREADABLE, Capabilities
from proctor.core.errors import ValidationFailed
from proctor.precommit import procedure_code
from proctor.procedures.capabilities import capabilities_for, parse_capabilities

BIN = Path(sys.executable).parent

# Needs the network capability: PS901 in procedure mode without it.
FETCH = (
    "import urllib.request\n\n\ndef run(url: str) -> bytes:\n"
    "    return urllib.request.urlopen(url).read()\n"
)
PARAMETERS = [{"name": "url", "type": "str"}]

VALID: list[tuple[Any, Capabilities]] = [
    ({}, Capabilities()),
    ({"network": True}, Capabilities(network=True)),
    ({"network": False, "subprocess": True}, Capabilities(subprocess=True)),
    ({"filesystem_write": ["out/", "tmp/"]}, Capabilities(filesystem_write=("out/", "tmp/"))),
    ({"filesystem_write": []}, Capabilities()),
]
INVALID: list[tuple[Any, str]] = [
    ({"network": "yes"}, 'network must be true or false, got "yes"'),
    ({"network": "true"}, 'network must be true or false, got "true"'),
    ({"network": 1}, "network must be true or false, got 1"),
    ({"subprocess": None}, "subprocess must be true or false, got null"),
    ({"filesystem_write": "out/"}, 'filesystem_write must be a list of strings, got "out/"'),
    ({"filesystem_write": [1]}, "filesystem_write must be a list of strings, got [1]"),
    ({"filesystem_write": None}, "filesystem_write must be a list of strings, got null"),
    (
        {"netwrok": True},
        "capabilities: unknown key(s) netwrok; known: network, subprocess, filesystem_write",
    ),
    (None, "capabilities: expected a JSON object, got null"),
    (["network"], 'capabilities: expected a JSON object, got ["network"]'),
]


@pytest.mark.parametrize(("block", "expected"), VALID)
def test_the_parser_reads_valid_blocks(block: Any, expected: Capabilities) -> None:
    assert parse_capabilities(block) == expected


@pytest.mark.parametrize(("block", "message"), INVALID)
def test_the_parser_refuses_anything_else(block: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_capabilities(block)
    assert message in str(info.value)


def hook_view(root: Path, name: str, block: Any) -> tuple[int, list[str]]:
    """The procedure hook on ``procedures/<name>/main.py``: its status and output lines."""
    directory = root / "procedures" / name
    write(directory / "main.py", FETCH)
    meta = {"name": name, "parameters": PARAMETERS, "returns": "bytes", "capabilities": block}
    write(directory / "metadata.json", json.dumps(meta))
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1"}
    done = subprocess.run(
        [str(BIN / "proctor-hook-procedures"), f"procedures/{name}/main.py"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return done.returncode, done.stdout.splitlines()


def pipeline_view(repo: Path, name: str, block: Any) -> tuple[str, str]:
    """``procedure.create`` with the same code and metadata: applied, or why not."""
    meta = {"name": name, "parameters": PARAMETERS, "returns": "bytes", "capabilities": block}
    with Workspace.open(repo, actor="ana@example.com") as ws:
        try:
            result = ws.execute("procedure.create", {"name": name, "code": FETCH, "metadata": meta})
        except ValidationFailed as exc:
            return "refused", exc.message
    return result.status, ""


@pytest.mark.parametrize(
    "block",
    [block for block, _ in VALID]
    + [{"network": True, "subprocess": False}]
    + [block for block, _ in INVALID],
    ids=lambda block: json.dumps(block),
)
def test_the_hook_and_the_pipeline_agree(tmp_path: Path, repo: Path, block: Any) -> None:
    (tmp_path / "work" / ".git").mkdir(parents=True)
    status, lines = hook_view(tmp_path / "work", "fetch", block)
    outcome, message = pipeline_view(repo, "fetch", block)
    try:
        declared: Capabilities | None = parse_capabilities(block)
    except ValueError as exc:
        declared = None
        in_file = str(exc)  # as the hook words it: capabilities.network must be ...
        with pytest.raises(ValueError) as info:
            parse_capabilities(block, where="")
        bare = str(info.value)  # as the pipeline words it, after "capabilities: "
    if declared is None:
        # Both refuse the declaration, and both say what is wrong with it.
        assert outcome == "refused", message
        assert f"invalid metadata: capabilities: {bare}" in message
        assert status == 1
        assert (
            f"procedures/fetch/metadata.json:1:1: {UNREADABLE} [error] metadata.json: {in_file}"
            in lines
        )
        # A broken declaration grants nothing: the import is refused as without one.
        assert any(" PS901 " in line for line in lines), lines
    elif declared.network:
        assert outcome == "applied", message
        assert (status, lines) == (0, [])
    else:
        assert outcome == "refused" and "PS901" in message, message
        assert status == 1 and any(" PS901 " in line for line in lines), lines


def test_the_spec_model_uses_the_parser() -> None:
    from proctor.procedures.repository import parse_spec

    spec = parse_spec(json.dumps({"name": "x", "capabilities": {"network": True}}))
    assert spec.capabilities.network is True
    with pytest.raises(ValidationFailed) as info:
        parse_spec(json.dumps({"name": "x", "capabilities": {"network": "yes"}}))
    assert info.value.message == (
        'metadata.json: invalid metadata: capabilities: network must be true or false, got "yes"'
    )


def test_capabilities_for_files_outside_procedures(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "main.py", FETCH)
    write(tmp_path / "lib" / "metadata.json", json.dumps({"capabilities": {"network": True}}))
    assert capabilities_for(str(tmp_path / "lib" / "main.py")) == (Capabilities(), None)
    write(tmp_path / "procedures" / "x" / "other.py", FETCH)
    assert capabilities_for(str(tmp_path / "procedures" / "x" / "other.py")) == (
        Capabilities(),
        None,
    )
    write(tmp_path / "procedures" / "y" / "main.py", FETCH)
    assert capabilities_for(str(tmp_path / "procedures" / "y" / "main.py")) == (
        Capabilities(),
        None,
    )


def test_metadata_that_is_not_an_object_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "procedures" / "x" / "main.py", "def run():\n    return 1\n")
    write(tmp_path / "procedures" / "x" / "metadata.json", "[1, 2]")
    monkeypatch.chdir(tmp_path)
    assert procedure_code.main(["procedures/x/main.py"]) == 1
    assert capsys.readouterr().out == (
        "procedures/x/metadata.json:1:1: PC003 [error] metadata.json must hold a JSON object, got [1, 2]\n"
    )
