"""Parameters of a run: converted from text, checked against the metadata and ``run()``.

The types are the metadata's ``type`` strings (``str``, ``int | None``, ``list[str]``,
``dict[str, float]``, ``Literal["a", "b"]``...), read with ``ast`` and never evaluated.
A name this module does not know (a class of the procedure's own, say) checks nothing:
the procedure gets the JSON value and decides. Text from ``-p KEY=VALUE`` is converted
by the declared type first, so ``-p name=007`` stays the string ``"007"`` for a ``str``
parameter and becomes ``7`` for an ``int`` one.

Every problem of a call is collected into one ``ParamsError`` (a usage error, exit 2):
a caller fixing a call wants all of them at once, and nothing runs.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proctor.core.errors import UsageError

if TYPE_CHECKING:
    from proctor.procedures.signature import Signature
    from proctor.procedures.spec import ProcedureSpec

__all__ = ["ParamType", "ParamsError", "check_params", "json_schema", "parse_type"]


class ParamsError(UsageError):
    """The params of a run do not fit the procedure; ``problems`` lists each."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems
        self.findings = list(problems)  # one line each in --json "errors"


@dataclass(frozen=True)
class ParamType:
    """A parsed type: ``kind`` is any, str, int, float, bool, none, list, dict, tuple,
    union or literal; ``args`` holds the item types, or the literal values."""

    kind: str
    args: tuple[Any, ...] = ()
    text: str = "Any"


ANY = ParamType("any")
SCALARS = {
    "str": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "None": "none",
    "NoneType": "none",
    "Any": "any",
    "object": "any",
}
LISTS = {"list", "List", "Sequence", "Iterable", "Collection", "set", "Set", "frozenset"}
DICTS = {"dict", "Dict", "Mapping", "MutableMapping"}
TUPLES = {"tuple", "Tuple"}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.List, t.Optional
        return node.attr
    return None


def _node_type(node: ast.expr) -> ParamType:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ParamType("none")
        if isinstance(node.value, str):  # a quoted forward reference
            return parse_type(node.value)
        return ANY
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([_node_type(node.left), _node_type(node.right)])
    if isinstance(node, ast.Subscript):
        base = _name(node.value)
        inner = node.slice
        items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        if base == "Optional":
            return _union([_node_type(items[0]), ParamType("none")])
        if base == "Union":
            return _union([_node_type(i) for i in items])
        if base == "Literal":
            values = tuple(i.value for i in items if isinstance(i, ast.Constant))
            return ParamType("literal", values) if len(values) == len(items) else ANY
        if base in LISTS:
            return ParamType("list", (_node_type(items[0]),))
        if base in DICTS:
            return ParamType("dict", (_node_type(items[-1]),))
        if base in TUPLES:
            if len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is ...:
                return ParamType("list", (_node_type(items[0]),))
            return ParamType("tuple", tuple(_node_type(i) for i in items))
        if base == "Annotated":
            return _node_type(items[0])
        return ANY
    name = _name(node)
    if name in SCALARS:
        return ParamType(SCALARS[name])
    if name in LISTS:
        return ParamType("list", (ANY,))
    if name in DICTS:
        return ParamType("dict", (ANY,))
    if name in TUPLES:
        return ParamType("list", (ANY,))
    return ANY


def _union(members: list[ParamType]) -> ParamType:
    flat: list[ParamType] = []
    for m in members:
        flat.extend(m.args if m.kind == "union" else (m,))
    if any(m.kind == "any" for m in flat):
        return ANY
    return ParamType("union", tuple(dict.fromkeys(flat)))


def parse_type(text: str | None) -> ParamType:
    """The metadata's type string parsed; anything unreadable is ``any``."""
    if not text or not text.strip():
        return ANY
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return ANY
    parsed = _node_type(node)
    return ParamType(parsed.kind, parsed.args, text.strip())


# -- checking values -----------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


def check_value(value: Any, t: ParamType) -> str | None:
    """None when ``value`` fits ``t``, else what is wrong."""
    kind = t.kind
    if kind == "any":
        return None
    if kind == "union":
        if any(check_value(value, m) is None for m in t.args):
            return None
        return f"expected {t.text}, got {_describe(value)}"
    ok: bool
    if kind == "str":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "none":
        ok = value is None
    elif kind == "literal":
        ok = any(value == v and type(value) is type(v) for v in t.args)
    elif kind in ("list", "tuple"):
        if not isinstance(value, list | tuple):
            return f"expected a list ({t.text}), got {_describe(value)}"
        if kind == "tuple" and len(value) != len(t.args):
            return f"expected {len(t.args)} items ({t.text}), got {len(value)}"
        types = t.args if kind == "tuple" else t.args * len(value)
        for i, (item, it) in enumerate(zip(value, types)):
            problem = check_value(item, it)
            if problem:
                return f"item {i}: {problem}"
        return None
    elif kind == "dict":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return f"expected an object ({t.text}), got {_describe(value)}"
        for key, item in value.items():
            problem = check_value(item, t.args[0])
            if problem:
                return f"key {key!r}: {problem}"
        return None
    else:
        ok = True
    return None if ok else f"expected {t.text}, got {_describe(value)}"


# -- converting text -----------------------------------------------------------------------

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def _from_text(text: str, t: ParamType) -> Any:
    kind = t.kind
    if kind == "str":
        return text
    if kind == "int":
        try:
            return int(text.strip(), 10)
        except ValueError:
            return text
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "bool":
        low = text.strip().lower()
        return True if low in TRUE else False if low in FALSE else text
    if kind == "none":
        return None if text.strip().lower() in ("null", "none", "") else text
    if kind == "union":
        if text.strip().lower() in ("null", "none") and any(m.kind == "none" for m in t.args):
            return None
        # Strings last: "5" for ``int | str`` means the number.
        for member in sorted(t.args, key=lambda m: m.kind == "str"):
            if member.kind == "none":
                continue
            value = _from_text(text, member)
            if check_value(value, member) is None:
                return value
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# -- the whole call ------------------------------------------------------------------------


def check_params(
    name: str,
    spec: ProcedureSpec,
    signature: Signature | None,
    params: Mapping[str, Any],
    *,
    from_text: bool = False,
) -> dict[str, Any]:
    """The params to call ``run(**params)`` with, converted and checked, or ParamsError.

    ``from_text``: every value is a string typed on a command line, converted by its
    declared type. Otherwise values are JSON values already (the API, MCP, examples)
    and are only checked. Parameters left out take ``run()``'s own defaults.
    """
    declared = {p.name: p for p in spec.parameters}
    named = {p.name: p for p in signature.named()} if signature is not None else {}
    takes_kwargs = signature.takes_kwargs if signature is not None else False
    problems: list[str] = []
    out: dict[str, Any] = {}
    for key, raw in params.items():
        param = declared.get(key)
        sig_param = named.get(key)
        kind = param.kind if param is not None else (sig_param.kind if sig_param else None)
        if param is None and sig_param is None and not takes_kwargs:
            known = ", ".join(declared) or "no parameters"
            problems.append(f"unknown parameter {key!r} (takes {known})")
            continue
        if kind == "positional_only":
            problems.append(f"parameter {key!r} is positional-only and cannot be passed")
            continue
        t = parse_type(param.type if param is not None else "Any")
        value = _from_text(raw, t) if from_text and isinstance(raw, str) else raw
        problem = check_value(value, t)
        if problem:
            problems.append(f"parameter {key!r}: {problem}")
            continue
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            problems.append(f"parameter {key!r}: {_describe(value)} is not a JSON value")
            continue
        out[key] = value
    for key, param in declared.items():
        sig_param = named.get(key)
        has_default = sig_param.has_default if sig_param is not None else not param.required
        if key not in params and param.kind != "positional_only" and not has_default:
            problems.append(f"missing required parameter {key!r} ({param.type})")
    for key, sig_param in named.items():
        if key in declared or key in params or sig_param.has_default:
            continue
        if sig_param.kind == "positional_only":
            problems.append(f"run() cannot be called by name: {key!r} is positional-only")
        else:
            problems.append(f"missing required parameter {key!r}")
    if problems:
        raise ParamsError(f"{name}: " + "; ".join(problems), problems)
    return out


def _schema_of(t: ParamType) -> dict[str, Any]:
    kind = t.kind
    simple = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    if kind in simple:
        return {"type": simple[kind]}
    if kind == "none":
        return {"type": "null"}
    if kind == "list":
        return {"type": "array", "items": _schema_of(t.args[0])}
    if kind == "tuple":
        items = [_schema_of(a) for a in t.args]
        return {
            "type": "array",
            "prefixItems": items,
            "minItems": len(items),
            "maxItems": len(items),
        }
    if kind == "dict":
        return {"type": "object", "additionalProperties": _schema_of(t.args[0])}
    if kind == "literal":
        return {"enum": list(t.args)}
    if kind == "union":
        return {"anyOf": [_schema_of(m) for m in t.args]}
    return {}


def json_schema(spec: ProcedureSpec, signature: Signature | None = None) -> dict[str, Any]:
    """A JSON Schema of the params object, from the metadata (for MCP tools)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in spec.parameters:
        if p.kind == "positional_only":
            continue
        schema = _schema_of(parse_type(p.type))
        if p.description:
            schema["description"] = p.description
        if not p.required and p.default is not None:
            schema["default"] = p.default
        properties[p.name] = schema
        if p.required:
            required.append(p.name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if not (signature is not None and signature.takes_kwargs):
        out["additionalProperties"] = False
    return out
