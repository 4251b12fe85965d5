"""Name rules shared by every face; no pydantic here, so cheap reads stay cheap."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def check_name(name: object, what: str = "procedure name") -> str:
    """Refuse a name before git is touched: it becomes a path component and a tag part."""
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string")
    if NAME_PATTERN.fullmatch(name):
        return name
    shown = name.replace("\0", "\\0")
    if len(name) > 64:
        why = "longer than 64 characters"
    elif "\0" in name:
        why = "contains a NUL byte"
    elif "/" in name or "\\" in name or ".." in name:
        why = "contains a path separator or '..'"
    elif any(ch.isspace() for ch in name):
        why = "contains whitespace"
    elif any(ch.isupper() for ch in name):
        why = "contains uppercase letters"
    elif not name:
        why = "is empty"
    else:
        why = "must start with a-z and contain only a-z, 0-9 and _"
    raise ValueError(f"invalid {what} {shown!r}: {why} (allowed: ^[a-z][a-z0-9_]{{0,63}}$)")
