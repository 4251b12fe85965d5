"""The LLM response cache of this clone: ``proctor cache validate | purge``."""

from __future__ import annotations

import click

from proctor.cli.base import ProctorGroup, State, cli, emit_json


@cli.group("cache", cls=ProctorGroup)
def cache() -> None:
    """The LLM response cache, .git/proctor/llm-cache (local, never versioned).

    \b
    Exit codes: 0 ok; 1 validate found broken entries (and removed them,
    unless --no-repair).
    """


@cache.command("validate")
@click.option("--no-repair", is_flag=True, help="Only count broken entries; leave them in place.")
@click.pass_obj
def validate_command(state: State, no_repair: bool) -> int:
    """Check every entry against the manifest's SHA-256; count and remove broken ones."""
    import dataclasses

    report = state.workspace().llm_cache().validate(repair=not no_repair)
    if state.as_json:
        emit_json({**dataclasses.asdict(report), "ok": report.ok})
    else:
        click.echo(
            f"{report.entries} entr{'y' if report.entries == 1 else 'ies'}: {report.valid} valid, "
            f"{report.corrupt} corrupt, {report.missing} missing, {report.orphans} orphaned, "
            f"{report.bad_lines} bad manifest line(s); {report.removed} removed"
        )
    return 0 if report.ok else 1


@cache.command("purge")
@click.pass_obj
def purge_command(state: State) -> int:
    """Remove every cached reply; the next calls ask the model again."""
    removed = state.workspace().llm_cache().purge()
    if state.as_json:
        emit_json({"removed": removed})
    else:
        click.echo(f"removed {removed} cached repl{'y' if removed == 1 else 'ies'}")
    return 0
