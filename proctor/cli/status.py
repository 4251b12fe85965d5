"""``proctor status``: where the store is, and whether what is checked out holds it."""

from __future__ import annotations

import click

from proctor.cli.base import State, cli, emit_json


@cli.command()
@click.pass_obj
def status(state: State) -> None:
    """Show the store ref, its tip, whether the work tree is in sync, any interrupted
    write (which opening the store finishes), and how far the store branch is from its
    remote as last fetched (`proctor sync` fetches). Writes nothing, uses no network."""
    from proctor.cli.sync import status_text
    from proctor.core.errors import ProctorError

    ws = state.workspace()
    report = ws.status()
    ws.warnings = []  # reported below, not again on close
    try:
        remote = ws.sync_status()
    except ProctorError:  # no such remote (none configured): nothing to compare with
        remote = None
    if state.as_json:
        emit_json({**report.to_json(), "remote": remote.to_json() if remote else None})
        return
    click.echo(f"store ref: {report.ref}")
    click.echo(f"tip:       {report.tip or '- (no commit yet)'}")
    if report.work_tree is None:
        click.echo("work tree: - (the store ref is not checked out)")
    else:
        click.echo(f"work tree: {report.work_tree}")
        click.echo(f"in sync:   {'yes' if report.in_sync else 'no'}")
        for path in report.out_of_sync:
            click.echo(f"  changed: {path}")
    if report.operation:
        click.echo(f"operation: {report.operation} is in progress")
    if report.recovered:
        click.echo("recovered: " + ", ".join(report.recovered))
    click.echo(f"journal:   {report.journal or '-'}")
    click.echo(f"remote:    {status_text(remote) if remote else '- (no remote to sync with)'}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
