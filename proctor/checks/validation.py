"""The validator contract: findings, rules, sources and the context a check runs in.

This module sits on the pre-commit hot path, so it uses small hand-written classes and the
standard library only (no pydantic, no dataclasses): a hook on one file must start in a
few tens of milliseconds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings

Severity = Literal["error", "warning", "info"]
Mode = Literal["generic", "procedure"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# Codes owned by the check runner itself rather than by one validator.
SYNTAX_ERROR = "PC001"
BARE_NOQA = "PC002"
UNREADABLE = "PC003"
# A validator raised while checking a file. Reported instead of crashing the run.
VALIDATOR_ERROR = "PC004"


class _Record:
    """A small value class: equality, hashing and repr over ``__slots__``.

    Hand-written rather than ``@dataclass`` because this module is on the pre-commit hot
    path and ``dataclasses`` pulls in ``inspect`` (~10 ms per hook start).
    """

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({args})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Findings cross process boundaries (``check -j N``); rebuild through __init__.
        return (type(self), self._values())

    def _init(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


class Finding(_Record):
    """One problem at one place. Field names are a contract (JSON, SARIF, pre-commit)."""

    __slots__ = ("path", "line", "col", "code", "severity", "message")
    path: str
    line: int
    col: int
    code: str
    severity: Severity
    message: str

    def __init__(
        self, path: str, line: int, col: int, code: str, severity: Severity, message: str
    ) -> None:
        self._init(path=path, line=line, col=col, code=code, severity=severity, message=message)

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def format_text(self) -> str:
        """One line, the same everywhere a finding is printed (``proctor check``, a refused
        write, a denied run), so a user reads one format and grep finds both."""
        return f"{self.path}:{self.line}:{self.col}: {self.code} [{self.severity}] {self.message}"


class Rule(_Record):
    """A stable rule code with what it means and what to do instead.

    ``summary`` says why the pattern is a problem; ``fix`` says what to write instead.
    Both feed ``docs/checks.md`` and SARIF rule descriptions.
    """

    __slots__ = ("code", "name", "severity", "summary", "fix")
    code: str
    name: str
    severity: Severity
    summary: str
    fix: str

    def __init__(
        self, code: str, name: str, severity: Severity, summary: str, fix: str = ""
    ) -> None:
        self._init(code=code, name=name, severity=severity, summary=summary, fix=fix)


RUNNER_RULES: tuple[Rule, ...] = (
    Rule(
        SYNTAX_ERROR,
        "syntax-error",
        "error",
        "The file does not parse as Python, so no other check could look at it.",
        "Fix the syntax error, or exclude the file if it is not meant to be Python.",
    ),
    Rule(
        BARE_NOQA,
        "bare-noqa",
        "warning",
        "A `# noqa` comment without codes suppresses nothing here; a blanket "
        "suppression would also hide every future finding on that line.",
        "Name the codes it is meant to silence: `# noqa: PS101` or a prefix `# noqa: PS1`.",
    ),
    Rule(
        UNREADABLE,
        "unreadable-file",
        "error",
        "The file could not be read as Python source text: it contains NUL bytes, is not "
        "valid UTF-8 (or its declared coding), or could not be opened.",
        "Save it as UTF-8, or exclude it if it is not Python source.",
    ),
    Rule(
        VALIDATOR_ERROR,
        "validator-error",
        "error",
        "A validator failed unexpectedly on this file, so the file was not fully checked.",
        "Report the message to the validator's authors; meanwhile the other checks still ran.",
    ),
)
"""The rules of the runner itself: not one validator's, always selected, ignorable."""


class Capabilities(_Record):
    """What a procedure declares it needs; unlocks module groups in procedure mode."""

    __slots__ = ("network", "subprocess", "filesystem_write")
    network: bool
    subprocess: bool
    filesystem_write: tuple[str, ...]

    def __init__(
        self,
        network: bool = False,
        subprocess: bool = False,
        filesystem_write: tuple[str, ...] = (),
    ) -> None:
        self._init(network=network, subprocess=subprocess, filesystem_write=tuple(filesystem_write))


class SourceFile:
    """A file's text, parsed at most once however many validators read it."""

    __slots__ = ("path", "text", "_tree", "_lines")

    def __init__(self, path: str, text: str, _tree: ast.Module | None = None) -> None:
        self.path = path
        self.text = text
        self._tree = _tree
        self._lines: list[str] | None = None

    def __repr__(self) -> str:
        return f"SourceFile(path={self.path!r})"

    @property
    def tree(self) -> ast.Module:
        """The module AST. Raises SyntaxError; the runner turns that into a finding."""
        if self._tree is None:
            self._tree = ast.parse(self.text, filename=self.path)
        return self._tree

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines


class CheckContext:
    """Everything a validator may consult besides the source itself."""

    __slots__ = ("mode", "settings", "capabilities")

    def __init__(
        self,
        mode: Mode = "generic",
        settings: CheckSettings | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.mode: Mode = mode
        self.settings = settings
        self.capabilities = capabilities if capabilities is not None else Capabilities()

    def __repr__(self) -> str:
        return f"CheckContext(mode={self.mode!r}, settings={self.settings!r})"


class Validator:
    """Base class for validators registered through ``proctor_register_validators``.

    Subclasses set ``name`` (what ``--select`` accepts, e.g. ``"safety"``) and ``rules``,
    and implement :meth:`check`. A validator must not raise on odd but valid Python;
    the runner reports an unexpected exception as a finding against the file rather
    than crash the whole run.
    """

    name: str = ""
    rules: tuple[Rule, ...] = ()

    def applies_to(self, path: str) -> bool:
        """Whether this validator wants the file; the default is every ``*.py`` file."""
        return path.endswith(".py")

    def check(self, source: SourceFile, context: CheckContext) -> Iterable[Finding]:
        raise NotImplementedError

    def options(self, settings: CheckSettings | None) -> object:
        """This check's own options, read from its own config table; None by default.

        A check with a table (``[safety]``, ``[log-lint]``) parses and validates it here,
        through ``settings.options(table_name, parser)`` so it happens once per run. The
        runner calls this for every loaded check before the first file, so a bad table
        is an error (exit status 2) whichever files or rules the run covers; raise
        ConfigError for a bad table (any other exception is reported as PC004 on each
        file, like one from ``check``). ``settings`` is None when a check is called
        without a configuration: return the defaults.
        """
        return None

    def rule(self, code: str) -> Rule:
        for r in self.rules:
            if r.code == code:
                return r
        raise KeyError(code)

    def finding(
        self,
        source: SourceFile,
        node: ast.AST | tuple[int, int],
        code: str,
        message: str | None = None,
    ) -> Finding:
        """Build a finding at ``node`` (or ``(line, col)``) with the rule's severity.

        Columns are 1-based, as editors and ``path:line:col`` consumers expect.
        """
        rule = self.rule(code)
        if isinstance(node, tuple):
            line, col = node
        else:
            line = getattr(node, "lineno", 1)
            col = getattr(node, "col_offset", 0) + 1
        return Finding(source.path, line, col, code, rule.severity, message or rule.summary)
