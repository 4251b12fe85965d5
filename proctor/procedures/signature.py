"""The entry point's signature, read from the AST, and what a change to it breaks.

Callers of a procedure pass keyword params, so compatibility is about names, defaults and
the return annotation; nothing is imported or executed to find out. Defaults are read
with ``ast.literal_eval`` only, and the docstring is read as text (Google, NumPy and
Sphinx styles), so the metadata derived from a signature says what the code says
without running any of it.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from proctor.core.errors import ValidationFailed

Bump = Literal["major", "minor", "patch"]
Kind = Literal["positional_only", "positional", "keyword", "var_positional", "var_keyword"]
# The kinds a caller can name: ``run(**params)`` never fills *args, and **kwargs takes
# whatever is left over, so neither is a parameter of its own.
NAMED_KINDS: tuple[Kind, ...] = ("positional_only", "positional", "keyword")


@dataclass(frozen=True)
class Param:
    name: str
    has_default: bool
    annotation: str | None
    kind: Kind = "positional"
    # The default as source text, and as a value when it is a JSON-representable literal
    # (``default_is_json``); ``ratio=0.5`` gives ("0.5", 0.5, True), ``when=time.time()``
    # gives ("time.time()", None, False).
    default_source: str | None = None
    default: Any = None
    default_is_json: bool = False


@dataclass(frozen=True)
class Docstring:
    """What a docstring says: its first paragraph and one text per documented parameter."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]
    returns: str | None
    doc: Docstring = field(default_factory=Docstring)

    def names(self) -> list[str]:
        return [p.name for p in self.params if p.kind in NAMED_KINDS]

    def named(self) -> list[Param]:
        """The parameters a caller can pass by name, in order."""
        return [p for p in self.params if p.kind in NAMED_KINDS]

    @property
    def takes_kwargs(self) -> bool:
        return any(p.kind == "var_keyword" for p in self.params)

    def get(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


def parse_code(code: str, path: str = "main.py") -> ast.Module:
    """Parse or raise ValidationFailed naming the line, as a person fixing it needs.

    A leading UTF-8 BOM is accepted as Python accepts it in a file (``ast.parse`` of a
    string would not); a NUL byte, which Python refuses anywhere, is named by its line.
    """
    code = code.removeprefix("\ufeff")
    nul = code.find("\0")
    if nul >= 0:
        line = code.count("\n", 0, nul) + 1
        column = nul - (code.rfind("\n", 0, nul) + 1) + 1
        raise ValidationFailed(
            f"{path}: a NUL byte at line {line}, column {column}: Python source cannot contain one",
            findings=[f"{path}:{line}: NUL byte"],
        )
    try:
        return ast.parse(code, filename=path)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        raise ValidationFailed(
            f"{path}: syntax error at {where}: {exc.msg}",
            findings=[f"{path}:{exc.lineno}: {exc.msg}"],
        ) from None


def _unparse(node: ast.expr | None) -> str | None:
    return None if node is None else ast.unparse(node)


def find_entry(
    tree: ast.Module, entry: str = "run"
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The last top-level definition of ``entry`` (a later one wins at import time too)."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry:
            found = node
    return found


def _json_representable(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip as the same value and type.

    Tuples, sets, bytes and complex numbers do not (a tuple comes back a list), nor do
    NaN and infinities (not JSON at all).
    """
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_representable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_representable(v) for k, v in value.items())
    return False


def _param(name: str, annotation: ast.expr | None, kind: Kind, default: ast.expr | None) -> Param:
    if default is None:
        return Param(name, False, _unparse(annotation), kind)
    source = ast.unparse(default)
    try:
        value = ast.literal_eval(default)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return Param(name, True, _unparse(annotation), kind, source)
    if not _json_representable(value):
        return Param(name, True, _unparse(annotation), kind, source)
    return Param(name, True, _unparse(annotation), kind, source, value, True)


def signature_of(tree: ast.Module, entry: str = "run") -> Signature | None:
    fn = find_entry(tree, entry)
    if fn is None:
        return None
    a = fn.args
    params: list[Param] = []
    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
    defaults += list(a.defaults)
    for i, arg in enumerate(positional):
        kind: Kind = "positional_only" if i < len(a.posonlyargs) else "positional"
        params.append(_param(arg.arg, arg.annotation, kind, defaults[i]))
    if a.vararg:
        params.append(Param(a.vararg.arg, True, _unparse(a.vararg.annotation), "var_positional"))
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults):
        params.append(_param(arg.arg, arg.annotation, "keyword", kw_default))
    if a.kwarg:
        params.append(Param(a.kwarg.arg, True, _unparse(a.kwarg.annotation), "var_keyword"))
    return Signature(tuple(params), _unparse(fn.returns), parse_docstring(ast.get_docstring(fn)))


# -- docstrings ----------------------------------------------------------------------------

_GOOGLE_PARAMS = re.compile(
    r"^(args|arguments|parameters|params|keyword args|keyword arguments|other parameters)\s*:\s*$",
    re.IGNORECASE,
)
_GOOGLE_RETURNS = re.compile(r"^(returns|return|yields)\s*:\s*$", re.IGNORECASE)
_GOOGLE_ANY = re.compile(r"^[A-Z][A-Za-z ]{1,30}:\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}([\w, *]+?)\s*(?::\s*(.*))?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:\s*(.*)$")
_SPHINX_RETURNS = re.compile(r"^:returns?\s*:\s*(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(lines: list[str]) -> str:
    return " ".join(part.strip() for part in lines if part.strip())


def parse_docstring(text: str | None) -> Docstring:
    """Summary and per-parameter texts from a Google, NumPy or Sphinx style docstring.

    Text that follows none of them still gives the summary; a parameter it does not
    describe simply has no text. Nothing here raises: a docstring is prose, not input.
    """
    if not text:
        return Docstring()
    lines = text.expandtabs().splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip():
            break
        if _GOOGLE_PARAMS.match(line.strip()) or line.strip().startswith(":"):
            break
        summary_lines.append(line)
    params: dict[str, str] = {}
    returns: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if stripped and _NUMPY_RULE.match(nxt) and not _NUMPY_RULE.match(line):
            i = _numpy_section(lines, i, stripped.lower(), params, returns)
            continue
        if _GOOGLE_PARAMS.match(stripped) or _GOOGLE_RETURNS.match(stripped):
            i = _google_section(lines, i, params, returns)
            continue
        m = _SPHINX_PARAM.match(stripped) or _SPHINX_RETURNS.match(stripped)
        if m:
            body = [m.group(m.lastindex or 1)]
            j = i + 1
            while j < len(lines) and lines[j].strip() and _indent(lines[j]) > _indent(line):
                body.append(lines[j])
                j += 1
            if stripped.startswith(":param"):
                params.setdefault(m.group(1), _join(body))
            else:
                returns.extend(body)
            i = j
            continue
        i += 1
    return Docstring(_join(summary_lines), params, _join(returns))


def _google_section(
    lines: list[str], start: int, params: dict[str, str], returns: list[str]
) -> int:
    """Read the section whose header is ``lines[start]``; return the line after it."""
    header = lines[start]
    is_params = bool(_GOOGLE_PARAMS.match(header.strip()))
    base = _indent(header)
    i = start + 1
    entry_indent: int | None = None
    name: str | None = None
    body: list[str] = []
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) <= base:
            break
        i += 1
        if not line.strip():
            continue
        if not is_params:
            returns.append(line)
            continue
        if entry_indent is None:
            entry_indent = _indent(line)
        m = _GOOGLE_ENTRY.match(line.strip()) if _indent(line) == entry_indent else None
        if m:
            name, body = m.group(1), [m.group(3)]
        elif name is not None:
            body.append(line)
        if name is not None:
            params[name] = _join(body)
    return i


def _numpy_section(
    lines: list[str], start: int, title: str, params: dict[str, str], returns: list[str]
) -> int:
    """A NumPy section: a title, a rule, entries at the title's indent; text below them."""
    base = _indent(lines[start])
    i = start + 2
    names: list[str] = []
    body: list[str] = []

    def flush() -> None:
        for n in names:
            params[n] = _join(body)

    while i < len(lines):
        line = lines[i]
        if line.strip() and i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]):
            break
        if not line.strip():
            i += 1
            continue
        if title in ("parameters", "other parameters", "keyword arguments"):
            if _indent(line) <= base:
                if names:
                    flush()
                m = _NUMPY_ENTRY.match(line.strip())
                names = [n.strip().lstrip("*") for n in m.group(1).split(",")] if m else []
                body = []
            else:
                body.append(line)
        elif title in ("returns", "yields") and _indent(line) > base:
            returns.append(line)
        i += 1
    if names:
        flush()
    return i


def code_signature(code: str, entry: str = "run", path: str = "main.py") -> Signature | None:
    return signature_of(parse_code(code, path), entry)


@dataclass(frozen=True)
class Compatibility:
    bump: Bump
    reasons: tuple[str, ...]

    @property
    def breaking(self) -> bool:
        return self.bump == "major"


def compare(old: Signature | None, new: Signature | None) -> Compatibility:
    """Classify a signature change as major (breaking), minor (new optional) or patch."""
    if old is None or new is None:
        if old is None and new is None:
            return Compatibility("patch", ())
        return Compatibility(
            "major" if old is not None else "minor",
            ("entry point removed",) if old is not None else ("entry point added",),
        )
    breaking: list[str] = []
    additive: list[str] = []
    new_names = {p.name: p for p in new.named()}
    old_names = {p.name: p for p in old.named()}
    accepts_any = any(p.kind == "var_keyword" for p in new.params)
    for name, p in old_names.items():
        if name not in new_names:
            if not accepts_any:
                breaking.append(f"parameter {name!r} removed or renamed")
        elif p.has_default and not new_names[name].has_default:
            breaking.append(f"parameter {name!r} lost its default")
    for name, p in new_names.items():
        if name not in old_names:
            if p.has_default:
                additive.append(f"new optional parameter {name!r}")
            else:
                breaking.append(f"new required parameter {name!r}")
    if old.returns != new.returns:
        breaking.append(f"return annotation changed from {old.returns} to {new.returns}")
    if breaking:
        return Compatibility("major", tuple(breaking))
    if additive:
        return Compatibility("minor", tuple(additive))
    return Compatibility("patch", ())
