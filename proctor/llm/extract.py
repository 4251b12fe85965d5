"""Where the JSON might be in a model's reply: the candidates :func:`parse_structured`
tries, most likely first.

Models wrap JSON in code fences (with or without a language), in XML-like tags, in prose,
behind a byte-order mark, with typographic quotes; or they send it double-encoded, under a
single wrapper key, or as a one-element list. Extraction is plain string scanning so a
malformed reply costs well under the 2 ms budget (``bench/bench_llm_parse.py``); the
expensive step, json-repair, runs only on candidates that strict ``json.loads`` refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"(```+|~~~+)[ \t]*([\w.+-]*)[^\n]*\n(.*?)(?:\n[ \t]*\1|\Z)", re.DOTALL)
_TAG = re.compile(r"<([A-Za-z][\w-]{0,40})>\s*(.*?)\s*</\1\s*>", re.DOTALL)
_STRUCTURAL = re.compile(r'["\\{}\[\]]')
_SMART = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "«": '"', "»": '"'})
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_JSONISH = ("{", "[", '"')

# How many balanced top-level values to offer: a reply that shows an example object
# before the real one needs the second; more than a few is noise.
MAX_BALANCED = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    """A slice of the reply that may be JSON. ``source`` says where it was found, for
    error messages ("fence 1", "tag <json>", "object 2", "whole reply")."""

    source: str
    text: str
    repair_only: bool = False


def clean(text: str) -> str:
    """The reply without byte-order marks, zero-width characters and outer whitespace."""
    if any(ch in text for ch in _INVISIBLE):
        text = text.translate({ord(ch): None for ch in _INVISIBLE})
    return text.strip()


def balanced_spans(text: str, limit: int = MAX_BALANCED) -> Iterator[tuple[int, int | None]]:
    """``(start, end)`` of the first top-level ``{...}`` / ``[...]`` values, strings and
    escapes respected; ``end`` is None for one that never closes (cut off or malformed)."""
    found = 0
    pos = 0
    length = len(text)
    while found < limit and pos < length:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        depth = 0
        in_string = False
        skip_to = -1
        end: int | None = None
        for match in _STRUCTURAL.finditer(text, start):
            i = match.start()
            if i < skip_to:
                continue
            ch = match.group()
            if in_string:
                if ch == "\\":
                    skip_to = i + 2
                elif ch == '"':
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
                if depth < 0:  # a stray closer before any opener of ours
                    break
        yield start, end
        found += 1
        if end is None:
            return
        pos = end


def candidates(text: str) -> list[Candidate]:
    """Every distinct candidate, in the order they are tried."""
    body = clean(text)
    out: list[Candidate] = []
    seen: set[str] = set()

    def add(source: str, chunk: str, repair_only: bool = False) -> None:
        chunk = chunk.strip()
        if chunk and chunk not in seen:
            seen.add(chunk)
            out.append(Candidate(source, chunk, repair_only))

    add("whole reply", body)
    if "```" in body or "~~~" in body:
        for n, match in enumerate(_FENCE.finditer(body), 1):
            inner = clean(match.group(3))
            if inner.startswith(_JSONISH):
                add(f"fence {n}" + (f" ({match.group(2)})" if match.group(2) else ""), inner)
    if "</" in body:
        for match in _TAG.finditer(body):
            inner = clean(match.group(2))
            if inner.startswith(_JSONISH):
                add(f"tag <{match.group(1)}>", inner)
    for n, (start, end) in enumerate(balanced_spans(body), 1):
        if end is None:
            add(f"unclosed value {n}", body[start:], repair_only=True)
        else:
            add(f"value {n}", body[start:end])
    if body.translate(_SMART) != body:
        smart = body.translate(_SMART)
        add("whole reply, plain quotes", smart)
        for n, (start, end) in enumerate(balanced_spans(smart), 1):
            add(f"value {n}, plain quotes", smart[start:end] if end else smart[start:], end is None)
    return out


def variants(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """The parsed value, then what it may be wrapping: JSON inside a string, the element
    of a one-element list, the value under a single key. Each with a short label."""
    yield "", value
    if depth >= 3:
        return
    if isinstance(value, str):
        inner = value.strip()
        if inner.startswith(_JSONISH[:2]):
            import json

            try:
                decoded = json.loads(inner)
            except ValueError:
                return
            for label, v in variants(decoded, depth + 1):
                yield "double-encoded" + (", " + label if label else ""), v
    elif isinstance(value, list) and len(value) == 1:
        for label, v in variants(value[0], depth + 1):
            yield "one-element list" + (", " + label if label else ""), v
    elif isinstance(value, dict) and len(value) == 1:
        (key, inner_value), *_ = value.items()
        if isinstance(inner_value, dict | list | str):
            for label, v in variants(inner_value, depth + 1):
                yield f"under {key!r}" + (", " + label if label else ""), v
