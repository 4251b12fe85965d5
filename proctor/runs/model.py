"""What a run gives back, what the log keeps, and the exit code of each run status.

Plain dataclasses (no pydantic): the CLI, the MCP server and the run log all build and
serialise them, and ``proctor run`` should not pay for a model library it does not use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from proctor.core.errors import EXIT_FINDINGS, ProctorError

# The exit codes of `proctor run` (and `proctor test`'s own runs), beside the contract's
# 0 ok, 1 findings/denied/failed, 2 bad input, 3 conflict. A script branches on these
# without parsing output: 4 means the procedure itself raised, 5-7 that it was stopped.
EXIT_RUN_ERROR = 4
EXIT_RUN_TIMEOUT = 5
EXIT_RUN_KILLED = 6
EXIT_RUN_DENIED = 7
RUN_EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "error": EXIT_RUN_ERROR,
    "timeout": EXIT_RUN_TIMEOUT,
    "killed": EXIT_RUN_KILLED,
    "denied": EXIT_RUN_DENIED,
}


class RunLogError(ProctorError):
    """The run log could not be opened, migrated, written or read."""

    exit_code = EXIT_FINDINGS


@dataclass
class Rollback:
    """What auto-rollback did after a run: ``outcome`` is the action's status
    (``applied``, ``proposed``, ``denied``, ``failed``) or ``skipped`` (no earlier
    release to go back to)."""

    procedure: str
    release: str
    to: str | None
    outcome: str
    success_rate: float
    runs: int
    commit: str | None = None
    proposal: str | None = None
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        rate = f"{self.success_rate:.0%} of the last {self.runs} runs succeeded"
        if self.outcome == "skipped":
            return f"{self.procedure} v{self.release}: {rate}; no earlier release to roll back to"
        what = {
            "applied": "rolled back",
            "proposed": f"rollback proposed as {self.proposal}",
        }.get(self.outcome, f"rollback {self.outcome}")
        tail = f": {'; '.join(self.errors)}" if self.errors else ""
        return f"{self.procedure} v{self.release}: {rate}; {what} to v{self.to}{tail}"


@dataclass
class RunRecord:
    """One run of one procedure version: what ``proctor run --json`` prints.

    ``version`` is the release (``X.Y.Z``) the run resolved to, else the procedure's
    version commit shortened to 12 characters; ``commit`` is that commit in full.
    ``level`` is the isolation level reached (None when nothing ran). ``recorded``
    says whether the run log kept it; a run whose record failed still happened.
    """

    run_id: str
    procedure: str
    version: str
    commit: str
    status: str
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    reason: str | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    level: int | None = None
    started: float = 0.0
    actor: str = ""
    machine: str = ""
    params_hash: str = ""
    purpose: str = "run"
    recorded: bool = False
    rollback: Rollback | None = None
    layers: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def exit_code(self) -> int:
        return RUN_EXIT_CODES[self.status]

    @property
    def error(self) -> str | None:
        """One line for the log: the exception for ``error``, the reason otherwise."""
        if self.error_type:
            return f"{self.error_type}: {self.error_message or ''}".rstrip(": ")
        return self.reason

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        return out


@dataclass
class LoggedRun:
    """A row of the run log, as ``proctor runs`` lists it."""

    run_id: str
    procedure: str
    version: str
    commit: str
    purpose: str
    status: str
    duration: float
    level: int | None
    error: str | None
    actor: str | None
    machine: str | None
    params_hash: str
    started: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VersionStats:
    """Runs of one procedure version: counts, success rate and durations (seconds)."""

    procedure: str
    version: str
    runs: int
    ok: int
    mean: float
    p50: float
    p95: float
    last: float

    @property
    def success_rate(self) -> float:
        return self.ok / self.runs if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["success_rate"] = self.success_rate
        return out


@dataclass
class ExampleResult:
    """One example of ``metadata.json`` run as a test."""

    index: int
    params: dict[str, Any]
    expected: Any
    passed: bool
    status: str
    value: Any = None
    reason: str | None = None
    run_id: str | None = None
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TestReport:
    """``proctor test``: every example of one version, and the record the log kept."""

    __test__ = False  # not a pytest test class, whatever its name says

    test_id: str
    procedure: str
    version: str
    commit: str
    examples: list[ExampleResult]
    duration: float = 0.0
    recorded: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for e in self.examples if e.passed)

    @property
    def failed(self) -> int:
        return len(self.examples) - self.passed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else EXIT_FINDINGS

    def to_json(self) -> dict[str, Any]:
        return {
            "test_id": self.test_id,
            "procedure": self.procedure,
            "version": self.version,
            "commit": self.commit,
            "status": "passed" if self.ok else "failed",
            "passed": self.passed,
            "failed": self.failed,
            "examples": [e.to_json() for e in self.examples],
            "duration": self.duration,
            "recorded": self.recorded,
            "warnings": self.warnings,
            "exit_code": self.exit_code,
        }
