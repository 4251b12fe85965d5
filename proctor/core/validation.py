"""The validator contract: findings, rules, sources and the context a check runs in.

This module sits on the pre-commit hot path, so it uses dataclasses and the standard
library only (no pydantic): a hook on one file must start in a few tens of milliseconds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from proctor.core.config import CheckSettings

Severity = Literal["error", "warning", "info"]
Mode = Literal["generic", "procedure"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# Codes owned by the check runner itself rather than by one validator.
SYNTAX_ERROR = "PC001"
BARE_NOQA = "PC002"
UNREADABLE = "PC003"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place. Field names are a contract (JSON, SARIF, pre-commit)."""

    path: str
    line: int
    col: int
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def format_text(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


@dataclass(frozen=True, slots=True)
class Rule:
    """A stable rule code with what it means and what to do instead.

    ``summary`` says why the pattern is a problem; ``fix`` says what to write instead.
    Both feed ``docs/checks.md`` and SARIF rule descriptions.
    """

    code: str
    name: str
    severity: Severity
    summary: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a procedure declares it needs; unlocks module groups in procedure mode."""

    network: bool = False
    subprocess: bool = False
    filesystem_write: tuple[str, ...] = ()


@dataclass
class SourceFile:
    """A file's text, parsed at most once however many validators read it."""

    path: str
    text: str
    _tree: ast.Module | None = field(default=None, repr=False)
    _lines: list[str] | None = field(default=None, repr=False)

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


@dataclass
class CheckContext:
    """Everything a validator may consult besides the source itself."""

    mode: Mode = "generic"
    settings: CheckSettings | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)


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

    def rule(self, code: str) -> Rule:
        for r in self.rules:
            if r.code == code:
                return r
        raise KeyError(code)

    def finding(self, source: SourceFile, node: ast.AST | tuple[int, int], code: str,
                message: str | None = None) -> Finding:
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
