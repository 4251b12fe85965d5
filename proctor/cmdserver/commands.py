"""``proctor server``: start, stop and look at the command server (``PROCTOR_SERVER=1``).

A command group of the console script (:mod:`proctor.cmdserver.client` adds it to
:data:`proctor.cli.base.cli` before the CLI runs), since the CLI below may not import
this package.
"""

from __future__ import annotations

import os
import time
from typing import Any

import click

from proctor.cli.base import ProctorGroup, State, emit_json
from proctor.core.errors import UsageError


@click.group(cls=ProctorGroup)
def server() -> None:
    """The command server: a warm process that runs each `proctor` command in a fork of
    itself, so a command skips the interpreter's start-up and proctor's imports.

    Commands use it when PROCTOR_SERVER=1 is set; the first such command starts it.
    See docs/server.md."""


def _where() -> str:
    from proctor.cmdserver import common

    try:
        return common.socket_path(common.private_folder(create=True), common.flavour())
    except common.Unusable as exc:
        raise UsageError(f"no command server here: {exc}") from None


def _status(path: str) -> dict[str, Any] | None:
    from proctor.cmdserver import common

    try:
        return common.ask(path, "status")
    except (OSError, common.Unusable):
        return None


@server.command("start")
@click.option(
    "--idle",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds without a command before it exits (default: $PROCTOR_SERVER_IDLE, else 600).",
)
@click.pass_obj
def server_start(state: State, idle: int | None) -> None:
    """Start the command server of this interpreter, unless one runs already."""
    from proctor.cmdserver import common

    path = _where()
    report = _status(path)
    if report is None:
        seconds = idle or int(os.environ.get("PROCTOR_SERVER_IDLE", common.DEFAULT_IDLE))
        common.spawn(path, seconds)
        deadline = time.monotonic() + 30
        while report is None and time.monotonic() < deadline:
            time.sleep(0.05)
            report = _status(path)
        if report is None:
            raise UsageError(f"the command server did not start; see {path[:-5]}.log")
        report["started_now"] = True
    else:
        report["started_now"] = False
    if state.as_json:
        emit_json(report)
        return
    verb = "started" if report["started_now"] else "already running"
    click.echo(f"command server {verb}: pid {report['pid']}, socket {report['socket']}")


@server.command("stop")
@click.pass_obj
def server_stop(state: State) -> None:
    """Stop the command server (commands running in it finish first)."""
    from proctor.cmdserver import common

    path = _where()
    try:
        answer: dict[str, Any] | None = common.ask(path, "stop")
    except (OSError, common.Unusable):
        answer = None
    if state.as_json:
        emit_json({"stopped": answer is not None, "pid": (answer or {}).get("pid")})
        return
    if answer is None:
        click.echo("no command server is running")
    else:
        click.echo(f"command server {answer['pid']} stopping")


@server.command("status")
@click.pass_obj
def server_status(state: State) -> None:
    """Whether the command server runs, and what it has served."""
    path = _where()
    report = _status(path)
    if state.as_json:
        emit_json({"running": report is not None, **(report or {"socket": path})})
        return
    if report is None:
        click.echo(f"no command server is running (it would listen at {path})")
        return
    click.echo(f"command server: pid {report['pid']}, socket {report['socket']}")
    click.echo(f"served: {report['served']} commands, {report['busy']} running now")
    click.echo(f"idle timeout: {report['idle_timeout']:g} s")
