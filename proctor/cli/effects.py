"""``proctor side-effects list | retry``: the outbox of this clone."""

from __future__ import annotations

import time
from typing import Any

import click

from proctor.cli.base import State, cli, emit_json, print_table


@cli.group("side-effects")
def side_effects() -> None:
    """Deliveries of the configured side effects ([side-effects.*]): show, redeliver.

    Every write also delivers what earlier commands left pending (one try each);
    reads never deliver. Exit codes: 0 all delivered (or nothing to do), 1 some
    delivery is still pending or failed, 2 bad input.
    """


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


@side_effects.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["prepared", "pending", "delivered", "failed"]),
    help="Only rows in this state (repeatable). [default: all]",
)
@click.pass_obj
def list_effects(state: State, states: tuple[str, ...]) -> int:
    """Show the outbox, oldest first; delivers nothing."""
    rows = state.workspace().side_effects(states or None)
    if state.as_json:
        emit_json([row.to_json() for row in rows])
        return 0
    if not rows:
        click.echo("no side effects recorded")
        return 0
    print_table(
        state,
        ["ID", "EFFECT", "STATE", "ACTION", "KEY", "TRIES", "UPDATED", "LAST ERROR"],
        [
            [
                row.id,
                row.effect,
                row.state,
                row.payload.get("action"),
                row.key or f"{row.correlation_id} (not committed yet)",
                row.attempts,
                _when(row.updated),
                row.last_error or "",
            ]
            for row in rows
        ],
        fixed=(0, 2, 5, 6),
    )
    return 0


@side_effects.command("retry")
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.pass_obj
def retry_effects(state: State, ids: tuple[int, ...]) -> int:
    """Deliver every pending or failed side effect now (or only rows ID...), with the
    full retry policy and the effects as configured now."""
    results = state.workspace().retry_side_effects(list(ids) or None)
    rows: list[dict[str, Any]] = [
        {**row.to_json(), "state": outcome.partition(":")[0], "result": outcome}
        for row, outcome in results
    ]
    if state.as_json:
        emit_json(rows)
    elif not rows:
        click.echo("nothing to deliver")
    for row in rows if not state.as_json else ():
        click.echo(f"{row['id']} {row['effect']} {row['key']}: {row['result']}")
    return 0 if all(r["state"] == "delivered" for r in rows) else 1
