"""Log lint: the wording and the hygiene of logging calls.

Linters check how a log message is built, never what it says. Teams that want their logs
to speak one vocabulary (here, by default, no "retry" language: operators grep for the
words the runbooks use) need a check that reads the message of every logging call and
nothing else: comments, exception texts, ``print`` output and variable names are out of
scope, or the check would drown in noise and be switched off.

How a call is recognised as a logging call follows ruff's heuristics, widened a little:

* the ``logging`` module itself (also under an alias, and functions imported from it);
* names bound from ``logging.getLogger(...)`` (plain names, ``self.x`` attributes, class
  attributes, annotated ``Logger`` parameters) and ``getLogger(...)`` used inline;
* any name or attribute whose last part ends in ``log`` or ``logger`` (any case);
* the dotted names configured in ``[log-lint] logger-objects``.

The pre-commit hook runs this on every commit, so it is built for speed: standard library
only, a text prefilter that skips files which cannot hold a logging call, one walk over
the syntax tree that skips statements on lines the prefilter found nothing on, and
regular expressions compiled once per configured list.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proctor.checks.validation import CheckContext, Finding, Rule, SourceFile, Validator
from proctor.core.errors import ConfigError

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings
    from proctor.core.config import Table
from proctor.core.hookspecs import hookimpl

LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
)
# Calls that hand back a logger whatever they are called on (logging, structlog, loguru).
_FACTORIES = frozenset({"getLogger", "get_logger", "LoggerAdapter"})
# Methods that derive a logger from a logger.
_DERIVERS = frozenset({"getChild", "bind", "opt", "new"})
_GAP = "\x00"  # stands for text unknown until run time (a variable, a placeholder)

# A file without one of these cannot contain a logging call: ``.method(`` covers every
# receiver form, the word ``logging`` every function imported from the module. Each pattern
# starts with a literal so the regex engine can skip ahead (an alternation such as
# ``\blogging\b|...`` would be tried at every position, and cost more than the walk).
_METHOD_CALL = re.compile(
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
_NEVER_ALIASES = frozenset({"self", "cls", "super"})
_LOGGER_TYPE = re.compile(r"Logger(?:Adapter)?\b")
# Functions imported from logging are called by bare name: every statement is walked then.
_NAME_IMPORT = re.compile(r"from[ \t]+logging[ \t]+import\b")

# printf-style conversion specifiers, as ``str % args`` parses them.
_PERCENT_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?(?P<conv>.?)",
    re.DOTALL,
)
_CONVERSIONS = frozenset("diouxXeEfFgGcrsa")
# Placeholders are filled at run time: they are gaps in the wording, and the names inside
# ``%(name)s`` or ``{name}`` are variable names, not words of the message.
_PLACEHOLDER = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]"
    r"|\{[^{}]*\}"
)

# The ``name=`` that ``f"{name=}"`` writes before the value.
_SELF_DOCUMENTING = re.compile(r"[\w.\[\]()'\"]+\s*=\s*$")
# Calls that hand their text argument (or receiver) through with the words intact.
_TEXT_METHODS = frozenset(
    {"upper", "lower", "title", "capitalize", "casefold", "strip", "lstrip", "rstrip"}
)
_TEXT_WRAPPERS = frozenset(
    {
        "_",
        "gettext",
        "gettext_lazy",
        "ugettext",
        "ugettext_lazy",
        "gettext_noop",
        "N_",
        "str",
        "dedent",
    }
)

RULES: tuple[Rule, ...] = (
    Rule(
        "PL101",
        "disallowed-phrase",
        "error",
        "The log message uses a phrase the project does not allow (by default, retry "
        "language); logs should use the vocabulary operators search for.",
        "Reword the message, e.g. 'attempt 2 of 5 failed' or 'request failed, scheduling "
        "attempt 3', or change `[log-lint] disallowed`.",
    ),
    Rule(
        "PL201",
        "logging-fstring",
        "warning",
        "The message is an f-string: it is formatted even when the level is disabled, and "
        "every message becomes a different string to aggregators.",
        "Pass a constant format and the values as arguments: `log.info('got %s', x)`.",
    ),
    Rule(
        "PL202",
        "logging-str-format",
        "warning",
        "The message is built with `str.format` before the call, even when the level is disabled.",
        "Pass a constant `%s` format and the values as arguments: `log.info('got %s', x)`.",
    ),
    Rule(
        "PL203",
        "logging-percent-format",
        "warning",
        "The message is built with the `%` operator before the call, even when the level "
        "is disabled.",
        "Let logging interpolate: `log.info('got %s', x)` instead of `log.info('got %s' % x)`.",
    ),
    Rule(
        "PL204",
        "logging-concat",
        "warning",
        "The message is built by `+` concatenation before the call, even when the level is "
        "disabled.",
        "Use a constant `%s` format and pass the values as arguments.",
    ),
    Rule(
        "PL205",
        "logging-warn",
        "warning",
        "`warn` is a deprecated alias of `warning`.",
        "Call `.warning(...)`.",
    ),
    Rule(
        "PL206",
        "exception-outside-except",
        "warning",
        "`.exception()` outside an `except` block logs no traceback (or 'NoneType: None').",
        "Call it inside the `except` block, or use `.error(..., exc_info=exc)`.",
    ),
    Rule(
        "PL207",
        "placeholder-mismatch",
        "warning",
        "The `%` placeholders of the message do not match its arguments: logging prints "
        "'--- Logging error ---' with a traceback instead of the message.",
        "Give one argument per placeholder (`%%` is a literal percent sign); `%(name)s` "
        "placeholders take a single dict argument.",
    ),
)


# --- disallowed phrases ------------------------------------------------------------------

# The default ``[log-lint] disallowed`` list: retry language, which operators are told to
# grep for in other words.
DEFAULT_DISALLOWED: tuple[str, ...] = (
    "retry",
    "retries",
    "retrying",
    "retried",
    "try again",
    "re-attempt",
    "reattempt",
    "re-attempts",
    "reattempts",
    "re-attempting",
    "reattempting",
    "re-attempted",
    "reattempted",
)


@dataclass(frozen=True, slots=True)
class _Phrases:
    """The configured ``disallowed`` list, compiled: plain phrases as one alternation
    (one scan per message whatever the list's length), each ``re:`` entry on its own so
    its flags and back-references keep their meaning."""

    plain: re.Pattern[str] | None
    plain_entries: dict[str, str]  # group name -> configured entry
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (configured entry, compiled)

    def matches(self, text: str) -> Iterator[tuple[str, str, int]]:
        """Yield (matched text, configured entry, offset) for every match in ``text``."""
        if self.plain is not None:
            for m in self.plain.finditer(text):
                group = m.lastgroup or ""
                yield m.group(group), self.plain_entries[group], m.start()
        for entry, pattern in self.patterns:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    yield m.group(0), entry, m.start()


_PHRASE_CACHE: dict[tuple[str, ...], _Phrases] = {}


def compile_phrases(entries: Sequence[str], where: str = "log-lint.disallowed") -> _Phrases:
    """Compile a ``disallowed`` list once; later calls with the same list reuse it.

    Plain entries match on word boundaries, case-insensitively, with any run of whitespace
    standing for a space. Entries starting with ``re:`` are regular expressions searched
    case-insensitively. A bad entry raises ConfigError naming it: a silently ignored
    pattern would let exactly the wording it was meant to stop through.
    """
    key = tuple(entries)
    cached = _PHRASE_CACHE.get(key)
    if cached is not None:
        return cached
    alternatives: list[tuple[str, str]] = []
    patterns: list[tuple[str, re.Pattern[str]]] = []
    seen: set[str] = set()
    for entry in key:
        if entry in seen:
            continue
        seen.add(entry)
        if entry.startswith("re:"):
            source = entry[3:]
            if not source:
                raise ConfigError(f"{where}: empty regular expression 're:'")
            try:
                compiled = re.compile(source, re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(
                    f"{where}: invalid regular expression {source!r}: {exc}"
                ) from None
            patterns.append((entry, compiled))
            continue
        words = entry.split()
        if not words:
            raise ConfigError(f"{where}: empty phrase {entry!r}")
        alternatives.append((entry, r"\s+".join(re.escape(w) for w in words)))
    plain: re.Pattern[str] | None = None
    names: dict[str, str] = {}
    if alternatives:
        # Longest first, so the most specific entry is the one a finding names.
        alternatives.sort(key=lambda item: -len(item[1]))
        parts = []
        for index, (entry, regex) in enumerate(alternatives):
            names[f"p{index}"] = entry
            parts.append(f"(?P<p{index}>{regex})")
        plain = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)
    phrases = _Phrases(plain, names, tuple(patterns))
    if len(_PHRASE_CACHE) > 64:
        _PHRASE_CACHE.clear()
    _PHRASE_CACHE[key] = phrases
    return phrases


# --- message text ------------------------------------------------------------------------

Segment = tuple[str, ast.AST] | None  # a piece of known text and where it is, or a gap


def _message_segments(
    node: ast.expr,
    out: list[Segment],
    constants: dict[str, ast.expr] | None,
    anchor: ast.AST | None,
) -> None:
    """Flatten the parts of a message expression that are text known before run time.

    Adjacent pieces are joined as Python would (``"try " + "again"`` reads "try again");
    anything computed at run time becomes a gap, so words never run across it. Names and
    other arguments never contribute text; constant operands of ``%`` and ``.format`` do,
    since they end up inside the message. ``constants`` resolves module-level string
    constants used in the message; their findings are placed at ``anchor``, the use.
    """
    if isinstance(node, ast.Constant):
        out.append((node.value, anchor or node) if isinstance(node.value, str) else None)
    elif isinstance(node, ast.JoinedStr):
        values = node.values
        for index, part in enumerate(values):
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                text = part.value
                if (
                    text.rstrip().endswith("=")
                    and index + 1 < len(values)
                    and isinstance(values[index + 1], ast.FormattedValue)
                ):
                    # f"{retry_count=}" spells the expression out: code, not wording.
                    text = _SELF_DOCUMENTING.sub("", text)
                out.append((text, anchor or node))
            elif (
                isinstance(part, ast.FormattedValue)
                and isinstance(part.value, ast.Constant)
                and isinstance(part.value.value, str)
                and part.format_spec is None
            ):
                out.append((part.value.value, anchor or node))  # f"{'literal'}"
            else:
                out.append(None)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        for operand in _add_operands(node):
            _message_segments(operand, out, constants, anchor)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        _message_segments(node.left, out, constants, anchor)
        right = node.right
        operands: list[ast.expr]
        if isinstance(right, ast.Tuple):
            operands = right.elts
        elif isinstance(right, ast.Dict):
            operands = [v for v in right.values if v is not None]
        else:
            operands = [right]
        for value in operands:
            out.append(None)
            _message_segments(value, out, None, anchor)
        out.append(None)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        func = node.func
        if func.attr == "format":
            _message_segments(func.value, out, constants, anchor)
            for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                out.append(None)
                _message_segments(arg, out, None, anchor)
            out.append(None)
        elif (
            func.attr == "join"
            and len(node.args) == 1
            and isinstance(node.args[0], (ast.List, ast.Tuple))
        ):
            out.append(None)
            for index, item in enumerate(node.args[0].elts):
                if index:
                    _message_segments(func.value, out, None, anchor)
                _message_segments(item, out, None, anchor)
            out.append(None)
        elif func.attr in _TEXT_METHODS and not node.args and not node.keywords:
            _message_segments(func.value, out, constants, anchor)
        elif func.attr in _TEXT_WRAPPERS and len(node.args) == 1:
            _message_segments(node.args[0], out, constants, anchor)
        else:
            out.append(None)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _TEXT_WRAPPERS
        and len(node.args) == 1
    ):
        _message_segments(node.args[0], out, constants, anchor)
    elif isinstance(node, ast.NamedExpr):
        _message_segments(node.value, out, constants, anchor)
    elif isinstance(node, ast.IfExp):
        _message_segments(node.body, out, constants, anchor)
        out.append(None)
        _message_segments(node.orelse, out, constants, anchor)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            out.append(None)
            _message_segments(value, out, constants, anchor)
        out.append(None)
    elif isinstance(node, ast.Name) and constants is not None and node.id in constants:
        _message_segments(constants[node.id], out, None, anchor or node)
    else:
        out.append(None)


def _add_operands(node: ast.BinOp) -> list[ast.expr]:
    """The operands of ``a + b + c`` in order, without recursion: generated code can chain
    thousands of them, deeper than the interpreter's recursion limit."""
    operands: list[ast.expr] = []
    current: ast.expr = node
    while isinstance(current, ast.BinOp) and isinstance(current.op, ast.Add):
        operands.append(current.right)
        current = current.left
    operands.append(current)
    operands.reverse()
    return operands


def _join(segments: list[Segment]) -> tuple[str, list[tuple[int, ast.AST]]]:
    """Join segments into one string with gaps as NUL; return where each piece starts."""
    parts: list[str] = []
    starts: list[tuple[int, ast.AST]] = []
    offset = 0
    for segment in segments:
        if segment is None:
            parts.append(_GAP)
            offset += 1
            continue
        text, node = segment
        if "%" in text or "{" in text:
            text = _PLACEHOLDER.sub(_GAP, text)
        starts.append((offset, node))
        parts.append(text)
        offset += len(text)
    return "".join(parts), starts


# --- placeholders ------------------------------------------------------------------------


def _placeholder_problem(fmt: str, args: Sequence[ast.expr]) -> str | None:
    """Why ``fmt % args`` fails at run time, or None when it works (or cannot be known).

    Follows logging's rule: a single non-empty dict argument is used as the mapping, so
    ``%(name)s`` placeholders take exactly one dict argument.
    """
    positional = 0
    keys: list[str] = []
    for m in _PERCENT_SPEC.finditer(fmt):
        conv = m.group("conv")
        if conv == "%":
            continue
        if not conv:
            return "the message ends in an incomplete '%' placeholder"
        if conv not in _CONVERSIONS:
            return f"unsupported placeholder '{m.group(0)}' (write '%%' for a percent sign)"
        if m.group("key") is not None:
            keys.append(m.group("key"))
        else:
            positional += 1
        positional += (m.group("width") == "*") + (m.group("prec") == "*")
    count = len(args)
    if keys:
        if positional:
            return "the message mixes '%(name)s' and positional placeholders"
        if count != 1:
            return f"'%(name)s' placeholders take a single dict argument, got {count} arguments"
        arg = args[0]
        if type(arg) is ast.Dict:
            literal_keys = {
                k.value for k in arg.keys if type(k) is ast.Constant and isinstance(k.value, str)
            }
            if len(literal_keys) == len(arg.keys):
                missing = [k for k in dict.fromkeys(keys) if k not in literal_keys]
                if missing:
                    return "no value for placeholder(s) " + ", ".join(f"%({k})s" for k in missing)
        elif type(arg) in (ast.Tuple, ast.List, ast.Constant, ast.JoinedStr):
            return "'%(name)s' placeholders need a dict argument"
        return None
    if positional == count:
        return None
    if count == 1 and positional == 0 and type(args[0]) is ast.Dict:
        return None  # a dict argument with no placeholders formats to the message itself
    return (
        f"{positional} placeholder{'s' if positional != 1 else ''} but "
        f"{count} argument{'s' if count != 1 else ''}"
    )


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


def _loggerish(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(("log", "logger"))


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(slots=True)
class _Candidate:
    """A call that may be a logging call; whether it is depends on the whole module."""

    call: ast.Call
    method: str
    in_except: bool
    imported: bool  # a function imported from logging, called by its bare name


class _Scan:
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
        self.calls: list[_Candidate] = []

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
                self.calls.append(_Candidate(node, func.attr, in_except, False))
        elif isinstance(func, ast.Name) and func.id in self.functions:
            self.calls.append(_Candidate(node, self.functions[func.id], in_except, True))

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
                or _loggerish(name)
                or self._configured(name)
            )
        if isinstance(node, ast.Attribute):
            attr = node.attr
            if attr in self.bound or _loggerish(attr):
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
                        or _loggerish(last)
                        or value in self.logging_names
                        or self._configured(value)
                    ):
                        self.bound.add(name)
                        names.discard(name)
                        changed = True
                        break


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names assigned text exactly once: a message kept in a constant
    (``MSG = "..."; log.info(MSG)``) is still read."""
    found: dict[str, ast.expr] = {}
    twice: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        if target.id in found:
            twice.add(target.id)
        if isinstance(value, (ast.Constant, ast.JoinedStr, ast.BinOp)):
            found[target.id] = value
    for name in twice:
        found.pop(name, None)
    return found


def _all_literal(node: ast.expr, constants: dict[str, ast.expr] | None) -> bool:
    """Whether a ``+`` chain is made of string literals and module-level string constants
    only: nothing is formatted, so nothing is wasted when the level is disabled."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return all(_all_literal(operand, constants) for operand in _add_operands(node))
    if isinstance(node, ast.Name) and constants and node.id in constants:
        return _all_literal(constants[node.id], None)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return not any(isinstance(v, ast.FormattedValue) for v in node.values)
    return False


def _message_and_args(call: ast.Call, method: str) -> tuple[ast.expr | None, list[ast.expr] | None]:
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


def _receiver_name(call: ast.Call) -> str | None:
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


def _interesting_lines(text: str, first_call: int) -> list[int] | None:
    """Lines a logging call, a logger binding or an import may start on; None when every
    statement must be walked (functions imported from logging are called by bare name)."""
    if "logging" in text and _NAME_IMPORT.search(text):
        return None
    positions = [m.start() for m in _METHOD_CALL.finditer(text, first_call)]
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


# --- the validator -----------------------------------------------------------------------


class LogLintOptions:
    """``[log-lint]``, validated: the phrases compiled, the configured logger objects."""

    __slots__ = ("disallowed", "logger_objects", "phrases")

    def __init__(
        self, disallowed: Sequence[str], logger_objects: Sequence[str], where: str
    ) -> None:
        self.disallowed = tuple(disallowed)
        self.logger_objects = frozenset(logger_objects)
        self.phrases = compile_phrases(self.disallowed, where)


LOG_LINT_KEYS = frozenset({"disallowed", "logger-objects"})


def parse_options(table: Table) -> LogLintOptions:
    """Read ``[log-lint]``: unknown keys, a value of the wrong type or a bad phrase or
    pattern are ConfigErrors naming the file and the table."""
    table.check_keys(LOG_LINT_KEYS)
    disallowed = table.str_list("disallowed")
    return LogLintOptions(
        DEFAULT_DISALLOWED if disallowed is None else disallowed,
        table.str_list("logger-objects") or (),
        table.where("disallowed"),
    )


_DEFAULTS: list[LogLintOptions] = []


def default_options() -> LogLintOptions:
    """The options without a configuration (built on first use)."""
    if not _DEFAULTS:
        _DEFAULTS.append(LogLintOptions(DEFAULT_DISALLOWED, (), "log-lint.disallowed"))
    return _DEFAULTS[0]


class LogLintValidator(Validator):
    """Reads the message of every logging call: wording (PL1xx) and hygiene (PL2xx)."""

    name = "log-lint"
    rules = RULES

    def options(self, settings: CheckSettings | None) -> LogLintOptions:
        if settings is None:
            return default_options()
        return settings.options("log-lint", parse_options)

    def check(self, source: SourceFile, context: CheckContext) -> Iterable[Finding]:
        # Read (or fetched from the settings) first, so a bad pattern in the configuration
        # is reported whatever file comes first.
        options = self.options(context.settings)
        phrases = options.phrases
        text = source.text
        first_call = _METHOD_CALL.search(text)
        if first_call is None and "logging" not in text:
            return []
        tree = source.tree
        scan = _Scan(options.logger_objects)
        lines = _interesting_lines(text, first_call.start() if first_call else 0)
        scan.walk(tree, lines)
        if not scan.calls:
            return []
        scan.resolve_bindings()
        if lines is not None:
            unresolved = {
                name
                for candidate in scan.calls
                if not candidate.imported
                and (name := _receiver_name(candidate.call)) is not None
                and name not in scan.bound
                and name not in scan.imports
                and name not in _NEVER_ALIASES
                and not _loggerish(name)
            }
            if unresolved:
                scan.follow_aliases(text, unresolved)
        constants: dict[str, ast.expr] | None = None
        findings: list[Finding] = []
        for candidate in scan.calls:
            call = candidate.call
            func = call.func
            if not candidate.imported and not (
                isinstance(func, ast.Attribute) and scan.is_logger(func.value)
            ):
                continue
            message, args = _message_and_args(call, candidate.method)
            if constants is None and message is not None and not isinstance(message, ast.Constant):
                constants = _module_constants(tree)
            try:
                self._check_call(source, candidate, message, args, phrases, constants, findings)
            except RecursionError:  # a message nested deeper than any human writes
                continue
        findings.sort(key=lambda f: (f.line, f.col, f.code))
        return findings

    def _check_call(
        self,
        source: SourceFile,
        candidate: _Candidate,
        message: ast.expr | None,
        args: list[ast.expr] | None,
        phrases: _Phrases,
        constants: dict[str, ast.expr] | None,
        findings: list[Finding],
    ) -> None:
        call, method = candidate.call, candidate.method
        if method == "warn":
            findings.append(self.finding(source, call, "PL205"))
        if (
            method == "exception"
            and not candidate.in_except
            and not any(kw.arg == "exc_info" for kw in call.keywords)
        ):
            findings.append(self.finding(source, call, "PL206"))
        if message is None:
            return
        self._check_wording(source, message, phrases, constants, findings)
        self._check_formatting(source, message, constants, findings)
        if args:
            fmt = message
            if isinstance(fmt, ast.Name) and constants and fmt.id in constants:
                fmt = constants[fmt.id]
            if isinstance(fmt, ast.Constant) and isinstance(fmt.value, str):
                problem = _placeholder_problem(fmt.value, args)
                if problem:
                    findings.append(
                        self.finding(source, message, "PL207", f"logging placeholders: {problem}")
                    )

    def _check_wording(
        self,
        source: SourceFile,
        message: ast.expr,
        phrases: _Phrases,
        constants: dict[str, ast.expr] | None,
        findings: list[Finding],
    ) -> None:
        segments: list[Segment] = []
        _message_segments(message, segments, constants, None)
        if all(segment is None for segment in segments):
            return
        joined, starts = _join(segments)
        offsets = [offset for offset, _ in starts]
        seen: set[tuple[str, str]] = set()
        for matched, entry, offset in phrases.matches(joined):
            shown = matched.replace(_GAP, "…")
            key = (shown.lower(), entry)
            if key in seen:
                continue
            seen.add(key)
            node = starts[max(bisect_right(offsets, offset) - 1, 0)][1]
            kind = "pattern" if entry.startswith("re:") else "phrase"
            findings.append(
                self.finding(
                    source,
                    node,
                    "PL101",
                    f"log message contains disallowed {kind} '{shown}' (configured entry '{entry}')",
                )
            )

    def _check_formatting(
        self,
        source: SourceFile,
        message: ast.expr,
        constants: dict[str, ast.expr] | None,
        findings: list[Finding],
    ) -> None:
        if isinstance(message, ast.JoinedStr):
            if any(isinstance(v, ast.FormattedValue) for v in message.values):
                findings.append(self.finding(source, message, "PL201"))
        elif isinstance(message, ast.Call):
            if isinstance(message.func, ast.Attribute) and message.func.attr == "format":
                findings.append(self.finding(source, message, "PL202"))
        elif isinstance(message, ast.BinOp):
            if isinstance(message.op, ast.Mod):
                left = message.left
                if not (isinstance(left, ast.Constant) and not isinstance(left.value, str)):
                    findings.append(self.finding(source, message, "PL203"))
                    self._check_percent(source, message, findings)
            elif isinstance(message.op, ast.Add) and not _all_literal(message, constants):
                findings.append(self.finding(source, message, "PL204"))

    def _check_percent(self, source: SourceFile, node: ast.BinOp, findings: list[Finding]) -> None:
        """``"..." % args`` inside the call: a mismatch there raises before logging runs."""
        left, right = node.left, node.right
        if not (isinstance(left, ast.Constant) and isinstance(left.value, str)):
            return
        args: list[ast.expr]
        if isinstance(right, ast.Tuple):
            if any(isinstance(e, ast.Starred) for e in right.elts):
                return
            args = list(right.elts)
        elif isinstance(right, (ast.Dict, ast.Constant, ast.JoinedStr)):
            args = [right]
        else:
            return  # a variable may hold a tuple of any length
        problem = _placeholder_problem(left.value, args)
        if problem:
            findings.append(self.finding(source, node, "PL207", f"placeholders: {problem}"))


@hookimpl
def proctor_register_validators(register: Callable[[Validator], None]) -> None:
    register(LogLintValidator())
