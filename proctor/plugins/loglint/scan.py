"""Which calls are logging calls: one walk over a module that learns its imports and
logger bindings and collects candidate calls, resolved once the whole module is known.

A text prefilter (:func:`interesting_lines`) lets the walk skip statements on lines that
cannot bind a logger or call one.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left

__all__ = [
    "LOG_METHODS",
    "METHOD_CALL",
    "NEVER_ALIASES",
    "Candidate",
    "Scan",
    "interesting_lines",
    "loggerish",
    "message_and_args",
    "receiver_name",
]

LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
)
# Calls that hand back a logger whatever they are called on (logging, structlog, loguru).
_FACTORIES = frozenset({"getLogger", "get_logger", "LoggerAdapter"})
# Methods that derive a logger from a logger.
_DERIVERS = frozenset({"getChild", "bind", "opt", "new"})

# A file without one of these cannot contain a logging call: ``.method(`` covers every
# receiver form, the word ``logging`` every function imported from the module. Each pattern
# starts with a literal so the regex engine can skip ahead (an alternation such as
# ``\blogging\b|...`` would be tried at every position, and cost more than the walk).
METHOD_CALL = re.compile(
    r"\.[\s\\]*(?:debug|info|warning|warn|error|exception|critical|fatal|log)[\s\\]*\("
)
# Lines a logger can be bound or imported on; statements spanning none of these lines and
# no ``.method(`` either are skipped without being walked.
_BINDING_LINES = (
    re.compile(r"Logger"),  # getLogger, LoggerAdapter, annotations
    re.compile(r"get_logger"),
    re.compile(r"import[ \t]"),
)
# Receivers that are never a plain alias of a logger.
NEVER_ALIASES = frozenset({"self", "cls", "super"})
_LOGGER_TYPE = re.compile(r"Logger(?:Adapter)?\b")
# Functions imported from logging are called by bare name: every statement is walked then.
_NAME_IMPORT = re.compile(r"from[ \t]+logging[ \t]+import\b")


# --- the walk ----------------------------------------------------------------------------


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names and attributes, None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _last_name(node: ast.expr) -> str | None:
    """The name a callee or annotation ends with: ``getLogger`` of ``logging.getLogger``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):  # Optional[Logger]
        return _last_name(node.slice) or _last_name(node.value)
    return None


def _is_logger_annotation(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp):  # Logger | None
        return _is_logger_annotation(node.left) or _is_logger_annotation(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "Logger | None"
        return _LOGGER_TYPE.search(node.value) is not None
    name = _last_name(node)
    return name is not None and (name.endswith(("Logger", "LoggerAdapter")))


def loggerish(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(("log", "logger"))


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class Candidate:
    """A call that may be a logging call; whether it is depends on the whole module."""

    __slots__ = ("call", "imported", "in_except", "method")

    def __init__(self, call: ast.Call, method: str, in_except: bool, imported: bool) -> None:
        self.call = call
        self.method = method
        self.in_except = in_except
        self.imported = imported  # a function imported from logging, called by its bare name


class Scan:
    """What one walk over a module learns: imports, logger bindings, candidate calls.

    Calls are resolved only after the walk, so a logger bound below its first use (a
    module-level ``log = getLogger()`` after the functions using it) still counts.
    """

    def __init__(self, logger_objects: frozenset[str]) -> None:
        self.logger_objects = logger_objects
        self.logging_names: set[str] = {"logging"}  # names bound to the logging module
        self.imports: dict[str, str] = {}  # local name -> qualified name
        self.functions: dict[str, str] = {}  # local name -> logging function it is
        self.bound: set[str] = set()  # names and attributes holding a logger
        self.pending: list[tuple[str, ast.expr]] = []  # a name and what it was bound to
        self.calls: list[Candidate] = []

    # -- collecting ----------------------------------------------------------------------

    def walk(self, tree: ast.Module, lines: list[int] | None) -> None:
        """Visit the tree in source order, skipping statements on none of ``lines``.

        Tracks whether each node runs inside an ``except`` block; a function body starts
        afresh, since it runs whenever it is called, not where it is defined.
        """
        stack: list[tuple[ast.AST, bool]] = [(tree, False)]
        pop = stack.pop
        push = stack.append
        stmt = ast.stmt
        call_type, assign_type = ast.Call, ast.Assign
        while stack:
            node, in_except = pop()
            t = type(node)
            if t is call_type:
                self._call(node, in_except)  # type: ignore[arg-type]
            elif t is assign_type:
                for target in node.targets:  # type: ignore[attr-defined]
                    self._bind(target, node.value)  # type: ignore[attr-defined]
            elif t is ast.ExceptHandler:
                in_except = True
            elif t in _FUNCTIONS:
                in_except = False
                self._parameters(node.args)  # type: ignore[attr-defined]
            elif t is ast.AnnAssign:
                self._annotated(node)  # type: ignore[arg-type]
            elif t is ast.NamedExpr:
                self._bind(node.target, node.value)  # type: ignore[attr-defined]
            elif t is ast.Import:
                self._import(node)  # type: ignore[arg-type]
            elif t is ast.ImportFrom:
                self._import_from(node)  # type: ignore[arg-type]
            children = list(ast.iter_child_nodes(node))
            for child in reversed(children):
                if lines is not None and isinstance(child, stmt):
                    index = bisect_left(lines, child.lineno)
                    if index == len(lines) or lines[index] > (child.end_lineno or child.lineno):
                        continue
                push((child, in_except))

    def _call(self, node: ast.Call, in_except: bool) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            if func.attr in LOG_METHODS:
                self.calls.append(Candidate(node, func.attr, in_except, False))
        elif isinstance(func, ast.Name) and func.id in self.functions:
            self.calls.append(Candidate(node, self.functions[func.id], in_except, True))

    def _bind(self, target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            name = target.id
        elif isinstance(target, ast.Attribute):
            name = target.attr
        else:
            return
        if value is None:
            self.bound.add(name)
        elif isinstance(value, (ast.Call, ast.Name, ast.Attribute)):
            self.pending.append((name, value))

    def _annotated(self, node: ast.AnnAssign) -> None:
        if _is_logger_annotation(node.annotation):
            self._bind(node.target, None)
        elif node.value is not None:
            self._bind(node.target, node.value)

    def _parameters(self, args: ast.arguments) -> None:
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            if arg.annotation is not None and _is_logger_annotation(arg.annotation):
                self.bound.add(arg.arg)

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.imports[alias.asname] = alias.name
                if alias.name == "logging":
                    self.logging_names.add(alias.asname)
            else:
                head = alias.name.partition(".")[0]
                self.imports[head] = head

    def _import_from(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            local = alias.asname or alias.name
            if module == "logging" and not node.level:
                if alias.name == "*":
                    for method in LOG_METHODS:
                        self.functions[method] = method
                    continue
                if alias.name in LOG_METHODS:
                    self.functions[local] = alias.name
                elif alias.name == "root":
                    self.bound.add(local)
            self.imports[local] = f"{module}.{alias.name}" if module else alias.name

    # -- resolving -----------------------------------------------------------------------

    def is_logger(self, node: ast.expr) -> bool:
        """Whether ``node`` evaluates to a logger (or to the logging module)."""
        if isinstance(node, ast.Name):
            name = node.id
            return (
                name in self.logging_names
                or name in self.bound
                or loggerish(name)
                or self._configured(name)
            )
        if isinstance(node, ast.Attribute):
            attr = node.attr
            if attr in self.bound or loggerish(attr):
                return True
            if (
                attr == "root"
                and isinstance(node.value, ast.Name)
                and node.value.id in self.logging_names
            ):
                return True
            dotted = _dotted(node)
            return dotted is not None and self._configured(dotted)
        if isinstance(node, ast.Call):
            func = node.func
            called = _last_name(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
            if called in _FACTORIES:
                return True
            if called in _DERIVERS and isinstance(func, ast.Attribute):
                return self.is_logger(func.value)
        return False

    def _configured(self, dotted: str) -> bool:
        """Whether ``dotted`` is a configured logger object, as written or once imports
        are followed (``from app import log`` makes ``log`` mean ``app.log``)."""
        if not self.logger_objects:
            return False
        head, dot, rest = dotted.partition(".")
        qualified = self.imports.get(head)
        if qualified is None:
            return dotted in self.logger_objects
        qualified = qualified.lstrip(".")
        return (f"{qualified}.{rest}" if dot else qualified) in self.logger_objects

    def resolve_bindings(self) -> None:
        """Settle which names hold loggers, aliases of aliases included, in any order."""
        pending = self.pending
        changed = True
        while changed and pending:
            changed = False
            rest: list[tuple[str, ast.expr]] = []
            for name, value in pending:
                if name in self.bound:
                    continue
                if self.is_logger(value):
                    self.bound.add(name)
                    changed = True
                else:
                    rest.append((name, value))
            pending = rest

    def follow_aliases(self, text: str, names: set[str]) -> None:
        """Find plain aliases (``other = base``) of loggers for ``names`` in the text.

        The walk skips lines without a logging call or a logger binding, and a bare alias
        is neither; searching the text for the few receivers left unresolved is far
        cheaper than walking every statement of every file.
        """
        changed = True
        while changed and names:
            changed = False
            for name in sorted(names):
                pattern = re.compile(
                    rf"(?<!\w){re.escape(name)}[ \t]*=(?!=)[ \t]*([A-Za-z_][\w.]*)[ \t]*(?:#|$)",
                    re.MULTILINE,
                )
                for m in pattern.finditer(text):
                    value = m.group(1)
                    last = value.rpartition(".")[2]
                    if (
                        last in self.bound
                        or loggerish(last)
                        or value in self.logging_names
                        or self._configured(value)
                    ):
                        self.bound.add(name)
                        names.discard(name)
                        changed = True
                        break


def message_and_args(call: ast.Call, method: str) -> tuple[ast.expr | None, list[ast.expr] | None]:
    """The message expression and the positional arguments after it.

    The message is argument 0 (argument 1 for ``.log(level, msg)``) or ``msg=``. The
    arguments are None when they cannot be counted (a ``*args`` splat).
    """
    index = 1 if method == "log" else 0
    positional = call.args
    for position, arg in enumerate(positional):
        if isinstance(arg, ast.Starred):
            if position <= index:
                return _keyword_message(call), None
            return positional[index], None
    if len(positional) > index:
        return positional[index], list(positional[index + 1 :])
    return _keyword_message(call), None


def receiver_name(call: ast.Call) -> str | None:
    """The name a method is called on: ``x`` of ``x.info()`` and of ``self.x.info()``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        value = func.value
        if isinstance(value, ast.Name):
            return value.id
        if isinstance(value, ast.Attribute):
            return value.attr
    return None


def _keyword_message(call: ast.Call) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == "msg":
            return kw.value
    return None


def interesting_lines(text: str, first_call: int) -> list[int] | None:
    """Lines a logging call, a logger binding or an import may start on; None when every
    statement must be walked (functions imported from logging are called by bare name)."""
    if "logging" in text and _NAME_IMPORT.search(text):
        return None
    positions = [m.start() for m in METHOD_CALL.finditer(text, first_call)]
    for pattern in _BINDING_LINES:
        positions.extend(m.start() for m in pattern.finditer(text))
    positions.sort()
    found: list[int] = []
    line, last = 1, 0
    for start in positions:
        line += text.count("\n", last, start)
        last = start
        if not found or found[-1] != line:
            found.append(line)
    return found
