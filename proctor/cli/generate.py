"""Code generation from metadata: ``generate`` (one procedure or ``--all``) and
``import`` (metadata-only procedures from a directory or a JSONL file)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from proctor.cli.base import State, cli, emit_json, report_result, write_json, writes

if TYPE_CHECKING:
    from pathlib import Path

    from proctor.llm.batch import BatchReport, BatchState, ItemResult

GENERATE_HELP = """Generate code for procedures that have metadata and no code.

\b
NAME: one procedure; --all: every one, --concurrency at a time. Each is
generated from its metadata (a skeleton first, then the model), checked in
procedure mode, its examples run in the sandbox, repaired a bounded number of
times, and committed through the procedure.generate action: confidence >= 0.8
with no findings is applied; 0.5-0.8 becomes a proposal needing one approval;
below 0.5 a proposal for expert review.

\b
The model: [llm] backend and model in proctor.toml, or --backend, --model and
--option KEY=VALUE (backend options; `replay` needs cassettes=DIR).

\b
--all stops cleanly on Ctrl-C or SIGTERM (what is committed stays committed)
and records its state in .git/proctor/generate-state.json; --resume continues
it and refuses when the input or the settings changed; --restart discards it.

\b
Exit codes:
  0    done: every item applied or proposed
  1    some item failed (the model, the checks, or policy); see the report
  2    bad input (no model configured, unknown procedure, nothing to resume,
       input or settings changed since the interrupted batch); nothing written
  130  interrupted by SIGINT or SIGTERM; continue with --resume
"""


def _options(values: tuple[str, ...]) -> dict[str, Any]:
    from proctor.core.errors import UsageError

    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


class _Progress:
    """A progress bar on a terminal (stderr), plain lines otherwise, nothing with --json."""

    def __init__(self, state: State) -> None:
        self.quiet = state.as_json
        self.tty = sys.stderr.isatty() and not state.as_json
        self.plain = state.plain
        self.bar: Any = None
        self.task: Any = None
        self.total = 0

    def started(self, batch: BatchState, todo: int) -> None:
        self.total = len(batch.items)
        done = len(batch.done)
        if self.quiet:
            return
        if not self.tty:
            click.echo(f"generating {todo} of {self.total} procedure(s)", err=True)
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(stderr=True, color_system=None if self.plain else "auto")
        self.bar = Progress(
            TextColumn("generate"), BarColumn(), MofNCompleteColumn(), console=console
        )
        self.bar.start()
        self.task = self.bar.add_task("generate", total=self.total, completed=done)

    def item(self, item: ItemResult, batch: BatchState) -> None:
        if self.quiet:
            return
        count = len(batch.done) + len(batch.failed)
        if self.bar is not None:
            self.bar.update(self.task, completed=count)
            return
        detail = f" (confidence {item.confidence:.2f})" if item.confidence is not None else ""
        error = f": {item.error}" if item.outcome == "failed" and item.error else ""
        click.echo(f"[{count}/{self.total}] {item.name} {item.outcome}{detail}{error}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_report(report: BatchReport, trace_ids: bool) -> None:
    head = "interrupted" if report.interrupted else "finished"
    click.echo(
        f"{head}: {report.total} procedure(s): {report.applied} applied, "
        f"{report.proposed} proposed, {report.failed} failed, {report.pending} not done; "
        f"auto-extraction rate {report.auto_extraction_rate:.0%}"
    )
    for item in report.items:
        if item.outcome == "failed":
            click.echo(f"failed: {item.name}: {item.error}", err=True)
    if trace_ids:
        failed = [i for i in report.items if i.outcome == "failed"]
        for item in failed:
            ids = ", ".join(item.request_ids) or "(no request id: nothing reached the model)"
            click.echo(f"trace ids of {item.name}: {ids}")
    if report.interrupted:
        click.echo(f"state kept in {report.state_path}; continue with --resume", err=True)


@writes("procedure.generate")
@cli.command("generate", help=GENERATE_HELP, short_help="Generate code from metadata.")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Every procedure with metadata and no code.")
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=4, show_default=True, metavar="N"
)
@click.option("--resume", is_flag=True, help="Continue the interrupted batch.")
@click.option("--restart", is_flag=True, help="Discard an unfinished batch and start over.")
@click.option("--backend", metavar="NAME", help="The LLM backend. [default: [llm] backend]")
@click.option("--model", metavar="MODEL", help="The model. [default: [llm] model]")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="A backend option.")
@click.option("--max-repairs", type=click.IntRange(min=0), metavar="N", help="[default: 2]")
@click.option("--trace-ids", is_flag=True, help="Print the request ids of failed items.")
@click.pass_obj
def generate_command(
    state: State,
    name: str | None,
    all_: bool,
    concurrency: int,
    resume: bool,
    restart: bool,
    backend: str | None,
    model: str | None,
    options: tuple[str, ...],
    max_repairs: int | None,
    trace_ids: bool,
) -> int:
    from proctor.core.errors import UsageError

    if bool(name) == all_:
        raise UsageError("give one NAME or --all")
    if (resume or restart) and not all_:
        raise UsageError("--resume and --restart go with --all")
    ws = state.workspace()
    settings = ws.generation_settings(
        backend=backend, model=model, options=_options(options), max_repairs=max_repairs
    )
    if name:
        done = ws.generate(name, settings)
        if state.as_json:
            emit_json(write_json(state, done.to_json()))
            return int(done.result.exit_code)
        outcome = done.outcome
        click.echo(
            f"{name}: confidence {outcome.confidence:.2f} ({outcome.source}, band "
            f"{outcome.band.name}, {len(outcome.rounds) - 1} repair(s))"
        )
        return report_result(state, done.result)
    state.action = None  # a batch has its own report, not one action's shape
    progress = _Progress(state)
    try:
        report = ws.generate_all(
            settings,
            concurrency=concurrency,
            resume=resume,
            restart=restart,
            progress=progress.item,
            started=progress.started,
        )
    finally:
        progress.close()
    if state.as_json:
        emit_json(report.to_json())
    else:
        _print_report(report, trace_ids)
    return report.exit_code


IMPORT_HELP = """Import procedure metadata: metadata-only procedures, in one commit.

\b
PATH: a JSONL file (one metadata object a line), a JSON file (one object or a
list), or a directory (every *.json in it, and <name>/metadata.json). Each
becomes procedures/<name>/metadata.json with no main.py yet: `proctor
generate` writes the code. Procedures already there with the same metadata
are skipped; any other clash, or invalid metadata, refuses the whole import.
"""


def _read_items(path: Path) -> list[dict[str, Any]]:
    import json

    from proctor.cli.base import read_input_bytes
    from proctor.core import jsonvalue
    from proctor.core.errors import UsageError, ValidationFailed

    def load(file: Path) -> list[Any]:
        # A regular file only, its size checked before reading (a FIFO never hangs the
        # command, /dev/zero is never read), as every other input file.
        raw = read_input_bytes(str(file), "metadata file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"cannot read {file}: {exc}") from None
        if file.suffix == ".jsonl":
            out = []
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    out.append(jsonvalue.loads(line, f"{file}:{number}"))
                except json.JSONDecodeError as exc:
                    raise ValidationFailed(f"{file}:{number}: not valid JSON: {exc.msg}") from None
            return out
        try:
            data = jsonvalue.loads(text, str(file))
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"{file}: not valid JSON at line {exc.lineno}: {exc.msg}"
            ) from None
        return data if isinstance(data, list) else [data]

    if path.is_dir():
        files = sorted([*path.glob("*.json"), *path.glob("*.jsonl"), *path.glob("*/metadata.json")])
        items = [item for f in files for item in load(f)]
    elif path.exists():
        items = load(path)
    else:
        raise UsageError(f"{path} does not exist")
    if not items:
        raise UsageError(f"{path} holds no procedure metadata")
    bad = [i + 1 for i, item in enumerate(items) if not isinstance(item, dict)]
    if bad:
        raise ValidationFailed(f"{path}: item(s) {', '.join(map(str, bad[:10]))} are not objects")
    return items


@writes("procedure.import")
@cli.command("import", help=IMPORT_HELP, short_help="Import procedure metadata (no code yet).")
@click.argument("path", type=click.Path())
@click.pass_obj
def import_command(state: State, path: str) -> int:
    from pathlib import Path  # here, not at import: ``proctor --help`` stays light

    items = _read_items(Path(os.path.expanduser(path)))
    result = state.workspace().import_procedures(items)
    if not state.as_json and result.status == "applied":
        click.echo(f"imported {len(items)} procedure(s) as metadata only")
    return report_result(state, result)
