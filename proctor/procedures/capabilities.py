"""The one parser of a procedure's ``capabilities`` block, and where the hook finds it.

``metadata.json`` declares what a procedure may do beyond pure computation::

    "capabilities": {"network": true, "subprocess": false, "filesystem_write": ["out/"]}

Both readers of that block go through :func:`parse_capabilities`: the action pipeline
(through the spec model, which calls it before its own validation) and the pre-commit
procedure hook (through :func:`capabilities_for`, handed to the check runner, which knows
nothing of the layout). So a value is either refused by both or means the same to both:
``"network": "yes"`` is an error, not a ``True`` for one reader and a ``False`` for the
other.

Standard library only (and no pydantic): the procedure hook imports this on every start.
"""

from __future__ import annotations

import os
from typing import Any

from proctor.checks.validation import UNREADABLE, Capabilities, Finding

__all__ = ["CAPABILITY_KEYS", "capabilities_for", "parse_capabilities"]

CAPABILITY_KEYS = ("network", "subprocess", "filesystem_write")


def parse_capabilities(value: Any, where: str = "capabilities") -> Capabilities:
    """A ``capabilities`` block as loaded from JSON, checked strictly.

    ``network`` and ``subprocess`` must be JSON booleans, ``filesystem_write`` a list of
    strings, and no other key is allowed; a missing key means "not needed". Raises
    ValueError naming the key (prefixed by ``where``, when the caller's own message does
    not already say where) for anything else: a declaration that is misread widens or
    narrows what the checks let the code do.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(value, dict):
        raise ValueError(f"{prefix}expected a JSON object, got {_describe(value)}")
    unknown = sorted(str(key) for key in value if key not in CAPABILITY_KEYS)
    if unknown:
        raise ValueError(
            f"{prefix}unknown key(s) {', '.join(unknown)}; known: {', '.join(CAPABILITY_KEYS)}"
        )
    flags: dict[str, bool] = {}
    for key in ("network", "subprocess"):
        flag = value.get(key, False)
        if not isinstance(flag, bool):
            raise ValueError(f"{_key(where, key)} must be true or false, got {_describe(flag)}")
        flags[key] = flag
    paths = value.get("filesystem_write", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ValueError(
            f"{_key(where, 'filesystem_write')} must be a list of strings, got {_describe(paths)}"
        )
    return Capabilities(
        network=flags["network"], subprocess=flags["subprocess"], filesystem_write=tuple(paths)
    )


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _describe(value: Any) -> str:
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def capabilities_for(path: str) -> tuple[Capabilities, Finding | None]:
    """Capabilities declared by ``procedures/<name>/metadata.json`` next to a ``main.py``.

    Files elsewhere get none. A metadata file that cannot be read, or whose
    ``capabilities`` block is invalid, gives no capabilities plus a PC003 finding on it,
    so a broken declaration never widens what the code may do.
    """
    directory, name = os.path.split(path)
    parent = os.path.basename(os.path.dirname(os.path.abspath(directory or ".")))
    if name != "main.py" or parent != "procedures":
        return Capabilities(), None
    meta_path = os.path.join(directory, "metadata.json")
    if not os.path.exists(meta_path):
        return Capabilities(), None
    import json

    try:
        with open(meta_path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Capabilities(), _problem(meta_path, f"metadata.json could not be read: {exc}")
    if not isinstance(data, dict):
        return Capabilities(), _problem(
            meta_path, f"metadata.json must hold a JSON object, got {_describe(data)}"
        )
    if "capabilities" not in data:
        return Capabilities(), None
    try:
        return parse_capabilities(data["capabilities"]), None
    except ValueError as exc:
        return Capabilities(), _problem(meta_path, f"metadata.json: {exc}")


def _problem(path: str, message: str) -> Finding:
    return Finding(path, 1, 1, UNREADABLE, "error", message)
