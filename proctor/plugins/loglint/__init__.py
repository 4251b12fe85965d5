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

The package: this module is the plugin (the rules, the validator and the hook);
:mod:`.scan` finds the logging calls, :mod:`.messages` reads their text and
:mod:`.phrases` holds the configured wording.
"""

from __future__ import annotations

import ast
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from proctor.checks.validation import CheckContext, Finding, Rule, SourceFile, Validator
from proctor.core.hookspecs import hookimpl
from proctor.plugins.loglint.messages import (
    GAP,
    Segment,
    all_literal,
    join_segments,
    message_segments,
    module_constants,
    placeholder_problem,
)
from proctor.plugins.loglint.phrases import (
    DEFAULT_DISALLOWED,
    LogLintOptions,
    Phrases,
    compile_phrases,
    default_options,
    parse_options,
)
from proctor.plugins.loglint.scan import (
    LOG_METHODS,
    METHOD_CALL,
    NEVER_ALIASES,
    Candidate,
    Scan,
    interesting_lines,
    loggerish,
    message_and_args,
    receiver_name,
)

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings

__all__ = [
    "DEFAULT_DISALLOWED",
    "LOG_METHODS",
    "RULES",
    "LogLintOptions",
    "LogLintValidator",
    "compile_phrases",
    "proctor_register_validators",
]

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


# --- the validator -----------------------------------------------------------------------


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
        first_call = METHOD_CALL.search(text)
        if first_call is None and "logging" not in text:
            return []
        tree = source.tree
        scan = Scan(options.logger_objects)
        lines = interesting_lines(text, first_call.start() if first_call else 0)
        scan.walk(tree, lines)
        if not scan.calls:
            return []
        scan.resolve_bindings()
        if lines is not None:
            unresolved = {
                name
                for candidate in scan.calls
                if not candidate.imported
                and (name := receiver_name(candidate.call)) is not None
                and name not in scan.bound
                and name not in scan.imports
                and name not in NEVER_ALIASES
                and not loggerish(name)
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
            message, args = message_and_args(call, candidate.method)
            if constants is None and message is not None and not isinstance(message, ast.Constant):
                constants = module_constants(tree)
            try:
                self._check_call(source, candidate, message, args, phrases, constants, findings)
            except RecursionError:  # a message nested deeper than any human writes
                continue
        findings.sort(key=lambda f: (f.line, f.col, f.code))
        return findings

    def _check_call(
        self,
        source: SourceFile,
        candidate: Candidate,
        message: ast.expr | None,
        args: list[ast.expr] | None,
        phrases: Phrases,
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
                problem = placeholder_problem(fmt.value, args)
                if problem:
                    findings.append(
                        self.finding(source, message, "PL207", f"logging placeholders: {problem}")
                    )

    def _check_wording(
        self,
        source: SourceFile,
        message: ast.expr,
        phrases: Phrases,
        constants: dict[str, ast.expr] | None,
        findings: list[Finding],
    ) -> None:
        segments: list[Segment] = []
        message_segments(message, segments, constants, None)
        if all(segment is None for segment in segments):
            return
        joined, starts = join_segments(segments)
        offsets = [offset for offset, _ in starts]
        seen: set[tuple[str, str]] = set()
        for matched, entry, offset in phrases.matches(joined):
            shown = matched.replace(GAP, "…")
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
            elif isinstance(message.op, ast.Add) and not all_literal(message, constants):
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
        problem = placeholder_problem(left.value, args)
        if problem:
            findings.append(self.finding(source, node, "PL207", f"placeholders: {problem}"))


@hookimpl
def proctor_register_validators(register: Callable[[Validator], None]) -> None:
    register(LogLintValidator())
