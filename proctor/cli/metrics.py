"""``proctor metrics``: the Prometheus exposition of this clone's counters."""

from __future__ import annotations

import click

from proctor.cli.base import State, cli


@cli.command("metrics")
@click.option(
    "--textfile",
    metavar="PATH",
    help="Write the exposition to PATH atomically (node_exporter's textfile collector "
    "reads *.prom files from its directory) instead of printing it.",
)
@click.pass_obj
def metrics(state: State, textfile: str | None) -> int:
    """Print the Prometheus text exposition of every process's counters in this clone.

    Needs the `metrics` extra (prometheus_client). Exit codes: 0 ok, 2 the extra is
    missing or PATH cannot be written.
    """
    ws = state.workspace()
    if textfile is not None:
        from proctor.plugins.metrics import write_textfile

        write_textfile(ws.store.common_dir, textfile)
        return 0
    click.echo(ws.metrics_text(), nl=False)
    return 0
