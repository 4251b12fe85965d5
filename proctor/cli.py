"""The ``proctor`` command line: thin click commands over :class:`proctor.Workspace`.

No business logic lives here. Heavy modules (rich, pydantic, the store) are imported
inside commands so that ``proctor --help`` stays fast; a test checks ``sys.modules``.
"""

from __future__ import annotations

import functools
import json
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
            from proctor.workspace import Workspace

            self._workspace = Workspace.open(self.repo or os.getcwd(), actor=self.actor)
        return self._workspace

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None


def emit_json(data: Any) -> None:
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


def _global_options() -> list[click.Parameter]:
    """Every command and group carries these, so they may follow any subcommand."""
    return [
        click.Option(
            ["--repo"],
            metavar="PATH",
            expose_value=False,
            callback=_remember("repo"),
            help="The git repository (default: the one around the cwd).",
        ),
        click.Option(
            ["--actor"],
            metavar="ID",
            expose_value=False,
            callback=_remember("actor"),
            help="Who acts (default: $PROCTOR_ACTOR, else git user.email).",
        ),
        click.Option(
            ["--json", "as_json"],
            is_flag=True,
            expose_value=False,
            callback=_remember("as_json"),
            help="Machine-readable output on stdout: one JSON document.",
        ),
        click.Option(
            ["--no-color", "no_color"],
            is_flag=True,
            expose_value=False,
            callback=_remember("no_color"),
            help="No colours or styles on a terminal (also NO_COLOR=1).",
        ),
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


def read_file_arg(path: str, what: str) -> str:
    from proctor.core.errors import UsageError

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.obj, State):
        ctx.obj.inputs[os.path.abspath(path)] = data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None


def read_metadata_arg(path: str) -> dict[str, Any]:
    from proctor.core.errors import ValidationFailed

    text = read_file_arg(path, "metadata file")
    try:
        data = json.loads(text)
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


@cli.command()
@click.argument("path", required=False, default=".", type=click.Path(file_okay=False))
@click.pass_obj
def init(state: State, path: str) -> None:
    """Make PATH (default: .) a proctor store: git init if needed, commit proctor.toml."""
    from proctor.engine.actions import ActionResult
    from proctor.workspace import Workspace

    state.action = "init"
    state.write_extra = {"path": None, "ref": None}
    ws, created = Workspace.init(path, actor=state.actor)
    with ws:
        if state.as_json:
            data = ActionResult(
                status="applied", action="init", commit=ws.store.read_ref(ws.ref)
            ).to_json()
            data.update(status="applied" if created else "unchanged", path=ws.store.cwd, ref=ws.ref)
            emit_json(write_json(state, data))
        elif created:
            click.echo(f"Initialised proctor store in {ws.store.cwd} on {ws.ref}")
        else:
            click.echo(f"{ws.store.cwd} is already a proctor store ({ws.ref})")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.pass_obj
def quickstart(state: State, directory: str | None) -> None:
    """Walk through a procedure's lifecycle in a new repository (offline).

    Creates DIRECTORY (default: a new temporary directory), then init, create, release,
    a refused unsafe update, update, release, history and rollback, printing each step.
    """
    import tempfile
    from pathlib import Path

    from proctor.core.errors import UsageError
    from proctor.quickstart import run_quickstart

    if directory is None:
        target = Path(tempfile.mkdtemp(prefix="proctor-quickstart-"))
    else:
        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            raise UsageError(f"{directory} exists and is not empty; give a new directory")
    ws = run_quickstart(target, click.echo, actor=state.actor or "quickstart@proctor")
    ws.close()


# -- procedure -----------------------------------------------------------------------------


@cli.group(cls=ProctorGroup)
def procedure() -> None:
    """Create, change, release and inspect procedures."""


@writes("procedure.create")
@procedure.command("create")
@click.argument("name")
@click.option("--code", "code_file", required=True, metavar="FILE", help="The main.py to store.")
@click.option(
    "--metadata",
    "metadata_file",
    metavar="FILE",
    help="metadata.json (default: derived from run()).",
)
@click.option("--description", help="One line saying what the procedure does.")
@click.pass_obj
def procedure_create(
    state: State, name: str, code_file: str, metadata_file: str | None, description: str | None
) -> int:
    """Add procedure NAME from a code file (one commit)."""
    params: dict[str, Any] = {"name": name, "code": read_file_arg(code_file, "code file")}
    if metadata_file:
        params["metadata"] = read_metadata_arg(metadata_file)
    if description is not None:
        params["description"] = description
    return run_action(state, "procedure.create", params)


@writes("procedure.update")
@procedure.command("update")
@click.argument("name")
@click.option("--code", "code_file", metavar="FILE", help="New main.py.")
@click.option("--metadata", "metadata_file", metavar="FILE", help="New metadata.json.")
@click.option("--description", help="New description.")
@click.option(
    "--expected-version",
    metavar="REV",
    help="Refuse (exit 3) if the procedure changed since this version.",
)
@click.pass_obj
def procedure_update(
    state: State,
    name: str,
    code_file: str | None,
    metadata_file: str | None,
    description: str | None,
    expected_version: str | None,
) -> int:
    """Change procedure NAME's code and/or metadata (one commit)."""
    params: dict[str, Any] = {"name": name}
    if code_file:
        params["code"] = read_file_arg(code_file, "code file")
    if metadata_file:
        params["metadata"] = read_metadata_arg(metadata_file)
    if description is not None:
        params["description"] = description
    if expected_version:
        params["expected_version"] = expected_version
    return run_action(state, "procedure.update", params)


@writes("procedure.delete")
@procedure.command("delete")
@click.argument("name")
@click.option("--expected-version", metavar="REV", help="Refuse if changed since this version.")
@click.pass_obj
def procedure_delete(state: State, name: str, expected_version: str | None) -> int:
    """Remove procedure NAME (history and releases stay in git)."""
    params: dict[str, Any] = {"name": name}
    if expected_version:
        params["expected_version"] = expected_version
    return run_action(state, "procedure.delete", params)


@writes("procedure.release")
@procedure.command("release")
@click.argument("name")
@click.option(
    "--bump",
    type=click.Choice(["auto", "major", "minor", "patch"]),
    default=None,
    help="Which part to raise; auto reads run()'s signature. [default: auto]",
)
@click.option(
    "--version", "version", metavar="X.Y.Z", help="An explicit version instead of --bump."
)
@click.option("-m", "--message", help="The release note (tag message).")
@click.pass_obj
def procedure_release(
    state: State, name: str, bump: str | None, version: str | None, message: str | None
) -> int:
    """Tag NAME's latest version as procedures/NAME/vX.Y.Z (never moved)."""
    from proctor.core.errors import UsageError

    if bump and version:
        raise UsageError("give --bump or --version, not both")
    params: dict[str, Any] = {"name": name, "bump": bump or "auto"}
    if version:
        params["version"] = version
    if message:
        params["message"] = message
    return run_action(state, "procedure.release", params)


@writes("procedure.rollback")
@procedure.command("rollback")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="X.Y.Z", help="The release to restore.")
@click.pass_obj
def procedure_rollback(state: State, name: str, to: str) -> int:
    """Restore release X.Y.Z of NAME in a new commit, tagged as a new patch release."""
    return run_action(state, "procedure.rollback", {"name": name, "to": to})


@procedure.command("list")
@click.pass_obj
def procedure_list(state: State) -> None:
    """List the procedures on the store branch."""
    items = state.workspace().list_procedures()
    if state.as_json:
        emit_json([i.__dict__ for i in items])
        return
    print_table(
        state,
        ["name", "category", "description"],
        [[i.name, i.category, i.error or i.description] for i in items],
        title="procedures",
    )


@procedure.command("show")
@click.argument("ref", metavar="NAME[@VERSION|@REV]")
@click.option("--code", "show_code", is_flag=True, help="Print main.py only.")
@click.pass_obj
def procedure_show(state: State, ref: str, show_code: bool) -> None:
    """Show a procedure at the tip, a release (X.Y.Z) or any git revision."""
    name, version = split_ref(ref)
    view = state.workspace().get_procedure(name, version)
    if state.as_json:
        emit_json(view.to_json(include_code=show_code))
        return
    if show_code:
        click.echo(view.code, nl=not view.code.endswith("\n"))
        return
    spec = view.spec
    click.echo(f"{view.name} @ {view.commit[:12] if view.commit else '-'}")
    click.echo(f"  description: {spec.description}")
    click.echo(f"  category:    {spec.category}")
    click.echo(f"  signature:   run({signature_text(spec)}) -> {spec.returns}")
    for p in spec.parameters:
        if p.description:
            click.echo(f"    {p.name}: {p.description}")
    click.echo(f"  releases:    {', '.join(view.releases) or '-'}")


@procedure.command("history")
@click.argument("name")
@click.pass_obj
def procedure_history(state: State, name: str) -> None:
    """Versions of NAME, newest first, with line counts and breaking changes."""
    versions = state.workspace().history(name)
    if state.as_json:
        emit_json([v.to_json() for v in versions])
        return
    print_table(
        state,
        ["commit", "date", "author", "+/-", "tags", "message"],
        [
            [
                v.commit[:SHORT_SHA],
                v.date[:10],
                v.author or v.email,
                f"+{v.added}/-{v.removed}",
                " ".join(v.tags),
                v.message + ("\nbreaking: " + "; ".join(v.reasons) if v.breaking else ""),
            ]
            for v in versions
        ],
        title=f"history of {name}",
        fixed=(0, 1, 3),
        narrow=(2, 4),
        piped=(
            ["commit", "date", "author", "+/-", "breaking", "tags", "message"],
            [
                [
                    v.commit,
                    v.date,
                    v.email,
                    f"+{v.added}/-{v.removed}",
                    ("yes: " + "; ".join(v.reasons)) if v.breaking else "",
                    " ".join(v.tags),
                    v.message,
                ]
                for v in versions
            ],
        ),
    )


@procedure.command("diff")
@click.argument("name")
@click.argument("from_version", metavar="FROM")
@click.argument("to_version", metavar="[TO]", required=False)
@click.pass_obj
def procedure_diff(state: State, name: str, from_version: str, to_version: str | None) -> None:
    """Unified diff of NAME between two versions (X.Y.Z or revisions; TO defaults to the tip)."""
    text = state.workspace().diff(name, from_version, to_version)
    if state.as_json:
        emit_json({"name": name, "from": from_version, "to": to_version, "diff": text})
    else:
        click.echo(text, nl=False)


# -- action --------------------------------------------------------------------------------


@cli.group(cls=ProctorGroup)
def action() -> None:
    """List and run actions (every change to the store is one)."""


@action.command("list")
@click.pass_obj
def action_list(state: State) -> None:
    """The registered action types."""
    actions = state.workspace().actions()
    rows = [
        [name, cls.description, "yes" if cls.requires_proposal else ""]
        for name, cls in sorted(actions.items())
    ]
    if state.as_json:
        emit_json(
            [
                {
                    "api_name": r[0],
                    "description": r[1],
                    "requires_proposal": bool(r[2]),
                    "params": actions[r[0]].Params.model_json_schema(),
                }
                for r in rows
            ]
        )
        return
    print_table(state, ["action", "description", "proposal"], rows, title="actions", fixed=(0,))


def parse_param(item: str) -> tuple[str, Any]:
    """``KEY=VALUE``: VALUE as JSON when it parses, ``@file`` reads a file, else a string."""
    from proctor.core.errors import UsageError

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"-p expects KEY=VALUE, got {item!r}")
    if value.startswith("@"):
        return key, read_file_arg(value[1:], f"file for {key}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


@action.command("run")
@click.argument("api_name")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is JSON if it parses, @FILE reads a file, else a string.",
)
@click.pass_obj
def action_run(state: State, api_name: str, params: tuple[str, ...]) -> int:
    """Run any registered action by its api_name."""
    state.action = api_name
    return run_action(state, api_name, dict(parse_param(p) for p in params))


# -- check ---------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--select",
    "select",
    multiple=True,
    metavar="RULES",
    help="Check names (safety, log-lint), rule codes or prefixes; comma-separated or repeated. Default: all.",
)
@click.option(
    "--mode",
    type=click.Choice(["generic", "procedure"]),
    default="generic",
    show_default=True,
    help="procedure: also the import allowlist, and suppressions are ignored.",
)
@click.option(
    "--format",
    "fmt",
    metavar="NAME",
    default="text",
    show_default=True,
    help="Output format: text, json, sarif, or one a plugin registers.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(["error", "warning", "info"]),
    default=None,
    help="Lowest severity that fails the run (exit 1). Default: [check] fail-on from the "
    "config, else info (any finding fails).",
)
@click.pass_obj
def check(
    state: State,
    paths: tuple[str, ...],
    select: tuple[str, ...],
    mode: str,
    fmt: str,
    jobs: int,
    fail_on: str | None,
) -> int:
    """Check Python files for unsafe code and log-message wording.

    Directories are searched for *.py files, honouring [check] exclude from the config.
    Prints path:line:col: CODE [severity] message. Exit 0 when no finding is at or above
    --fail-on (default: any finding fails), 1 otherwise, 2 bad usage.
    """
    from proctor.checks.runner import run_cli
    from proctor.procedures.capabilities import capabilities_for

    selected = [part.strip() for item in select for part in item.split(",") if part.strip()]
    if state.as_json and fmt == "text":
        fmt = "json"
    code = run_cli(
        list(paths),
        select=selected or None,
        mode=mode,
        fmt=fmt,
        jobs=jobs,
        out=sys.stdout,
        capabilities_for=capabilities_for,
        fail_on=fail_on,
    )
    return int(code)


# -- runs ------------------------------------------------------------------------------------

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


@cli.command("run", help=RUN_HELP, short_help="Run a procedure in the sandbox, recorded.")
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


@cli.command("runs")
@click.argument("name")
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many."
)
@click.pass_obj
def runs_command(state: State, name: str, limit: int) -> None:
    """The most recent runs of NAME (examples of `proctor test` included), newest first."""
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
    shown beside it.
    """
    from proctor.runs.report import STATS_HEADERS, stats_json, stats_table

    runs = state.workspace().runs
    stats = runs.stats(name)
    tests = runs.log.last_tests(name) if stats else {}
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

    path = state.repo or os.getcwd()
    Workspace.open(path, actor=state.actor).close()  # a bad repository fails here, once

    def open_workspace() -> Workspace:
        return Workspace.open(path, actor=state.actor)

    run_async(serve_stdio(open_workspace, procedure_tools=procedure_tools))


# -- plugins -------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def plugins(state: State) -> None:
    """List loaded plugins, with their hooks and any load error."""
    from proctor.plugins import plugin_manager

    manager = plugin_manager()
    manager.load_registries()
    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "module": info.module,
            "version": info.version,
            "builtin": info.builtin,
            "hooks": info.hooks,
            "status": "disabled" if info.disabled else ("error" if info.error else "ok"),
            "error": info.error,
        }
        for info in manager.infos.values()
    ]
    if state.as_json:
        emit_json(rows)
        return
    for row in rows:
        kind = "built-in" if row["builtin"] else (row["version"] or "?")
        line = f"{row['name']} ({kind}) {row['status']}"
        if row["hooks"]:
            line += ": " + ", ".join(row["hooks"])
        if row["error"]:
            line += f"\n    error: {row['error']}"
        click.echo(line)


_commands_loaded = False


def _load_plugin_commands() -> None:
    global _commands_loaded
    if _commands_loaded:
        return
    _commands_loaded = True
    from proctor.plugins import plugin_manager

    plugin_manager().call("proctor_register_commands", cli=cli)


def _third_party_plugins() -> bool:
    """Whether any plugin outside proctor is installed (and not disabled).

    Only those can add commands; without one, ``proctor --help`` and the built-in commands
    never load the plugin system (pluggy alone imports importlib.metadata, ~50 ms).
    """
    if "PROCTOR_NO_ENTRY_POINTS" in os.environ:
        return False
    from proctor.core.entrypoints import entry_points
    from proctor.core.plugins import disabled_plugins

    off = disabled_plugins()
    return any(ep.name not in off for ep in entry_points("proctor"))


def _click_error_json(state: State, exc: click.ClickException) -> dict[str, Any]:
    """A usage error from click (a missing option, say) in the shape of its command."""
    from proctor.core.errors import UsageError

    command = getattr(getattr(exc, "ctx", None), "command", None)
    api_name = getattr(command, "api_name", None)
    if api_name is not None and state.action is None:
        state.action = api_name
    error = UsageError(exc.format_message())
    error.exit_code = exc.exit_code
    return failure_json(state, error)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: run the CLI and map errors to the documented exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = State()
    try:
        if _third_party_plugins():
            _load_plugin_commands()
        rv = cli.main(args=args, prog_name="proctor", standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        # Parsing may stop before --json is reached: look for it among the words too.
        if state.as_json or "--json" in args:
            emit_json(_click_error_json(state, exc))
        exc.show()
        return exc.exit_code
    except ProctorError as exc:
        if state.as_json:
            emit_json(failure_json(state, exc))
        click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    finally:
        state.close()
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
