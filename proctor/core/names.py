"""Name rules shared by every face; no pydantic here, so cheap reads stay cheap."""

from __future__ import annotations

import re

from proctor.core.errors import UsageError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class InvalidNameError(UsageError, ValueError):
    """A name that breaks the rule (exit 2). A ValueError too, so a pydantic validator
    that calls :func:`check_name` turns it into a validation error as before."""


#: Device names Windows reserves in any folder: a procedure folder named so cannot be
#: checked out there (git refuses it under ``core.protectNTFS``).
WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)


def check_name(name: object, what: str = "procedure name") -> str:
    """Refuse a name before git is touched: it becomes a path component and a tag part."""
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a string")
    if NAME_PATTERN.fullmatch(name):
        if name in WINDOWS_RESERVED:
            raise InvalidNameError(
                f"invalid {what} {name!r}: a device name Windows reserves, so the folder "
                "could not be checked out there"
            )
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
    raise InvalidNameError(f"invalid {what} {shown!r}: {why} (allowed: ^[a-z][a-z0-9_]{{0,63}}$)")


#: What ``git check-ref-format`` refuses in a ref name: control characters and space,
#: ``~ ^ : ? * [ \``, ``..``, ``@{``, an empty component, a component starting with ``.``
#: or ending in ``.lock``, a leading or trailing ``/`` or a trailing ``.``.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|\Z)|^[./]|[./]\Z")


def ref_format_problem(name: str) -> str | None:
    """Why git would refuse ``name`` as a ref name (None when it is a valid one)."""
    if not name:
        return "it is empty"
    if name == "@":
        return "'@' alone is not a ref name"
    match = _BAD_REF.search(name)
    if match is None:
        return None
    return f"git check-ref-format refuses {match.group()!r} at position {match.start() + 1}"
