"""The run commands of the CLI: ``run``, ``runs``, ``stats``, ``test`` and ``mcp``.

A face like ``cli.py`` (thin: formatting over ``Workspace.run`` and ``Workspace.runs``),
kept in its own module so the run commands can grow without the main CLI module
doing so; ``cli.py`` registers them at its end. Only click is imported at module level:
``proctor --help`` lists these commands without loading SQLAlchemy, the sandbox or mcp.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click

from proctor.cli import ProctorCommand, State, emit_json, print_table, read_file_arg, split_ref

if TYPE_CHECKING:
    from proctor.runs.model import RunRecord, TestReport

RUN_HELP = """Run procedure NAME in the sandbox and record the run.

\b
VERSION: a release X.Y.Z, `tip`, or any git revision; default: the latest
release, else the tip if NAME was never released. The code is read from git
objects, never the work tree. VALUE is converted by the parameter's declared
type (`-p n=7` is 7 for an int, "7" for a str); @FILE reads VALUE from a file.

\b
The return value goes to stdout (a string as it is, anything else as JSON);
the status line, the procedure's own output and any traceback to stderr.

\b
Exit codes:
  0  ok       the procedure returned
  2  the call is wrong (unknown procedure or version, bad or missing params);
     nothing ran and nothing was recorded
  4  error    the procedure raised (or returned something that is not JSON)
  5  timeout  the wall clock ran out; every process of the run was killed
  6  killed   a signal or a limit (CPU, memory, output) ended it
  7  denied   it did not run: the code fails the checks, a capability cannot
              be granted, or the machine cannot reach [runs] min-level
"""


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _version(record: Any) -> str:
    version = record.version
    return f"v{version}" if "." in version else version


def _report_run(record: RunRecord) -> None:
    head = f"{record.procedure} {_version(record)}: {record.status} in {_seconds(record.duration)}"
    if record.level is not None:
        head += f", level {record.level}"
    head += f", run {record.run_id}"
    if record.error:
        head += f": {record.error}"
    if record.stdout:
        click.echo(record.stdout, nl=not record.stdout.endswith("\n"), err=True)
    if record.stderr:
        click.echo(record.stderr, nl=not record.stderr.endswith("\n"), err=True)
    if record.status == "error" and record.traceback:
        click.echo(record.traceback.rstrip(), err=True)
    click.echo(head, err=True)
    if record.rollback is not None:
        click.echo(f"auto-rollback: {record.rollback.describe()}", err=True)
    for warning in record.warnings:
        click.echo(f"warning: {warning}", err=True)
    if record.status == "ok":
        click.echo(_value_text(record.value))


def parse_run_param(item: str) -> tuple[str, str]:
    from proctor.core.errors import UsageError

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"-p expects KEY=VALUE, got {item!r}")
    if value.startswith("@"):
        value = read_file_arg(value[1:], f"file for {key}")
    return key, value


@click.command(
    "run", cls=ProctorCommand, help=RUN_HELP, short_help="Run a procedure in the sandbox, recorded."
)
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter of run()."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Wall-clock limit of the run. [default: [runs] timeout, else 30]",
)
@click.option(
    "--unsandboxed",
    is_flag=True,
    help="Consent to run without isolation where the machine has none (macOS).",
)
@click.pass_obj
def run_command(
    state: State, ref: str, params: tuple[str, ...], timeout: float | None, unsandboxed: bool
) -> int:
    from proctor.core.errors import UsageError

    name, version = split_ref(ref)
    values: dict[str, str] = {}
    for item in params:
        key, value = parse_run_param(item)
        if key in values:
            raise UsageError(f"parameter {key!r} is given twice")
        values[key] = value
    ws = state.workspace()
    record = ws.runs.run(
        name, values, version=version, timeout=timeout, from_text=True, unsandboxed=unsandboxed
    )
    if state.as_json:
        emit_json(record.to_json())
    else:
        _report_run(record)
    return record.exit_code


@click.command("runs", cls=ProctorCommand)
@click.argument("name")
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many."
)
@click.pass_obj
def runs_command(state: State, name: str, limit: int) -> None:
    """The most recent runs of NAME (examples of `proctor test` included), newest first."""
    rows = state.workspace().runs.history(name, limit)
    if state.as_json:
        emit_json([r.to_json() for r in rows])
        return
    body = [
        [
            _when(r.started),
            r.run_id[:12],
            _version(r),
            r.purpose,
            r.status,
            _seconds(r.duration),
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
    headers = [
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
    print_table(
        state,
        headers,
        body,
        title=f"runs of {name}",
        fixed=(0, 1, 2, 4, 5),
        piped=(headers, piped),
    )


@click.command("stats", cls=ProctorCommand)
@click.argument("name", required=False)
@click.pass_obj
def stats_command(state: State, name: str | None) -> None:
    """Runs, success rate and mean/p50/p95 duration per version (of NAME, or of all).

    Example runs of `proctor test` are not counted; the last test of each version is
    shown beside it.
    """
    runs = state.workspace().runs
    stats = runs.stats(name)
    tests = runs.log.last_tests(name) if stats else {}
    if state.as_json:
        out = []
        for s in stats:
            item = s.to_json()
            test = tests.get((s.procedure, s.version))
            item["last_test"] = (
                None
                if test is None
                else {k: test[k] for k in ("id", "examples", "passed", "failed", "started")}
            )
            out.append(item)
        emit_json(out)
        return
    rows = []
    for s in stats:
        test = tests.get((s.procedure, s.version))
        rows.append(
            [
                s.procedure,
                _version(s),
                s.runs,
                f"{s.success_rate:.1%}",
                _seconds(s.mean),
                _seconds(s.p50),
                _seconds(s.p95),
                _when(s.last),
                "" if test is None else f"{test['passed']}/{test['examples']}",
            ]
        )
    headers = ["procedure", "version", "runs", "success", "mean", "p50", "p95", "last run", "tests"]
    print_table(state, headers, rows, title="run statistics", fixed=(1, 2, 3, 4, 5, 6, 7))


def _report_test(report: TestReport) -> None:
    click.echo(
        f"{report.procedure} {_version(report)}: {len(report.examples)} example"
        f"{'' if len(report.examples) == 1 else 's'}"
    )
    for e in report.examples:
        params = json.dumps(e.params, ensure_ascii=False)
        if e.passed:
            click.echo(f"  PASS  #{e.index + 1} {params} -> {_value_text(e.value)}")
            continue
        why = e.reason or "failed"
        if e.status == "ok":
            why += f": expected {json.dumps(e.expected)}, got {json.dumps(e.value)}"
        click.echo(f"  FAIL  #{e.index + 1} {params}: {why}")
    if not report.examples:
        click.echo("  no examples in metadata.json: nothing to test")
    kept = "recorded" if report.recorded else "not recorded"
    click.echo(f"{report.passed} passed, {report.failed} failed (test {report.test_id}, {kept})")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("test", cls=ProctorCommand)
@click.argument("ref", metavar="NAME[@VERSION]")
@click.pass_obj
def test_command(state: State, ref: str) -> int:
    """Run the examples of NAME's metadata.json in the sandbox, as tests.

    Each example's params go to run() and its return value must equal `expected`.
    Prints PASS or FAIL per example and records the test with the version it judged.
    Exit 0 when every example passes, 1 when one fails, 2 for a bad NAME or VERSION.
    """
    name, version = split_ref(ref)
    report = state.workspace().test(name, version)
    if state.as_json:
        emit_json(report.to_json())
    else:
        _report_test(report)
    return report.exit_code


@click.command("mcp", cls=ProctorCommand)
@click.option(
    "--procedure-tools/--no-procedure-tools",
    default=True,
    show_default=True,
    help="Offer each released procedure as a tool of its own.",
)
@click.pass_obj
def mcp_command(state: State, procedure_tools: bool) -> None:
    """Serve the store to agents over the Model Context Protocol (stdio).

    Tools: list_procedures, show_procedure, run_procedure (sandboxed, recorded) and
    propose_change (an action through policy, as --actor), plus one tool per released
    procedure. Needs the mcp extra: pip install 'proctor[mcp]'.
    """
    import os

    from proctor.mcp_server import serve_stdio
    from proctor.runs.bridge import run_async
    from proctor.workspace import Workspace

    path = state.repo or os.getcwd()
    Workspace.open(path, actor=state.actor).close()  # a bad repository fails here, not per call

    def open_workspace() -> Workspace:
        return Workspace.open(path, actor=state.actor)

    run_async(serve_stdio(open_workspace, procedure_tools=procedure_tools))


COMMANDS = (run_command, runs_command, stats_command, test_command, mcp_command)


def register(group: click.Group) -> None:
    """Add the run commands to ``group`` (the ``proctor`` group)."""
    for command in COMMANDS:
        group.add_command(command)
