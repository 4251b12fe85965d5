"""docs/guarantees.md cannot rot: every test it names exists, and every README promise
section names at least one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "guarantees.md"
NAMED = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test")
    }


def test_every_named_test_exists() -> None:
    named = NAMED.findall(DOC.read_text(encoding="utf-8"))
    assert len(named) >= 30, "the guarantees page names too few tests"
    missing = []
    cache: dict[str, set[str]] = {}
    for file, name in named:
        path = ROOT / file
        if not path.is_file():
            missing.append(f"{file} (no such file)")
            continue
        if file not in cache:
            cache[file] = functions_in(path)
        if name not in cache[file]:
            missing.append(f"{file}::{name}")
    assert not missing, "docs/guarantees.md names tests that do not exist: " + ", ".join(missing)


def test_every_section_is_backed() -> None:
    sections = re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    assert sections
    for section in sections:
        title = section.splitlines()[0]
        assert NAMED.search(section), f"section {title!r} names no test"


def test_the_readme_promises_have_a_section() -> None:
    headings = [
        h.lower() for h in re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    for promise in ("no lost update", "nothing of yours", "exit 2", "git log"):
        assert any(promise in h for h in headings), promise
