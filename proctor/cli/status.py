"""``proctor status``: where the store is, and whether what is checked out holds it."""

from __future__ import annotations

import click

from proctor.cli.base import State, cli, emit_json


@cli.command()
@click.pass_obj
def status(state: State) -> None:
    """Show the store ref, its tip, whether the work tree is in sync, and any
    interrupted write (which opening the store finishes). Writes nothing."""
    ws = state.workspace()
    report = ws.status()
    ws.warnings = []  # reported below, not again on close
    if state.as_json:
        emit_json(report.to_json())
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
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
