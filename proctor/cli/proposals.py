"""``proctor proposal ...``: list, show and move the changes policy holds for review.

Each transition is an action (``proposal.approve`` ...) run through the workspace; the
version the command read is the one it acts on, so a proposal someone else moved in the
meantime is a conflict (exit 3), never acted on unseen.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from proctor.cli.base import ProctorGroup, State, cli, emit_json, print_table, writes

if TYPE_CHECKING:
    from proctor.proposals.views import ProposalOutcome, ProposalView

VERSION_HELP = "Act only if the proposal is still at this version (else exit 3)."


@cli.group(cls=ProctorGroup)
def proposal() -> None:
    """Review changes that policy holds for approval (proposals/<id>.json)."""


@proposal.command("list")
@click.option("--status", help="Only proposals in this status (pending, applied, ...).")
@click.pass_obj
def proposal_list(state: State, status: str | None) -> None:
    """The proposals on the store branch, oldest first."""
    listing = state.workspace().list_proposals(status)
    if state.as_json:
        emit_json(
            {
                "proposals": [p.model_dump(mode="json") for p in listing.proposals],
                "broken": listing.broken,
            }
        )
        return
    rows = [
        [
            p.id,
            p.status,
            p.action,
            p.created_by,
            f"{len(p.approvals())}/{p.required_approvals}",
            p.version,
        ]
        for p in listing.proposals
    ]
    print_table(
        state,
        ["id", "status", "action", "proposer", "approvals", "version"],
        rows,
        title="proposals",
        fixed=(0, 1, 4, 5),
    )
    for error in listing.broken.values():
        click.echo(f"warning: {error}", err=True)


@proposal.command("show")
@click.argument("proposal_id", metavar="ID")
@click.pass_obj
def proposal_show(state: State, proposal_id: str) -> None:
    """One proposal: its state, reviews, the diff of its change and the findings on it."""
    view = state.workspace().show_proposal(proposal_id)
    if state.as_json:
        emit_json(view.to_json())
        return
    _print_view(state, view)


def _print_view(state: State, view: ProposalView) -> None:
    p = view.proposal
    click.echo(f"proposal {p.id}: {p.status} (version {p.version})")
    click.echo(f"  action:    {p.action}")
    click.echo(f"  proposer:  {p.created_by} at {p.created_at}")
    click.echo(f"  base:      {p.base or '(none)'}")
    click.echo(f"  content:   {p.content_hash}")
    click.echo(
        f"  policy:    {p.policy_rule or '-'} (read from {p.policy_commit or 'the work tree'})"
    )
    who = (
        " and ".join("one of " + ", ".join(g) for g in p.approvers)
        if p.approvers
        else "anyone but the proposer"
    )
    click.echo(f"  approvals: {len(p.approvals())} of {p.required_approvals}, by {who}")
    for r in p.reviews:
        void = "" if r.content_hash == p.content_hash else " (void: given to earlier content)"
        note = f": {r.comment}" if r.comment else ""
        click.echo(f"    {r.decision} by {r.actor} at {r.at}{void}{note}")
    if p.result:
        click.echo(f"  result:    {p.result}")
    if view.error:
        click.echo(f"  the change cannot be rebuilt: {view.error}")
        return
    if not view.hash_matches:
        click.echo("  warning: rebuilt on its base, the change no longer has this content hash")
    if view.moved:
        click.echo(f"  changed on the tip since its base: {', '.join(view.moved)}")
    click.echo("")
    _print_diff(state, view.diff)
    if view.findings:
        click.echo("findings:")
        for f in view.findings:
            click.echo(f"  {f.format_text()}")
    else:
        click.echo("findings: none")


def _print_diff(state: State, diff: str) -> None:
    """Highlighted on a terminal; plain text when piped or with --no-color."""
    if state.plain or not sys.stdout.isatty():
        click.echo(diff, nl=False)
        return
    from rich.console import Console
    from rich.syntax import Syntax

    Console().print(Syntax(diff, "diff", theme="ansi_dark", background_color="default"))


def _report(state: State, outcome: ProposalOutcome) -> int:
    p = outcome.proposal
    if outcome.result.status != "applied":  # the transition itself was denied
        if state.as_json:
            emit_json(outcome.to_json())
        else:
            click.echo(
                f"{outcome.result.action} {outcome.result.status}: "
                + "; ".join(outcome.result.errors),
                err=True,
            )
        return int(outcome.result.exit_code)
    if state.as_json:
        emit_json(outcome.to_json())
    else:
        commit = (outcome.commit or "")[:12]
        line = f"proposal {p.id}: {p.status} (version {p.version}, commit {commit})"
        if p.status == "pending":
            line += f", {len(p.approvals())} of {p.required_approvals} approval(s)"
        click.echo(line)
        if p.status == "failed" and p.result:
            click.echo(f"error: {p.result.get('error')}", err=True)
    return 1 if p.status == "failed" else 0


@writes("proposal.approve")
@proposal.command("approve")
@click.argument("proposal_id", metavar="ID")
@click.option("-m", "--message", "comment", default="", help="A comment kept with the approval.")
@click.option("--expect-version", "version", type=int, help=VERSION_HELP)
@click.pass_obj
def proposal_approve(state: State, proposal_id: str, comment: str, version: int | None) -> int:
    """Approve proposal ID; the last approval it needs applies it (exit 1 if that fails)."""
    return _report(state, state.workspace().approve(proposal_id, comment, version=version))


@writes("proposal.reject")
@proposal.command("reject")
@click.argument("proposal_id", metavar="ID")
@click.option("-m", "--message", "comment", required=True, help="Why (required).")
@click.option("--expect-version", "version", type=int, help=VERSION_HELP)
@click.pass_obj
def proposal_reject(state: State, proposal_id: str, comment: str, version: int | None) -> int:
    """Reject proposal ID, saying why."""
    return _report(state, state.workspace().reject(proposal_id, comment, version=version))


@writes("proposal.withdraw")
@proposal.command("withdraw")
@click.argument("proposal_id", metavar="ID")
@click.option("--expect-version", "version", type=int, help=VERSION_HELP)
@click.pass_obj
def proposal_withdraw(state: State, proposal_id: str, version: int | None) -> int:
    """Withdraw your own proposal ID."""
    return _report(state, state.workspace().withdraw(proposal_id, version=version))


@writes("proposal.apply")
@proposal.command("apply")
@click.argument("proposal_id", metavar="ID")
@click.option("--expect-version", "version", type=int, help=VERSION_HELP)
@click.pass_obj
def proposal_apply(state: State, proposal_id: str, version: int | None) -> int:
    """Apply proposal ID once its approvals are complete."""
    return _report(state, state.workspace().apply_proposal(proposal_id, version=version))


@writes("proposal.edit")
@proposal.command("edit")
@click.argument("proposal_id", metavar="ID")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A param of the proposed action (all of them: they replace the old ones).",
)
@click.option("-m", "--message", "comment", default="", help="What changed.")
@click.option("--expect-version", "version", type=int, help=VERSION_HELP)
@click.pass_obj
def proposal_edit(
    state: State, proposal_id: str, params: tuple[str, ...], comment: str, version: int | None
) -> int:
    """Replace the params of your proposal ID; approvals given before no longer count."""
    from proctor.cli.procedures import parse_param

    new: dict[str, Any] = dict(parse_param(p) for p in params)
    outcome = state.workspace().edit_proposal(proposal_id, new, comment, version=version)
    return _report(state, outcome)
