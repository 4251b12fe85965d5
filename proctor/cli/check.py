"""``proctor check``: the validators over files, as a linter runs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass


from proctor.cli.base import (
    State,
    cli,
)


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
    type=click.IntRange(min=1, max=256),
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
        raise_errors=state.as_json,
    )
    return int(code)


# -- runs ------------------------------------------------------------------------------------
