"""The ``proctor`` command line: thin click commands over :class:`proctor.Workspace`.

No business logic lives here. Heavy modules (rich, pydantic, the store) are imported
inside commands so that ``proctor --help`` stays fast; a test checks ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from proctor.core.errors import EXIT_USAGE, ProctorError

if TYPE_CHECKING:
    from proctor.workspace import Workspace


class State:
    """Global options, and the workspace opened on first need."""

    def __init__(self, repo: str | None, actor: str | None, as_json: bool) -> None:
        self.repo = repo
        self.actor = actor
        self.as_json = as_json
        self.inputs: dict[str, bytes] = {}  # files read for params, see Workspace.execute
        self._workspace: Workspace | None = None

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


class ProctorGroup(click.Group):
    """Looks a command up among plugin commands when it is not a built-in one."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not _commands_loaded:
            _load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=ProctorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo", metavar="PATH", help="The git repository (default: the one around the cwd)."
)
@click.option(
    "--actor", metavar="ID", help="Who acts (default: $PROCTOR_ACTOR, else git user.email)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.version_option(package_name="proctor", prog_name="proctor")
@click.pass_context
def cli(ctx: click.Context, repo: str | None, actor: str | None, as_json: bool) -> None:
    """proctor: a git-native store for executable Python procedures.

    Commits are versions, tags are releases, actions are the only way to change the
    store. Exit codes: 0 success, 1 findings/denied/failed, 2 bad input, 3 conflict.
    """
    state = State(repo, actor, as_json)
    ctx.obj = state
    ctx.call_on_close(state.close)


# -- output helpers ------------------------------------------------------------------------


def print_table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """A rich table on a terminal; tab-separated lines otherwise, for pipes and scripts."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for h in headers:
            table.add_column(h)
        for row in rows:
            table.add_row(*["" if c is None else str(c) for c in row])
        Console().print(table)
        return
    for row in rows:
        click.echo("\t".join("" if c is None else str(c) for c in row))


def report_result(state: State, result: Any) -> int:
    """Print an ActionResult (one JSON object with --json) and give its exit code."""
    if state.as_json:
        emit_json(result.to_json())
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
    from proctor.workspace import Workspace

    ws, created = Workspace.init(path, actor=state.actor)
    with ws:
        if state.as_json:
            emit_json(
                {
                    "status": "applied" if created else "unchanged",
                    "path": ws.store.cwd,
                    "ref": ws.ref,
                }
            )
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


@cli.group()
def procedure() -> None:
    """Create, change, release and inspect procedures."""


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
    if not items and not sys.stdout.isatty():
        return
    print_table(
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
    sig = ", ".join(
        f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default!r}") for p in spec.parameters
    )
    click.echo(f"  signature:   run({sig}) -> {spec.returns}")
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
        ["commit", "date", "author", "+/-", "breaking", "tags", "message"],
        [
            [
                v.commit[:12],
                v.date,
                v.email,
                f"+{v.added}/-{v.removed}",
                ("yes: " + "; ".join(v.reasons)) if v.breaking else "",
                " ".join(v.tags),
                v.message,
            ]
            for v in versions
        ],
        title=f"history of {name}",
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


@cli.group()
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
    print_table(["action", "description", "proposal"], rows, title="actions")


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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: run the CLI and map errors to the documented exit codes."""
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    try:
        if _third_party_plugins():
            _load_plugin_commands()
        rv = cli.main(args=argv, prog_name="proctor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ProctorError as exc:
        if as_json:
            from proctor.core.errors import describe_error

            emit_json(
                {
                    "status": "failed",
                    "action": None,
                    "commit": None,
                    "proposal": None,
                    "error": type(exc).__name__,
                    "errors": describe_error(exc),
                    "exit_code": exc.exit_code,
                }
            )
        click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
