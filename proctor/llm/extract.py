"""Where the JSON might be in a model's reply: the candidates :func:`parse_structured`
tries, most likely first.

Models wrap JSON in code fences (with or without a language), in XML-like tags, in prose,
behind a byte-order mark, with typographic quotes; or they send it double-encoded, under a
single wrapper key, or as a one-element list. Extraction is plain string scanning so a
malformed reply costs well under the 2 ms budget (``bench/bench_llm_parse.py``); the
expensive step, json-repair, runs only on candidates that strict ``json.loads`` refused.
"""

from __future__ import annotations

import json
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


def candidates(text: str) -> Iterator[Candidate]:
    """Every distinct candidate, in the order they are tried, found only as needed: a
    reply that is plain JSON costs one ``json.loads``, not a scan."""
    body = clean(text)
    seen: set[str] = set()

    def fresh(chunk: str) -> bool:
        if not chunk or chunk in seen:
            return False
        seen.add(chunk)
        return True

    if fresh(body):
        yield Candidate("whole reply", body)
    if "```" in body or "~~~" in body:
        for n, match in enumerate(_FENCE.finditer(body), 1):
            inner = clean(match.group(3))
            if inner.startswith(_JSONISH) and fresh(inner):
                lang = f" ({match.group(2)})" if match.group(2) else ""
                yield Candidate(f"fence {n}{lang}", inner)
    if "</" in body:
        for match in _TAG.finditer(body):
            inner = clean(match.group(2))
            if inner.startswith(_JSONISH) and fresh(inner):
                yield Candidate(f"tag <{match.group(1)}>", inner)
    for n, (start, end) in enumerate(balanced_spans(body), 1):
        chunk = body[start:end].strip() if end else body[start:].strip()
        if fresh(chunk):
            yield Candidate(f"{'unclosed ' if end is None else ''}value {n}", chunk, end is None)
    smart = body.translate(_SMART)
    if smart != body:
        if fresh(smart):
            yield Candidate("whole reply, plain quotes", smart)
        for n, (start, end) in enumerate(balanced_spans(smart), 1):
            chunk = smart[start:end].strip() if end else smart[start:].strip()
            if fresh(chunk):
                yield Candidate(f"value {n}, plain quotes", chunk, end is None)


def variants(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """The parsed value, then what it may be wrapping: JSON inside a string, the element
    of a one-element list, the value under a single key. Each with a short label."""
    yield "", value
    if depth >= 3:
        return
    if isinstance(value, str):
        inner = value.strip()
        if inner.startswith(_JSONISH[:2]):
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


_JSON_STRING = re.compile(r'("(?:[^"\\]|\\.)*")', re.DOTALL)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_CLOSER = {"{": "}", "[": "]"}
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w-]*)(\s*:)")
_VALUE_END = re.compile(r"([\d}\]el])([ \t]*\n\s*)$")


def light_repair(text: str) -> str | None:
    """``text`` with the harmless slips fixed exactly, or None if there were none.

    Outside strings only: ``//`` and ``/* */`` comments, trailing commas, bare keys
    (``{code: "..."}``), a comma missing at a line break before the next key, and closing
    brackets that are missing at the very end. Nothing is done when the text ends inside a
    string, since that is a cut-off reply and closing it would keep cut-off content.
    Cheaper and more faithful than json-repair (which, for one, drops a string's final
    newline), so it is tried first.
    """
    parts = _JSON_STRING.split(text)
    changed = False
    stack: list[str] = []
    for i in range(0, len(parts), 2):  # even indexes are outside strings
        segment = parts[i]
        if '"' in segment:
            return None  # an unterminated string
        if "/" in segment:
            cleaned = _COMMENT.sub("", segment)
            changed |= cleaned != segment
            segment = cleaned
        if "," in segment:
            cleaned = _TRAILING_COMMA.sub(r"\1", segment)
            changed |= cleaned != segment
            segment = cleaned
        if ":" in segment and _BARE_KEY.search(segment):
            changed, segment = True, _BARE_KEY.sub(r'\1"\2"\3', segment)
        if 0 < i < len(parts) - 1 and "\n" in segment:  # between two strings
            if not segment.strip():
                changed, segment = True, "," + segment
            elif (match := _VALUE_END.search(segment)) is not None:
                changed = True
                segment = segment[: match.start(2)] + "," + match.group(2)
        parts[i] = segment
        for ch in segment:
            if ch in "{[":
                stack.append(_CLOSER[ch])
            elif ch in "}]":
                if not stack or stack.pop() != ch:
                    return None
    if stack:
        last = parts[-1].rstrip()
        parts[-1] = last.removesuffix(",") + "".join(reversed(stack))
        changed = True
    return "".join(parts) if changed else None


_QUOTE_OR_ESCAPE = re.compile(r'[\\"]')
_AFTER_CLOSE = frozenset(",:}]")


def escape_inner_quotes(text: str) -> str | None:
    """``text`` with quotes inside strings escaped, judged by what follows each quote: a
    string ends only at a quote followed by ``,`` ``:`` ``}`` ``]`` or the end. None when
    no quote needed escaping. A guess, so its result goes through the same guard as
    json-repair's (see :func:`proctor.llm.structured.parse_structured`)."""
    out: list[str] = []
    last = 0
    in_string = False
    skip_to = -1
    changed = False
    length = len(text)
    for match in _QUOTE_OR_ESCAPE.finditer(text):
        i = match.start()
        if i < skip_to:
            continue
        if match.group() == "\\":
            if in_string:
                skip_to = i + 2
            continue
        if not in_string:
            in_string = True
            continue
        j = i + 1
        while j < length and text[j] in " \t\r\n":
            j += 1
        if j >= length or text[j] in _AFTER_CLOSE:
            in_string = False
            continue
        out.append(text[last:i])
        out.append('\\"')
        last = i + 1
        changed = True
    if not changed:
        return None
    out.append(text[last:])
    return "".join(out)


_PLACEHOLDER = re.compile(r"\u27e6(\d+)\u27e7")


def ends_inside_string(text: str) -> bool:
    """Whether a string is still open at the end: the mark of a cut-off reply."""
    parts = _JSON_STRING.split(text)
    return any('"' in parts[i] for i in range(0, len(parts), 2))


def protect_strings(text: str) -> tuple[str, list[str]]:
    """``text`` with every well-formed string literal replaced by a short placeholder,
    and the decoded literals. json-repair then sees only the structure: it is fast on
    that and cannot mangle a string's content (it splits code at commas and drops a final
    newline when it reads the strings itself)."""
    parts = _JSON_STRING.split(text)
    literals: list[str] = []
    for i in range(1, len(parts), 2):
        literal = parts[i]
        try:
            decoded = json.loads(literal, strict=False)
        except ValueError:
            decoded = literal[1:-1]
        parts[i] = f'"\u27e6{len(literals)}\u27e7"'
        literals.append(decoded if isinstance(decoded, str) else literal[1:-1])
    return "".join(parts), literals


def restore_strings(value: Any, literals: list[str]) -> Any:
    """The inverse of :func:`protect_strings` on a parsed value."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return literals[int(whole.group(1))]
        if "\u27e6" in value:
            return _PLACEHOLDER.sub(lambda m: literals[int(m.group(1))], value)
        return value
    if isinstance(value, dict):
        return {
            restore_strings(k, literals): restore_strings(v, literals) for k, v in value.items()
        }
    if isinstance(value, list):
        return [restore_strings(v, literals) for v in value]
    return value
