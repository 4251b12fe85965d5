"""The entry point's signature, read from the AST, and what a change to it breaks.

Callers of a procedure pass keyword params, so compatibility is about names, defaults and
the return annotation; nothing is imported or executed to find out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

from proctor.core.errors import ValidationFailed

Bump = Literal["major", "minor", "patch"]


@dataclass(frozen=True)
class Param:
    name: str
    has_default: bool
    annotation: str | None
    kind: Literal["positional", "keyword", "var_positional", "var_keyword"] = "positional"


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]
    returns: str | None

    def names(self) -> list[str]:
        return [p.name for p in self.params if p.kind in ("positional", "keyword")]

    def get(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


def parse_code(code: str, path: str = "main.py") -> ast.Module:
    """Parse or raise ValidationFailed naming the line, as a person fixing it needs."""
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


def signature_of(tree: ast.Module, entry: str = "run") -> Signature | None:
    fn = find_entry(tree, entry)
    if fn is None:
        return None
    a = fn.args
    params: list[Param] = []
    positional = a.posonlyargs + a.args
    first_default = len(positional) - len(a.defaults)
    for i, arg in enumerate(positional):
        params.append(Param(arg.arg, i >= first_default, _unparse(arg.annotation)))
    if a.vararg:
        params.append(Param(a.vararg.arg, True, _unparse(a.vararg.annotation), "var_positional"))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        params.append(Param(arg.arg, default is not None, _unparse(arg.annotation), "keyword"))
    if a.kwarg:
        params.append(Param(a.kwarg.arg, True, _unparse(a.kwarg.annotation), "var_keyword"))
    return Signature(tuple(params), _unparse(fn.returns))


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
    new_names = {p.name: p for p in new.params if p.kind in ("positional", "keyword")}
    old_names = {p.name: p for p in old.params if p.kind in ("positional", "keyword")}
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
