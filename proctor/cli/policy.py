"""``proctor policy ...``: what policy decides, and changing it through itself.

``explain`` runs only the decide step (nothing is written). ``update`` commits a new
``proctor.toml`` as the action ``config.update``, which the policy in force governs.
"""

from __future__ import annotations

import click

from proctor.cli.base import (
    ProctorGroup,
    State,
    cli,
    emit_json,
    read_file_arg,
    run_action,
    writes,
)


@cli.group(cls=ProctorGroup)
def policy() -> None:
    """Explain and change the policy (the [policy] table of the committed proctor.toml)."""


@policy.command("explain")
@click.argument("api_name", metavar="ACTION")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter of the action, as `proctor action run` takes it.",
)
@click.pass_obj
def policy_explain(state: State, api_name: str, params: tuple[str, ...]) -> None:
    """The decision for ACTION (as --actor) and the rule that made it; writes nothing."""
    from proctor.cli.procedures import parse_param

    explanation = state.workspace().explain_policy(
        api_name, dict(parse_param(p) for p in params), actor=state.actor
    )
    if state.as_json:
        emit_json(explanation.to_json())
        return
    for line in explanation.lines():
        click.echo(line)


@writes("config.update")
@policy.command("update")
@click.argument("path", metavar="FILE")
@click.pass_obj
def policy_update(state: State, path: str) -> int:
    """Commit FILE as the store's proctor.toml, as the current policy allows."""
    return run_action(state, "config.update", {"text": read_file_arg(path, "config file")})
