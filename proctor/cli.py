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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", metavar="PATH", help="The git repository (default: the one around the cwd).")
@click.option("--actor", metavar="ID", help="Who acts (default: $PROCTOR_ACTOR, else git user.email).")
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


# -- check ---------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--select", "select", multiple=True, metavar="RULES",
              help="Check names (safety, log-lint), rule codes or prefixes; comma-separated or repeated. Default: all.")
@click.option("--mode", type=click.Choice(["generic", "procedure"]), default="generic", show_default=True,
              help="procedure: also the import allowlist, and suppressions are ignored.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes.")
@click.pass_obj
def check(state: State, paths: tuple[str, ...], select: tuple[str, ...], mode: str, fmt: str, jobs: int) -> int:
    """Check Python files for unsafe code and log-message wording.

    Directories are searched for *.py files, honouring [check] exclude from the config.
    Prints path:line:col: CODE message. Exit 0 clean, 1 findings, 2 bad usage.
    """
    from proctor.core.checking import run_cli

    selected = [part.strip() for item in select for part in item.split(",") if part.strip()]
    if state.as_json and fmt == "text":
        fmt = "json"
    code = run_cli(list(paths), select=selected or None, mode=mode, fmt=fmt, jobs=jobs,
                   out=sys.stdout)
    return int(code)


# -- plugins -------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def plugins(state: State) -> None:
    """List loaded plugins, with their hooks and any load error."""
    from proctor.core.plugins import get_plugin_manager

    manager = get_plugin_manager()
    rows = [
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


def _load_plugin_commands() -> None:
    from proctor.core.plugins import get_plugin_manager

    get_plugin_manager().call_each("proctor_register_commands", cli=cli)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: run the CLI and map errors to the documented exit codes."""
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    try:
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
            emit_json({"status": "failed", "error": type(exc).__name__, "errors": [exc.message],
                       "exit_code": exc.exit_code})
        click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
