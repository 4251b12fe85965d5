"""The dependency direction of docs/architecture.md, enforced.

Every ``import`` in every module of the package is read from the source (also those inside
functions and under ``TYPE_CHECKING``: a type-only import upward is the same coupling), and
each must point to the same package or a lower layer. A new package must be given a layer
here and in docs/architecture.md before it can import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "proctor"

LAYERS: dict[str, int] = {
    "core": 0,
    "store": 1,
    "checks": 1,
    "engine": 2,
    "procedures": 3,
    "proposals": 4,
    "sync": 4,
    "runs": 5,
    "llm": 6,
    "plugins": 7,
    "workspace": 8,
    "quickstart": 9,
    "testing": 8,
    "cli": 10,
    "mcp_server": 9,
    "precommit": 10,
    "cmdserver": 11,
}


def _package_of(module: str) -> str | None:
    """``proctor.store.refs`` -> ``store``; ``proctor`` itself (the lazy face) -> None."""
    parts = module.split(".")
    if parts[0] != "proctor" or len(parts) < 2:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, here: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, whose module name is ``here``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = here or _module_name(path)
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                drop = node.level - (1 if is_package else 0)
                base = base[: len(base) - drop] if drop else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "proctor":
                # ``from proctor import x`` reaches whatever x lives in: as high as the face.
                found.extend((node.lineno, f"proctor.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, target))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer() -> None:
    packages = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in _modules()}
    packages.discard("__init__")
    missing = sorted(packages - set(LAYERS))
    assert not missing, f"give these a layer in tests/test_layers.py and docs: {missing}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_imports_point_down(path: Path) -> None:
    own = _package_of(_module_name(path))
    if own is None:
        return  # proctor/__init__.py: the lazy public face names every layer on purpose
    upward = []
    for line, target in _imports(path):
        other = _package_of(target)
        if other is None or other == own:
            continue
        if other not in LAYERS:
            # ``from proctor import Workspace``-style names resolve through the lazy face
            # to the top layer; treat an unknown name as the top.
            upward.append(f"line {line}: {target} (through the public face)")
            continue
        if LAYERS[other] >= LAYERS[own]:
            upward.append(f"line {line}: {target} ({other} is layer {LAYERS[other]})")
    assert not upward, f"{own} is layer {LAYERS[own]}; it may only import lower layers:\n" + (
        "\n".join(upward)
    )


def test_the_walker_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself can fail: an import from core into the store is caught."""
    source = "def f():\n    from proctor.store.gitstore import GitStore\n    return GitStore\n"
    probe = tmp_path / "proctor" / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source)
    imports = [t for _, t in _imports(probe, "proctor.core.probe")]
    assert imports == ["proctor.store.gitstore"]
    assert LAYERS[_package_of(imports[0]) or ""] > LAYERS["core"]
