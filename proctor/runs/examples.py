"""``proctor test``: the metadata's examples run in the sandbox, each compared with what
it expects, and the outcome recorded with the version it judged.

An example passes when its run returns ``ok`` with a value equal to ``expected`` as
JSON sees equality: ``2`` and ``2.0`` are the same number, ``true`` is not ``1``, and
object key order does not matter. Examples run concurrently (a few at a time: each is
a sandboxed interpreter). The test and the runs of its examples are recorded together
(``purpose = 'test'``: kept out of the run statistics and auto-rollback, which judge
uses, not checks); the record is what a release's confidence is read from later.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from proctor.runs.model import ExampleResult, RunLogError, TestReport
from proctor.runs.params import ParamsError, check_params

if TYPE_CHECKING:
    from proctor.runs.model import RunRecord
    from proctor.runs.resolve import ProcedureVersion
    from proctor.runs.service import RunService

CONCURRENCY = 4


def same_json(a: Any, b: Any) -> bool:
    """Equality of two JSON values as JSON means it (bool is not a number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _verdict(index: int, params: dict[str, Any], expected: Any, run: RunRecord) -> ExampleResult:
    result = ExampleResult(
        index=index,
        params=params,
        expected=expected,
        passed=False,
        status=run.status,
        value=run.value,
        run_id=run.run_id,
        duration=run.duration,
    )
    if run.status != "ok":
        result.reason = run.error or f"the run ended {run.status}"
    elif not same_json(run.value, expected):
        result.reason = "returned a different value"
    else:
        result.passed = True
    return result


async def judge_examples(
    service: RunService, pv: ProcedureVersion, *, actor: str
) -> tuple[list[ExampleResult], list[RunRecord]]:
    """Run every example of ``pv`` in the sandbox and judge it; nothing is recorded.

    ``pv`` need not be committed: code generation judges candidate code this way before
    anything is written (``proctor.llm.generate``). :func:`run_examples` records.
    """
    gate = asyncio.Semaphore(CONCURRENCY)
    runs: list[RunRecord] = []

    async def one(index: int, params: dict[str, Any], expected: Any) -> ExampleResult:
        try:
            checked = check_params(pv.name, pv.spec, pv.signature, params)
        except ParamsError as exc:
            return ExampleResult(
                index, params, expected, False, "invalid", reason="; ".join(exc.problems)
            )
        async with gate:
            run = await service.execute_version(pv, checked, actor=actor, purpose="test")
        runs.append(run)
        return _verdict(index, params, expected, run)

    results = list(
        await asyncio.gather(
            *(one(i, dict(ex.params), ex.expected) for i, ex in enumerate(pv.spec.examples))
        )
    )
    runs.sort(key=lambda r: r.run_id)
    return results, runs


async def run_examples(service: RunService, pv: ProcedureVersion, *, actor: str) -> TestReport:
    from proctor.runs.service import new_run_id, run_row

    started = time.time()
    report = TestReport(
        test_id=new_run_id(), procedure=pv.name, version=pv.label, commit=pv.commit, examples=[]
    )
    report.examples, runs = await judge_examples(service, pv, actor=actor)
    report.duration = time.time() - started
    row = {
        "id": report.test_id,
        "procedure": pv.name,
        "version": pv.label,
        "commit": pv.commit,
        "examples": len(report.examples),
        "passed": report.passed,
        "failed": report.failed,
        "actor": actor,
        "machine": service.machine,
        "duration": report.duration,
        "started": started,
    }
    try:
        await service.log.arecord_test(row, [run_row(r) for r in runs])
        report.recorded = True
        for r in runs:
            r.recorded = True
    except RunLogError as exc:
        report.warnings.append(str(exc))
    for r in runs:
        service.announce(r)
        report.warnings.extend(r.warnings)
    return report
