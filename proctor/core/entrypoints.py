"""Find ``proctor`` entry points without importing importlib.metadata.

``importlib.metadata`` costs 40-60 ms to import, more than the rest of ``proctor --help``.
The CLI only needs to know whether any third-party plugin exists before deciding to load
the plugin system, and the pre-commit hooks need none at all, so this reads the
``entry_points.txt`` of installed distributions directly: the same files, the same
precedence (the first distribution of a name on ``sys.path`` wins).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from typing import Any, NamedTuple

_DIST_DIR = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py[\d.]+)?\.(dist|egg)-info$")


class EntryPoint(NamedTuple):
    """One entry point (a NamedTuple: ``dataclasses`` is not worth its import here)."""

    name: str
    value: str
    dist: str
    version: str | None

    def load(self) -> Any:
        """Import ``module`` or ``module:attr.path`` as the entry-point spec says."""
        module_name, _, attrs = self.value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse(text: str, group: str) -> list[tuple[str, str]]:
    out = []
    in_group = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            in_group = line == f"[{group}]"
            continue
        if in_group and "=" in line:
            name, _, value = line.partition("=")
            value = value.split("[", 1)[0]  # drop extras: "mod:obj [extra]"
            out.append((name.strip(), value.strip()))
    return out


def _declared(path: list[str]) -> list[tuple[str, str | None, str | None]]:
    """``(distribution, version, entry_points.txt text or None)`` of the first
    distribution of each name on ``path``."""
    found: list[tuple[str, str | None, str | None]] = []
    seen: set[str] = set()
    for directory in path:
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for entry in sorted(names):
            m = _DIST_DIR.match(entry)
            if m is None:
                continue
            dist = _normalise(m["name"])
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(
                    os.path.join(directory or ".", entry, "entry_points.txt"), encoding="utf-8"
                ) as fh:
                    text: str | None = fh.read()
            except OSError:
                text = None
            found.append((m["name"], m["version"], text))
    return found


# The scan of ``sys.path``, kept for the process while ``sys.path`` is unchanged: the CLI
# asks for two groups (``proctor``, then ``pydantic``) and should read the files once.
_scanned: tuple[list[str], list[tuple[str, str | None, str | None]]] | None = None


def _declared_on_sys_path() -> list[tuple[str, str | None, str | None]]:
    global _scanned
    if _scanned is None or _scanned[0] != sys.path:
        _scanned = (list(sys.path), _declared(sys.path))
    return _scanned[1]


def entry_points(group: str = "proctor", path: list[str] | None = None) -> list[EntryPoint]:
    """The entry points of ``group`` declared by the distributions on ``path``
    (``sys.path`` by default), in path order."""
    declared = _declared(path) if path is not None else _declared_on_sys_path()
    found: list[EntryPoint] = []
    for dist, version, text in declared:
        if text is None or f"[{group}]" not in text:
            continue
        for name, value in _parse(text, group):
            found.append(EntryPoint(name, value, dist, version))
    return found


# The pydantic releases whose plugin loader is known (checked in each release's source):
# pydantic imports only ``get_plugins`` from ``pydantic.plugin._loader``, and only when it
# builds a validator. A release outside the range keeps its own loader.
_PYDANTIC_KNOWN = ((2, 5), (2, 15))
_LOADER = "pydantic.plugin._loader"


def _no_plugins() -> tuple[()]:
    return ()


def spare_pydantic_plugin_scan() -> bool:
    """Tell pydantic it has no plugins when no distribution on ``sys.path`` declares one.

    The first time pydantic builds a model it looks for its plugins: it imports
    ``importlib.metadata`` and reads the metadata of every installed distribution, ~20 ms
    in a CLI write, a quarter of importing click and pydantic. The CLI has just read the
    same ``entry_points.txt`` files for its own group; when none of them declares a
    ``pydantic`` entry point that search can only come back empty, so pydantic's loader
    is handed the empty answer beforehand. Not done (pydantic searches as usual) when a
    distribution declares one, when something on ``sys.path`` is not a folder (a zip can
    hold distributions this scan does not open), when a non-standard finder can report
    distributions, or for a pydantic release whose loader is not known. Returns whether
    it was done. For the CLI process only: a program that imports proctor keeps
    pydantic's own behaviour.
    """
    if _LOADER in sys.modules:
        return False
    declared = _declared_on_sys_path()
    version = next((v for name, v, _ in declared if _normalise(name) == "pydantic"), None)
    try:
        major_minor = tuple(int(part) for part in (version or "").split(".")[:2])
    except ValueError:
        return False
    if not _PYDANTIC_KNOWN[0] <= major_minor < _PYDANTIC_KNOWN[1]:
        return False
    if any(text is not None and "[pydantic]" in text for _, _, text in declared):
        return False
    if any(os.path.isfile(entry) for entry in sys.path if entry):
        return False
    standard = ("_frozen_importlib", "_frozen_importlib_external")
    if any(
        hasattr(finder, "find_distributions")
        and getattr(finder, "__module__", type(finder).__module__) not in standard
        for finder in sys.meta_path
    ):
        return False
    loader = types.ModuleType(_LOADER, "pydantic's plugin loader, answered by proctor: none.")
    loader.get_plugins = _no_plugins  # type: ignore[attr-defined]
    sys.modules[_LOADER] = loader
    return True
