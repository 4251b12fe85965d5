"""The shared part of the command line: the global options and where they land
(:class:`State`), the group classes, and the output helpers every command uses.

Commands live in the sibling modules, one per command group; this module knows none of them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from proctor.core.errors import EXIT_CONFLICT, EXIT_USAGE, ProctorError

if TYPE_CHECKING:
    from proctor.workspace import Workspace


class State:
    """Global options, and the workspace opened on first need.

    Made by :func:`main` before parsing, so the error path knows ``--json`` and which
    action a failed write was; each global option fills it wherever it is typed.
    """

    def __init__(
        self, repo: str | None = None, actor: str | None = None, as_json: bool = False
    ) -> None:
        self.repo = repo
        self.actor = actor
        self.as_json = as_json
        self.no_color = False
        self.action: str | None = None  # the write being run, for its failure's JSON
        self.write_extra: dict[str, Any] = {}  # keys a write's JSON adds (init: path, ref)
        self.inputs: dict[str, bytes] = {}  # files read for params, see Workspace.execute
        self._workspace: Workspace | None = None

    @property
    def plain(self) -> bool:
        """No colours or styles: ``--no-color``, or ``NO_COLOR`` set and not empty."""
        return self.no_color or bool(os.environ.get("NO_COLOR"))

    def workspace(self) -> Workspace:
        if self._workspace is None:
            from proctor.core.entrypoints import spare_pydantic_plugin_scan
            from proctor.workspace import Workspace

            # The commands that open a workspace build pydantic models: pydantic's own
            # plugin search is a quarter of the CLI's import floor, skipped when proctor's
            # scan of the same files shows it would find nothing.
            spare_pydantic_plugin_scan()

            self._workspace = Workspace.open(self.repo or None, actor=self.actor)
        return self._workspace

    def close(self) -> None:
        """Close the workspace, telling on stderr what opening it found and no write
        result carried (a recovery's warnings, after a read)."""
        if self._workspace is not None:
            for warning in self._workspace.warnings:
                click.echo(f"warning: {warning}", err=True)
            self._workspace.warnings = []
            self._workspace.close()
            self._workspace = None


def emit_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


# -- global options, accepted before or after the subcommand -------------------------------


def _remember(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            state = ctx.find_object(State)
            if state is not None:
                setattr(state, attr, value)
        return value

    return callback


#: The global options: (flags, attribute of State it fills, metavar or None for a flag,
#: help). One table, so the four cannot drift apart in how they are declared.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], str, str | None, str], ...] = (
    (("--repo",), "repo", "PATH", "The git repository (default: the one around the cwd)."),
    (("--actor",), "actor", "ID", "Who acts (default: $PROCTOR_ACTOR, else git user.email)."),
    (("--json",), "as_json", None, "Machine-readable output on stdout: one JSON document."),
    (("--no-color",), "no_color", None, "No colours or styles on a terminal (also NO_COLOR=1)."),
)


def _global_options() -> list[click.Parameter]:
    """Every command and group carries these, so they may follow any subcommand."""
    return [
        click.Option(
            [*flags, attr],
            metavar=metavar,
            is_flag=metavar is None,
            expose_value=False,
            callback=_remember(attr),
            help=help_text,
        )
        for flags, attr, metavar, help_text in GLOBAL_OPTIONS
    ]


def _add_global_options(params: list[click.Parameter]) -> None:
    taken = {opt for p in params for opt in getattr(p, "opts", ())}
    params.extend(p for p in _global_options() if not set(getattr(p, "opts", ())) & taken)


class ProctorCommand(click.Command):
    """A command that also takes the global options (plugin commands included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_global_options(self.params)


class ProctorGroup(click.Group):
    """Takes the global options; looks a command up among plugin commands when it is not
    a built-in one."""

    command_class = ProctorCommand
    group_class = type  # subgroups are ProctorGroups as well

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_global_options(self.params)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not _commands_loaded:
            _load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=ProctorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="proctor", prog_name="proctor")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """proctor: a git-native store for executable Python procedures.

    Commits are versions, tags are releases, actions are the only way to change the
    store. Exit codes: 0 success, 1 findings/denied/failed, 2 bad input, 3 conflict.
    The global options (--repo, --actor, --json, --no-color) may also follow any
    subcommand.
    """
    if not isinstance(ctx.obj, State):
        ctx.obj = State()
    ctx.call_on_close(ctx.obj.close)


def writes(api_name: str) -> Callable[[click.Command], click.Command]:
    """Mark a command as the write ``api_name``: its failures print the write's JSON shape."""

    def mark(command: click.Command) -> click.Command:
        callback = command.callback
        assert callback is not None

        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            state = click.get_current_context().find_object(State)
            if state is not None:
                state.action = api_name
            return callback(*args, **kwargs)

        command.callback = run
        setattr(command, "api_name", api_name)  # noqa: B010 - click.Command has no slot for it
        return command

    return mark


# -- output helpers ------------------------------------------------------------------------


def print_table(
    state: State,
    headers: list[str],
    rows: list[list[Any]],
    *,
    title: str | None = None,
    fixed: tuple[int, ...] = (),
    narrow: tuple[int, ...] = (),
    piped: tuple[list[str], list[list[Any]]] | None = None,
) -> None:
    """A rich table on a terminal; tab-separated lines under a header line otherwise.

    On a terminal the ``fixed`` columns are never cut or wrapped (ids, dates, counts:
    a cut one is useless), and the others fold onto more lines when the width runs out,
    the ``narrow`` ones (names, say) first, so the last column keeps room to be read.
    ``piped`` gives other headers and rows for pipes (full ids and ISO dates, say).
    """
    if not sys.stdout.isatty():
        head, body = piped if piped is not None else (headers, rows)
        click.echo("\t".join(head))
        for row in body:
            click.echo("\t".join("" if c is None else str(c).replace("\t", " ") for c in row))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    plain = state.plain
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        expand=bool(narrow),
        title_style="" if plain else None,
        header_style="" if plain else "bold",
    )
    for i, h in enumerate(headers):
        if i in fixed:
            width = max([len(h), *(len(str(r[i] or "")) for r in rows)])
            table.add_column(h, no_wrap=True, min_width=width)
        else:
            table.add_column(h, overflow="fold", ratio=1 if i in narrow else 3)
    for row in rows:
        table.add_row(*["" if c is None else str(c) for c in row])
    console = Console(color_system=None) if plain else Console()
    console.print(table)


def write_json(state: State, data: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    """A write's JSON: the keys of ActionResult.to_json, ``error`` (the typed error's
    name when the write raised one, else null), plus the command's own keys."""
    out = {**data, "error": error}
    return {**out, **{k: data.get(k, v) for k, v in state.write_extra.items()}}


def _status_for(exit_code: int) -> str:
    """The ``status`` of a write that raised: it follows the exit code (docs/cli.md)."""
    if exit_code == EXIT_USAGE:
        return "invalid"
    if exit_code == EXIT_CONFLICT:
        return "conflict"
    return "failed"


def failure_json(state: State, exc: ProctorError) -> dict[str, Any]:
    """The JSON for an error: the write shape when a write was running, else the error
    shape ``{"status", "error", "errors"}``."""
    from proctor.core.errors import describe_error

    status = _status_for(exc.exit_code)
    if state.action is None:
        return {"status": status, "error": type(exc).__name__, "errors": describe_error(exc)}
    from proctor.engine.actions import ActionResult

    findings = [f for f in getattr(exc, "findings", ()) if hasattr(f, "to_dict")]
    data = ActionResult(
        status="failed",
        action=state.action,
        errors=describe_error(exc),
        message=exc.message,
        findings=findings,
    ).to_json()
    # Nothing was decided or announced under an id the face could know: say so.
    data.update(status=status, decision=None, correlation_id=None)
    return write_json(state, data, type(exc).__name__)


def report_result(state: State, result: Any) -> int:
    """Print an ActionResult (one JSON object with --json) and give its exit code."""
    if state.as_json:
        emit_json(write_json(state, result.to_json()))
    elif result.status == "applied":
        what = f"commit {result.commit[:12]}" if result.commit else "no commit"
        tags = f", tag {', '.join(result.tags)}" if result.tags else ""
        click.echo(f"{result.action} applied: {what}{tags}")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
    elif result.status == "proposed":
        click.echo(f"{result.action} proposed: proposal {result.proposal}")
    else:
        click.echo(f"{result.action} {result.status}: {'; '.join(result.errors)}", err=True)
    return int(result.exit_code)


def run_action(state: State, api_name: str, params: dict[str, Any]) -> int:
    return report_result(state, state.workspace().execute(api_name, params, inputs=state.inputs))


#: The largest input file read (code, metadata, a parameter's file): the store refuses
#: code over 1 MB anyway; this bound is what stops ``/dev/zero`` before it is read.
MAX_INPUT_BYTES = 4_000_000


def read_input_bytes(path: str, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, its size checked before reading.

    Opened without blocking (a FIFO never hangs the command) and judged by ``fstat`` on
    what was opened: a directory, a device, a FIFO or a socket is refused, and so is a
    file over ``limit`` bytes, before anything is read. UsageError (exit 2) otherwise.
    """
    import stat

    from proctor.core.errors import UsageError

    if "\0" in path:  # the OS cannot name it (os.open raises ValueError)
        raise UsageError(f"cannot read {what} {path!r}: a file name cannot hold a NUL byte")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _file_kind(info.st_mode)
            raise UsageError(f"{what} {path} is {kind}, not a regular file")
        if info.st_size > limit:
            raise UsageError(f"{what} {path} is {info.st_size} bytes; the limit is {limit} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise UsageError(f"{what} {path} is over the limit of {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    import stat

    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def read_file_arg(path: str, what: str) -> str:
    """A text input (UTF-8) read by :func:`read_input_bytes`, remembered in the state's
    ``inputs`` so a file edited in place is committed as it is."""
    from proctor.core.errors import UsageError

    data = read_input_bytes(path, what)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.obj, State):
        ctx.obj.inputs[os.path.abspath(path)] = data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{what} {path} is not UTF-8 text (line {line})") from None


def read_metadata_arg(path: str) -> dict[str, Any]:
    import json

    from proctor.core import jsonvalue
    from proctor.core.errors import ValidationFailed

    text = read_file_arg(path, "metadata file")
    try:
        data = jsonvalue.loads(text, path)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: expected a JSON object")
    return data


SHORT_SHA = 10  # like git's short ids: unique in any store a person reads in a table


def signature_text(spec: Any) -> str:
    """``run``'s parameters as Python writes them: defaults, ``/`` and ``*`` markers."""
    parts: list[str] = []
    keyword_seen = False
    params = list(spec.parameters)
    for i, p in enumerate(params):
        if p.kind == "keyword" and not keyword_seen:
            parts.append("*")
            keyword_seen = True
        text = f"{p.name}: {p.type}"
        if not p.required:
            text += " = " + (p.default_repr if p.default_repr is not None else repr(p.default))
        parts.append(text)
        last_positional_only = p.kind == "positional_only" and (
            i + 1 == len(params) or params[i + 1].kind != "positional_only"
        )
        if last_positional_only:
            parts.append("/")
    return ", ".join(parts)


def split_ref(value: str) -> tuple[str, str | None]:
    """``NAME@VERSION`` → (name, version)."""
    name, sep, version = value.partition("@")
    return name, (version if sep else None)


# -- init / quickstart ---------------------------------------------------------------------


_commands_loaded = False


def _load_plugin_commands() -> None:
    global _commands_loaded
    if _commands_loaded:
        return
    _commands_loaded = True
    from proctor.plugins import plugin_manager

    plugin_manager().call("proctor_register_commands", cli=cli)
