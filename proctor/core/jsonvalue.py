"""JSON from users, bounded in depth.

``json.loads`` of a few kilobytes of ``[[[[...`` raises RecursionError (and a value
just under the interpreter's limit makes every later walk of it, pydantic's or
``json.dumps``, raise it instead). No metadata, parameter or proposal is nested more
than a few levels, so values deeper than ``MAX_DEPTH`` are refused where they are read,
as bad input (ValidationFailed, exit 2), naming where they came from.
"""

from __future__ import annotations

import json
from typing import Any

from proctor.core.errors import ValidationFailed

__all__ = ["MAX_DEPTH", "check_depth", "loads"]

MAX_DEPTH = 64


def loads(text: str | bytes, where: str) -> Any:
    """``json.loads``, refusing values nested deeper than ``MAX_DEPTH`` (a
    JSONDecodeError still comes out as it is, for the caller to place)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep(where) from None
    check_depth(data, where)
    return data


def check_depth(value: Any, where: str) -> None:
    """Raise ValidationFailed if ``value`` nests lists or objects deeper than
    ``MAX_DEPTH``; walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        stack.extend((child, depth + 1) for child in children)


def _too_deep(where: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: nested more than {MAX_DEPTH} levels deep")
