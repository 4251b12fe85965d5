"""Typed errors, each carrying the exit code the CLI reports for it.

The faces (CLI, hooks, API) never guess an exit code from a message: the error type
decides it, so scripts that branch on ``$?`` keep working when wording changes.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FINDINGS = 1  # findings, a denied or failed action
EXIT_USAGE = 2  # bad input, usage, unknown names, unreadable files
EXIT_CONFLICT = 3  # a concurrency conflict that survived the retries


class ProctorError(Exception):
    """Base of every error proctor raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ProctorError):
    """The caller asked for something malformed: a bad name, flag or value."""


class ConfigError(UsageError):
    """proctor.toml or ``[tool.proctor]`` is invalid."""


class NotFoundError(UsageError):
    """A procedure, version, action, proposal or revision that does not exist."""


class NotARepositoryError(UsageError):
    """The path is not inside a git repository."""


class ValidationFailed(ProctorError):
    """Submission criteria or validators refused the input.

    ``findings`` holds the individual problems so faces can print each on its own line.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, findings: Sequence[object] | None = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])


class DirtyWorkTreeError(UsageError):
    """A path the write would touch has uncommitted changes; nothing was written."""


class StoreError(ProctorError):
    """git itself failed in a way that is not the caller's fault."""

    exit_code = EXIT_FINDINGS


class ConcurrencyError(ProctorError):
    """Someone else changed what this write depends on.

    ``expected`` and ``actual`` name the versions (commit ids) so the caller can re-read
    and decide, instead of silently overwriting the other writer's work.
    """

    exit_code = EXIT_CONFLICT

    def __init__(self, message: str, expected: str | None, actual: str | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        # Filled in by the write loop: builds tried, seconds slept between them, and
        # whether the bounded retries ran out (rather than a touched path changing).
        self.attempts = 0
        self.backoff = 0.0
        self.exhausted = False


class PluginError(ProctorError):
    """A plugin failed to load or register (raised only under PROCTOR_STRICT_PLUGINS)."""

    exit_code = EXIT_FINDINGS


def describe_error(exc: ProctorError) -> list[str]:
    """One line per problem: each finding of a ValidationFailed, else the message."""
    findings = getattr(exc, "findings", None)
    if findings:
        return [f.format_text() if hasattr(f, "format_text") else str(f) for f in findings]
    return [exc.message]
