"""Running what the store keeps: ``run``, ``runs``, ``stats``, ``test`` and ``mcp``."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from proctor.workspace import Workspace


from proctor.cli.base import (
    State,
    cli,
    emit_json,
    print_table,
    read_file_arg,
    split_ref,
)

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
  1  git failed, or the run log when it is asked for (`proctor runs`, `stats`);
     a run the log cannot record still exits by its status, with a warning
  2  the call is wrong (unknown procedure or version, bad or missing params);
     nothing ran and nothing was recorded
  4  error    the procedure raised (or returned something that is not JSON)
  5  timeout  the wall clock ran out; every process of the run was killed
  6  killed   a signal or a limit (CPU, memory, output) ended it
  7  denied   it did not run: the code fails the checks, a capability cannot
              be granted, or the machine cannot reach [runs] min-level
"""


# proctor.runs.settings.MAX_TIMEOUT, written out: the CLI imports the runs package lazily.
_MAX_TIMEOUT = 7 * 24 * 3600


def _finite(value: float | None) -> float | None:
    """Refuse NaN, which every range check lets through (it compares false)."""
    if value is not None and value != value:
        raise click.BadParameter("not a number of seconds", param_hint="'--timeout'")
    return value


@cli.command("run", help=RUN_HELP, short_help="Run a procedure in the sandbox, recorded.")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter of run()."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True, max=_MAX_TIMEOUT),
    callback=lambda _ctx, _param, value: _finite(value),
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
    from proctor.runs.report import run_report

    name, version = split_ref(ref)
    values: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"-p expects KEY=VALUE, got {item!r}")
        if key in values:
            raise UsageError(f"parameter {key!r} is given twice")
        values[key] = (
            read_file_arg(value[1:], f"file for {key}") if value.startswith("@") else value
        )
    with _terminated_like_interrupted():
        record = state.workspace().runs.run(
            name, values, version=version, timeout=timeout, from_text=True, unsandboxed=unsandboxed
        )
    if state.as_json:
        emit_json(record.to_json())
        return record.exit_code
    err, out = run_report(record)
    for line in err:
        click.echo(line, err=True)
    if out is not None:
        click.echo(out)
    return record.exit_code


@contextlib.contextmanager
def _terminated_like_interrupted() -> Iterator[None]:
    """SIGTERM stops a run as Ctrl-C does (its processes killed, its folders removed, the
    run not recorded); then the command dies of SIGTERM, as it would have at once. A
    SIGTERM the caller ignores stays ignored; one more while the run is stopped waits."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    got: list[int] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        if len(got) > 1:
            return
        # What Ctrl-C would do now: while the run's loop runs, its handler cancels the
        # run's task at an await (which then stops the sandbox and cleans up); before,
        # Python's own handler raises KeyboardInterrupt.
        on_int = signal.getsignal(signal.SIGINT)
        if callable(on_int):
            on_int(signal.SIGINT, frame)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        if got:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@cli.command("runs")
@click.argument("name")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1, max=1_000_000),
    default=20,
    show_default=True,
    help="How many.",
)
@click.pass_obj
def runs_command(state: State, name: str, limit: int) -> None:
    """The most recent runs of NAME (examples of `proctor test` included), newest first.

    A deleted procedure's runs stay listed; a NAME neither in the store nor in the run
    log is an error (exit 2).
    """
    from proctor.runs.report import RUNS_HEADERS, runs_table

    rows = state.workspace().runs.history(name, limit)
    if state.as_json:
        emit_json([r.to_json() for r in rows])
        return
    shown, piped = runs_table(rows)
    print_table(
        state,
        RUNS_HEADERS,
        shown,
        title=f"runs of {name}",
        fixed=(0, 1, 2, 4, 5),
        piped=(RUNS_HEADERS, piped),
    )


@cli.command("stats")
@click.argument("name", required=False)
@click.pass_obj
def stats_command(state: State, name: str | None) -> None:
    """Runs, success rate and mean/p50/p95 duration per version (of NAME, or of all).

    Example runs of `proctor test` are not counted; the last test of each version is
    shown beside it, and a version only tested is listed with 0 runs. A NAME neither
    in the store nor in the run log is an error (exit 2).
    """
    from proctor.runs.report import STATS_HEADERS, stats_json, stats_table

    runs = state.workspace().runs
    stats = runs.stats(name)
    tests = runs.log.last_tests(name)  # a version tested but never run is listed too
    if state.as_json:
        emit_json(stats_json(stats, tests))
        return
    print_table(
        state,
        STATS_HEADERS,
        stats_table(stats, tests),
        title="run statistics",
        fixed=(1, 2, 3, 4, 5, 6, 7),
    )


@cli.command("test")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.pass_obj
def test_command(state: State, ref: str) -> int:
    """Run the examples of NAME's metadata.json in the sandbox, as tests.

    Each example's params go to run() and its return value must equal `expected`.
    Prints PASS or FAIL per example and records the test with the version it judged.
    Exit 0 when every example passes, 1 when one fails, 2 for a bad NAME or VERSION.
    """
    from proctor.runs.report import example_report

    name, version = split_ref(ref)
    report = state.workspace().test(name, version)
    if state.as_json:
        emit_json(report.to_json())
        return report.exit_code
    out, err = example_report(report)
    for line in out:
        click.echo(line)
    for line in err:
        click.echo(line, err=True)
    return report.exit_code


@cli.command("mcp")
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
    from proctor.mcp_server import serve_stdio
    from proctor.runs.bridge import run_async
    from proctor.workspace import Workspace

    path = state.repo or None  # None: around the cwd, a disagreeing GIT_DIR refused
    Workspace.open(path, actor=state.actor).close()  # a bad repository fails here, once

    def open_workspace() -> Workspace:
        return Workspace.open(path, actor=state.actor)

    run_async(serve_stdio(open_workspace, procedure_tools=procedure_tools))


# -- plugins -------------------------------------------------------------------------------
