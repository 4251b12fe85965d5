"""The ``proctor`` command line: thin click commands over :class:`proctor.Workspace`.

A module per command group (``procedures``, ``check``, ``runs``; the shared options, group
classes and output helpers in ``base``); importing them here registers their commands on
:data:`cli`. A new command group is a new module and one import line. No business logic
lives here. Heavy modules (rich, pydantic, the store) are imported
inside commands so that ``proctor --help`` stays fast; a test checks ``sys.modules``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from proctor.cli import (  # noqa: F401  (each registers its commands)
    cache,
    check,
    effects,
    generate,
    metrics,
    policy,
    procedures,
    proposals,
    runs,
    status,
    sync,
)
from proctor.cli.base import (
    State,
    _load_plugin_commands,
    cli,
    emit_json,
    failure_json,
)
from proctor.core.errors import EXIT_USAGE, ProctorError


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


def _show_click_error(exc: click.ClickException) -> None:
    """A usage error from click as every other error reads: one ``error:`` line, with
    where the usage is (a group called without a subcommand still shows its help)."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()
        return
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(exc.format_message().split())
    click.echo(f"error: {message}{hint}", err=True)


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
        _show_click_error(exc)
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
