"""Inline suppressions: ``# noqa: CODE[, CODE...]`` comments, read from the AST.

A noqa must name codes or prefixes; a bare one suppresses nothing, and the runner reports
it as ``PC002`` when the run asks for that code or the comment mentions one of the run's
codes (``# noqa PS101`` without the colon): a bare ``# noqa`` written for another tool is
that tool's business. A suppression on a statement's first or last line covers the whole
statement (the header only, for a compound statement), as flake8 users expect of a
multi-line call. Comments are told from ``#`` inside strings with the string spans the
AST already has, visiting only the statements on that line, so files that never say
"noqa" cost one regex search and no tokenizer.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

from proctor.checks.validation import Finding

__all__ = ["Noqa", "apply_noqa", "matches", "scan_noqa"]

_NOQA_HINT = re.compile(r"#\s*noqa", re.IGNORECASE)
# A noqa comment, optionally followed by `: CODE[, CODE ...]`. Codes are upper-case letters with
# optional digits (PS101, PS1, PS); anything else after the colon makes it a bare noqa.
_NOQA = re.compile(r"#\s*noqa\b(?P<rest>[^#]*)", re.IGNORECASE)
_NOQA_CODES = re.compile(r"\s*:\s*(?P<codes>[A-Z]+[0-9]*(?:(?:\s*,\s*|\s+)[A-Z]+[0-9]*)*)")
_CODE = re.compile(r"[A-Z]+[0-9]*")
_MENTIONED = re.compile(r"\b[A-Z]{1,4}[0-9]{1,4}\b")


class Noqa:
    """Inline suppressions of one file: codes per physical line and the bare ones."""

    __slots__ = ("codes", "bare", "mentioned")

    def __init__(self) -> None:
        self.codes: dict[int, tuple[str, ...]] = {}
        self.bare: list[tuple[int, int]] = []
        # Code-like words in the text of each bare noqa (codes without the colon), by place.
        self.mentioned: dict[tuple[int, int], tuple[str, ...]] = {}


# Physical line breaks as the parser counts them (str.splitlines also splits on \f, \x1c...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CHILD_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def _first_line(node: Any) -> int:
    if isinstance(node, ast.match_case):
        return int(node.pattern.lineno)
    start = int(node.lineno)
    for decorator in getattr(node, "decorator_list", ()):
        start = min(start, decorator.lineno)
    return start


def _last_line(node: Any) -> int:
    if isinstance(node, ast.match_case):
        return _last_line(node.body[-1])
    return int(node.end_lineno or node.lineno)


def _children(node: Any) -> list[Any]:
    """Nested statement-like nodes: statements, except handlers and match cases."""
    kids = [
        child
        for name in _CHILD_LISTS
        for child in getattr(node, name, None) or ()
        if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case)
    ]
    kids.sort(key=_first_line)
    return kids


def _header_fields(node: Any) -> list[ast.AST]:
    """The expressions of a compound statement's header (test, iter, args, decorators...)."""
    out: list[ast.AST] = []
    for name, value in ast.iter_fields(node):
        if name in _CHILD_LISTS:
            continue
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                out.append(child)
    return out


def _header_end(node: Any) -> int:
    end = _first_line(node) if isinstance(node, ast.match_case) else int(node.lineno)
    for child in _header_fields(node):
        end = max(end, getattr(child, "end_lineno", None) or end)
    return end


def _enclosing(tree: ast.Module, line: int) -> tuple[Any, tuple[int, int] | None]:
    """The innermost statement-like node around ``line`` and the span that counts for it:
    a simple statement's first and last line, or a compound statement's header only (so
    a noqa on ``for ... :`` does not cover the loop body). ``(node, None)`` when the line
    is inside a compound statement but in neither its header nor a child (``else:``,
    comment lines); ``(None, None)`` between top-level statements.

    Only the statements on the way down are visited, never the whole tree.
    """
    from bisect import bisect_right

    nodes: list[Any] = list(tree.body)
    found: Any = None
    while nodes:
        starts = [_first_line(n) for n in nodes]
        index = bisect_right(starts, line) - 1
        if index < 0 or _last_line(nodes[index]) < line:
            return found, None
        found = nodes[index]
        kids = _children(found)
        if not kids:
            return found, (starts[index], _last_line(found))
        header = (starts[index], _header_end(found))
        if header[0] <= line <= header[1]:
            return found, header
        nodes = kids
    return found, None


def _roots_on_line(nodes: list[Any], line: int, roots: list[ast.AST]) -> None:
    """Collect the syntax that can hold string literals on ``line``: every simple
    statement touching it (``a = "#"; b()`` has two) and the headers of compound ones,
    descending only where the line is."""
    from bisect import bisect_right

    index = bisect_right([_first_line(n) for n in nodes], line) - 1
    while index >= 0 and _last_line(nodes[index]) >= line:
        node = nodes[index]
        kids = _children(node)
        if not kids:
            roots.append(node)
        else:
            if _first_line(node) <= line <= _header_end(node):
                roots.extend(_header_fields(node))
            _roots_on_line(kids, line, roots)
        index -= 1


def _comment_start(tree: ast.Module, number: int, line: str) -> int | None:
    """Index of the ``#`` that starts the comment on a physical line, or None if every
    ``#`` on it is inside a string literal (string spans come from the AST, visiting
    only the statements on that line)."""
    hashes = [i for i, ch in enumerate(line) if ch == "#"]
    roots: list[ast.AST] = []
    _roots_on_line(list(tree.body), number, roots)
    strings: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for root in roots:
        for sub in ast.walk(root):
            if isinstance(sub, ast.JoinedStr) or (
                isinstance(sub, ast.Constant) and isinstance(sub.value, str | bytes)
            ):
                if sub.lineno <= number <= (sub.end_lineno or sub.lineno):
                    strings.append(
                        (
                            (sub.lineno, sub.col_offset),
                            (sub.end_lineno or sub.lineno, sub.end_col_offset or 0),
                        )
                    )
    if not strings:
        return hashes[0] if hashes else None
    for index in hashes:
        # AST columns are UTF-8 byte offsets.
        here = (number, len(line[:index].encode("utf-8")))
        if not any(start <= here < end for start, end in strings):
            return index
    return None


def scan_noqa(text: str, tree: ast.Module) -> Noqa:
    """Read ``# noqa`` comments. Files that never mention noqa cost one regex search."""
    result = Noqa()
    if not _NOQA_HINT.search(text):
        return result
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if "#" not in line or not _NOQA_HINT.search(line):
            continue
        start = _comment_start(tree, number, line)
        if start is None:
            continue
        comment = line[start:]
        for match in _NOQA.finditer(comment):
            codes = _NOQA_CODES.match(match.group("rest"))
            if codes is None:
                where = (number, start + match.start() + 1)
                result.bare.append(where)
                words = tuple(_MENTIONED.findall(match.group("rest")))
                if words:
                    result.mentioned[where] = words
                continue
            found = tuple(_CODE.findall(codes.group("codes")))
            result.codes[number] = result.codes.get(number, ()) + found
    return result


def matches(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(p) for p in prefixes)


def apply_noqa(findings: list[Finding], noqa: Noqa, tree: ast.Module) -> list[Finding]:
    """Drop findings whose line, or the first or last line of their statement (the header
    of a compound statement), carries a noqa naming their code or a prefix of it."""
    if not noqa.codes:
        return findings
    kept: list[Finding] = []
    for f in findings:
        if matches(f.code, noqa.codes.get(f.line, ())):
            continue
        _, span = _enclosing(tree, f.line)
        if span is not None and (
            matches(f.code, noqa.codes.get(span[0], ()))
            or matches(f.code, noqa.codes.get(span[1], ()))
        ):
            continue
        kept.append(f)
    return kept
