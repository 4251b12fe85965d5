"""How runs, run lists, statistics and example tests read as text, for the faces.

Plain functions from the records to lines and table rows (no click, no rich), so the CLI
stays a thin layer of commands and the wording is the same wherever a run is shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from proctor.runs.model import LoggedRun, RunRecord, TestReport, VersionStats

RUNS_HEADERS = [
    "started",
    "run",
    "version",
    "purpose",
    "status",
    "duration",
    "level",
    "actor",
    "error",
]
STATS_HEADERS = [
    "procedure",
    "version",
    "runs",
    "success",
    "mean",
    "p50",
    "p95",
    "last run",
    "tests",
]


def value_text(value: Any) -> str:
    """A return value as printed: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def version_label(version: str) -> str:
    """``v1.2.0`` for a release, the short commit as it is."""
    return f"v{version}" if "." in version else version


def run_report(record: RunRecord) -> tuple[list[str], str | None]:
    """(lines for stderr, the value for stdout or None): the procedure's own output and
    any traceback first, then the status line, the rollback and the warnings."""
    err: list[str] = []
    for stream in (record.stdout, record.stderr):
        if stream:
            err.append(stream.removesuffix("\n"))
    if record.status == "error" and record.traceback:
        err.append(record.traceback.rstrip())
    head = (
        f"{record.procedure} {version_label(record.version)}: {record.status} "
        f"in {seconds(record.duration)}"
    )
    if record.level is not None:
        head += f", level {record.level}"
    head += f", run {record.run_id}"
    if record.error:
        head += f": {record.error}"
    err.append(head)
    if record.rollback is not None:
        err.append(f"auto-rollback: {record.rollback.describe()}")
    err.extend(f"warning: {w}" for w in record.warnings)
    return err, value_text(record.value) if record.status == "ok" else None


def runs_table(
    rows: Sequence[LoggedRun],
) -> tuple[list[list[Any]], list[list[Any]]]:
    """(rows for a terminal, rows for a pipe: full ids, ISO dates, seconds)."""
    shown = [
        [
            when(r.started),
            r.run_id[:12],
            version_label(r.version),
            r.purpose,
            r.status,
            seconds(r.duration),
            "" if r.level is None else r.level,
            r.actor,
            (r.error or "")[:120],
        ]
        for r in rows
    ]
    piped = [
        [
            time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(r.started)),
            r.run_id,
            r.version,
            r.purpose,
            r.status,
            f"{r.duration:.6f}",
            "" if r.level is None else r.level,
            r.actor,
            r.error or "",
        ]
        for r in rows
    ]
    return shown, piped


Tests = dict[tuple[str, str], dict[str, Any]]


def _versions(
    stats: Sequence[VersionStats], tests: Tests
) -> list[tuple[str, str, VersionStats | None]]:
    """Every version with ordinary runs, then, per procedure, those only ``proctor test``
    judged (newest test first): a test is part of a version's record with or without
    runs. The statistics' order (procedure, last run first) is kept."""
    ran = {(s.procedure, s.version) for s in stats}
    rows: list[tuple[tuple[str, int, float], tuple[str, str, VersionStats | None]]] = [
        ((s.procedure, 0, 0.0), (s.procedure, s.version, s)) for s in stats
    ]
    rows += [
        ((procedure, 1, -float(test["started"])), (procedure, version, None))
        for (procedure, version), test in tests.items()
        if (procedure, version) not in ran
    ]
    rows.sort(key=lambda r: r[0])  # stable: the statistics keep their own order
    return [r[1] for r in rows]


def _last_test(tests: Tests, procedure: str, version: str) -> dict[str, Any] | None:
    test = tests.get((procedure, version))
    if test is None:
        return None
    return {k: test[k] for k in ("id", "examples", "passed", "failed", "started")}


def stats_json(stats: Sequence[VersionStats], tests: Tests) -> list[dict[str, Any]]:
    """One object per version; a version tested but never run has ``runs`` 0 and null
    rates and durations."""
    out = []
    for procedure, version, s in _versions(stats, tests):
        row: dict[str, Any] = (
            s.to_json()
            if s is not None
            else {"procedure": procedure, "version": version, "runs": 0, "ok": 0}
            | dict.fromkeys(("mean", "p50", "p95", "last", "success_rate"))
        )
        out.append(row | {"last_test": _last_test(tests, procedure, version)})
    return out


def tests_cell(test: dict[str, Any] | None) -> str:
    return "" if test is None else f"{test['passed']}/{test['examples']}"


def stats_table(stats: Sequence[VersionStats], tests: Tests) -> list[list[Any]]:
    rows = []
    for procedure, version, s in _versions(stats, tests):
        test = tests_cell(_last_test(tests, procedure, version))
        if s is None:
            rows.append([procedure, version_label(version), 0, "-", "-", "-", "-", "-", test])
            continue
        rows.append(
            [
                s.procedure,
                version_label(s.version),
                s.runs,
                f"{s.success_rate:.1%}",
                seconds(s.mean),
                seconds(s.p50),
                seconds(s.p95),
                when(s.last),
                test,
            ]
        )
    return rows


def last_test_line(test: dict[str, Any]) -> str:
    """``procedure show``'s line for the last ``proctor test`` of the shown version."""
    verdict = "passed" if not test["failed"] else "failed"
    return (
        f"{test['passed']}/{test['examples']} examples passed ({verdict}), "
        f"{version_label(test['version'])}, {when(test['started'])}, test {test['id']}"
    )


def example_report(report: TestReport) -> tuple[list[str], list[str]]:
    """(lines for stdout: one per example and a summary, warnings for stderr)."""
    count = len(report.examples)
    out = [
        f"{report.procedure} {version_label(report.version)}: {count} example{'' if count == 1 else 's'}"
    ]
    for e in report.examples:
        params = json.dumps(e.params, ensure_ascii=False)
        if e.passed:
            out.append(f"  PASS  #{e.index + 1} {params} -> {value_text(e.value)}")
            continue
        why = e.reason or "failed"
        if e.status == "ok":
            why += f": expected {json.dumps(e.expected)}, got {json.dumps(e.value)}"
        out.append(f"  FAIL  #{e.index + 1} {params}: {why}")
    if not report.examples:
        out.append("  no examples in metadata.json: nothing to test")
    kept = "recorded" if report.recorded else "not recorded"
    out.append(f"{report.passed} passed, {report.failed} failed (test {report.test_id}, {kept})")
    return out, [f"warning: {w}" for w in report.warnings]
