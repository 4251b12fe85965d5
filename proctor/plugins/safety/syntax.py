"""Reading syntax for the ``safety`` checker: argument lists (does this argv run a shell
with inline code, is it literal) and what an expression is used for (parent maps,
namespace reads that only look at metadata, uses that patch a module).

Plain functions over ``ast`` nodes and resolver values, kept apart from the walk so
they can be read, and tested, on their own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

from proctor.checks.values import Qual, SeqValue, const_str, const_value
from proctor.plugins.safety.watch import INTERPRETER_FLAGS, METADATA_KEYS, SHELLS

__all__ = [
    "argv_items",
    "flows_into",
    "inline_command_argv",
    "literal_argv",
    "parents_of",
    "patches",
]


def _basename(program: str) -> str:
    name = program.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name.removesuffix(".exe")


def _inline_flag(arg: object, letter: str) -> bool:
    """``-c``, or a short-option cluster containing it (``-lc``, ``-ec``), or ``/c``."""
    if type(arg) is not str or len(arg) < 2:
        return False
    if arg[0] == "-" and arg[1] != "-":
        body = arg[1:]
        if len(body) <= 5 and body.isalpha() and letter in body:
            return True
        return letter == "c" and arg.lower() in ("-command", "-encodedcommand")
    return letter == "c" and arg.lower() in ("/c", "/k")


def inline_command_argv(items: Iterable[Any]) -> str | None:
    """The program if ``items`` is an argv running a shell/interpreter with inline code."""
    items = list(items)
    values = [const_value(v, None) for v in items]
    if not values:
        return None
    if items and type(items[0]) is Qual and items[0].name == "sys.executable":
        values[0] = "python"
    first = values[0]
    if type(first) is str and _basename(first) == "env" and len(values) > 1:
        values = values[1:]
        first = values[0]
    if type(first) is not str:
        return None
    program = _basename(first)
    letter: str | None = None
    if program in SHELLS:
        letter = "c"
    else:
        for interpreter, flag in INTERPRETER_FLAGS.items():
            if program == interpreter or (
                program.startswith(interpreter)
                and program[len(interpreter) :].replace(".", "").isdigit()
            ):
                letter = flag
                break
    if letter is None:
        return None
    for arg in values[1:]:
        if _inline_flag(arg, letter):
            return program
    return None


def argv_items(value: Any) -> tuple[Any, ...] | None:
    if type(value) is SeqValue:
        return value.items
    return None


def literal_argv(items: Any) -> bool:
    """An argument list fixed in the source: constant strings (the first may be
    ``sys.executable``), or one constant command string run without a shell."""
    if const_str(items) is not None:
        return True
    if type(items) is SeqValue:
        if items.open:
            return False
        items = items.items
    if not isinstance(items, (list, tuple)) or not items:
        return False
    for i, item in enumerate(items):
        if const_str(item) is not None:
            continue
        if i == 0 and type(item) is Qual and item.name == "sys.executable":
            continue
        return False
    return True


def parents_of(root: ast.AST) -> dict[ast.AST, ast.AST]:
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(root):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _metadata_key(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in METADATA_KEYS


def flows_into(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    """None when the namespace value of ``node`` is only tested or read for metadata;
    otherwise the node it flows into (an assignment, a call argument...)."""
    for _ in range(8):
        parent = parents.get(node)
        t = type(parent)
        if t is ast.Subscript:
            if parent.value is node and _metadata_key(parent.slice):  # type: ignore[union-attr]
                return None
            return parent
        if t is ast.Attribute and parent.attr == "get":  # type: ignore[union-attr]
            call = parents.get(parent)  # type: ignore[arg-type]
            if type(call) is ast.Call and call.func is parent and call.args:
                return None if _metadata_key(call.args[0]) else call
            return parent
        if t is ast.Compare:
            assert isinstance(parent, ast.Compare)
            if all(type(op) in (ast.In, ast.NotIn) for op in parent.ops):
                return None if _metadata_key(parent.left) else parent
            if all(type(op) in (ast.Is, ast.IsNot) for op in parent.ops):
                return None
            return parent
        if t in (ast.If, ast.While, ast.Assert) and parent.test is node:  # type: ignore[union-attr]
            return None
        if t is ast.UnaryOp and type(parent.op) is ast.Not:  # type: ignore[union-attr]
            return None
        if t is ast.BoolOp:
            assert isinstance(parent, ast.BoolOp)
            if parent.values[-1] is not node:
                return None  # a truth test; the value flows on only from the last operand
            node = parent
            continue
        if t is ast.IfExp:
            assert isinstance(parent, ast.IfExp)
            if parent.test is node:
                return None
            node = parent
            continue
        return parent
    return None


def patches(use: ast.AST, parents: dict[ast.AST, ast.AST], patched: set[str]) -> bool:
    """Whether a use of a module name patches it: ``pdb.set_trace = fake``,
    ``setattr(pdb, ...)``, ``monkeypatch.setattr(pdb, ...)``, ``mock.patch.object(pdb, ...)``,
    or keeps the original of an attribute the file patches (``orig = pdb.set_trace``)."""
    parent = parents.get(use)
    if type(parent) is ast.Attribute:
        if type(parent.ctx) is ast.Store:
            return True
        call = parents.get(parent)
        return parent.attr in patched and not (type(call) is ast.Call and call.func is parent)
    if type(parent) is ast.Call and parent.args and parent.args[0] is use:
        func = parent.func
        name = func.id if type(func) is ast.Name else getattr(func, "attr", None)
        return name in ("setattr", "object")
    return False
