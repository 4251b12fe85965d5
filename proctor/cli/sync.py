"""``proctor sync``: the store branch and its releases exchanged with a git remote."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from proctor.cli.base import State, cli, emit_json

if TYPE_CHECKING:
    from proctor.sync.model import SyncResult, SyncStatus

SYNC_HELP = """Sync the store branch and its releases with REMOTE.

\b
REMOTE: a git remote's name; default: [sync] remote in proctor.toml, else
origin. Fetches into refs/proctor/remotes/REMOTE/, replays the local proctor
commits on the remote's tip when it moved (each as the same action, checked
and decided by policy again there), settles the releases (create-only: a
release that lost its version to the remote is renumbered, adopted or
withdrawn), then pushes the branch and the new tags together, never forced.
--status shows how far the branch is from the remote as last fetched,
without the network.

\b
Exit codes:
  0  synced, or already up to date
  1  git failed: the remote cannot be reached, or it refused the push
  2  bad input: an unknown remote or a bad [sync] table; nothing changed
  3  a conflict is left (a local commit no longer applies, a release was
     withdrawn, local work in the way, or the remote kept moving); a
     conflicting replay changes nothing here or on the remote
"""


@cli.command("sync", help=SYNC_HELP, short_help="Sync with a git remote (fetch, replay, push).")
@click.argument("remote", required=False)
@click.option("--status", "show_status", is_flag=True, help="Ahead/behind as last fetched.")
@click.option(
    "--attempts",
    type=click.IntRange(1, 100),
    help="Rounds before giving up while the remote keeps moving. [default: 6]",
)
@click.pass_obj
def sync_command(state: State, remote: str | None, show_status: bool, attempts: int | None) -> int:
    ws = state.workspace()
    if show_status:
        status = ws.sync_status(remote)
        if state.as_json:
            emit_json(status.to_json())
        else:
            click.echo(status_text(status))
        return 0
    result = ws.sync(remote, attempts=attempts)
    if state.as_json:
        emit_json(result.to_json())
    else:
        out, err = result_text(result)
        for line in out:
            click.echo(line)
        for line in err:
            click.echo(line, err=True)
    return result.exit_code


def status_text(status: SyncStatus) -> str:
    """One line: where the branch stands against the remote as last fetched."""
    branch = status.branch.removeprefix("refs/heads/")
    if not status.fetched_ever:
        line = f"{branch}: never fetched from {status.remote} ({status.ahead} local commit(s))"
    elif status.ahead == status.behind == 0:
        line = f"{branch}: up to date with {status.remote} (as last fetched)"
    else:
        line = (
            f"{branch}: {status.ahead} ahead, {status.behind} behind {status.remote} "
            "(as last fetched)"
        )
    if status.unpublished_tags:
        line += f"; {len(status.unpublished_tags)} release(s) not pushed"
    return line


def result_text(result: SyncResult) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) for a sync."""
    out: list[str] = []
    err: list[str] = []
    for r in result.replayed:
        what = r.new[:12] if r.new else "already there"
        out.append(f"replayed {r.old[:12]} {r.subject} -> {what}")
    for t in result.tags:
        if t.status in ("renumbered", "withdrawn", "adopted"):
            err.append(f"release {t.name} {t.status}: {t.reason}")
        elif t.status != "fetched":
            out.append(f"release {t.final} {t.status}")
    fetched = sum(1 for t in result.tags if t.status == "fetched")
    if fetched:
        out.append(f"fetched {fetched} release(s)")
    for w in result.warnings:
        err.append(f"warning: {w}")
    for c in result.conflicts:
        err.append(f"conflict ({c.kind}): {c.message}")
    tip = result.local_after[:12] if result.local_after else "(empty)"
    summary = f"{result.status}: {result.branch.removeprefix('refs/heads/')} at {tip}"
    summary += f", pushed to {result.remote}" if result.pushed else ""
    if result.retries:
        summary += f" after {result.retries} retr{'y' if result.retries == 1 else 'ies'}"
    out.append(summary)
    return out, err
