"""What the faces show of proposals: the typed results of the transitions, the listing,
and one proposal with the diff of its change and the validators' findings on it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proctor.core.errors import ProctorError, describe_error
from proctor.engine.actions import ActionContext, parse_params
from proctor.proposals.model import Proposal, content_hash
from proctor.store.gitstore import Snapshot

if TYPE_CHECKING:
    from proctor.checks.validation import Finding
    from proctor.engine.actions import ActionResult
    from proctor.engine.pipeline import ActionEngine

MAX_DIFF_BYTES = 512 * 1024


@dataclass
class ProposalOutcome:
    """A transition's result: the proposal as it now stands and the action's result
    (``result.commit`` is the commit that moved it; for the last approval, the commit
    that also applied the change)."""

    proposal: Proposal
    result: ActionResult

    @property
    def status(self) -> str:
        return self.proposal.status

    @property
    def commit(self) -> str | None:
        return self.result.commit

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "proposal": self.proposal.id,
            "proposal_status": self.proposal.status,
            "proposal_version": self.proposal.version,
            "proposal_result": self.proposal.result,
        }


@dataclass
class ProposalListing:
    """The proposals on the tip, oldest first, and the files that are not proposals."""

    proposals: list[Proposal]
    broken: dict[str, str] = field(default_factory=dict)


@dataclass
class ProposalView:
    """One proposal, with the change it would make rebuilt on its base: a unified diff,
    the validators' findings (every severity), the paths changed on the tip since its
    base (the change would fail there), and whether the rebuilt change still has the
    content hash its approvals are bound to."""

    proposal: Proposal
    diff: str = ""
    findings: list[Finding] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    hash_matches: bool = True
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal.model_dump(mode="json"),
            "approvals": len(self.proposal.approvals()),
            "diff": self.diff,
            "findings": [f.to_dict() for f in self.findings],
            "moved": self.moved,
            "hash_matches": self.hash_matches,
            "error": self.error,
        }


def describe(engine: ActionEngine, proposal: Proposal, tip: str | None) -> ProposalView:
    """Rebuild ``proposal``'s change on its base and render it; never writes."""
    from proctor.checks.runner import check_text
    from proctor.checks.settings import check_settings

    view = ProposalView(proposal)
    base = Snapshot(engine.store, proposal.base)
    try:
        action_type = engine.get(proposal.action)
        params = parse_params(action_type, proposal.params)
        context = ActionContext(actor=proposal.created_by, config=engine.config, snapshot=base)
        context.engine = engine
        action = action_type()
        change = action.apply(params, context)
    except ProctorError as exc:
        view.error = "; ".join(describe_error(exc))
        return view
    view.hash_matches = content_hash(change) == proposal.content_hash
    chunks: list[str] = []
    for path in sorted(change.edits):
        new = change.edits[path]
        old = base.read(path)
        if len(old or b"") + len(new or b"") > MAX_DIFF_BYTES:
            chunks.append(f"--- a/{path}\n+++ b/{path}\n(too large to show)\n")
            continue
        try:
            before = (old or b"").decode("utf-8").splitlines(keepends=True)
            after = (new or b"").decode("utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            chunks.append(f"Binary file {path} differs\n")
            continue
        lines = difflib.unified_diff(
            before,
            after,
            fromfile="/dev/null" if old is None else f"a/{path}",
            tofile="/dev/null" if new is None else f"b/{path}",
        )
        chunks.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    for tag in change.tags:
        chunks.append(f"tag {tag.name}\n")
    view.diff = "".join(chunks)
    validators = engine.plugins.validators()
    settings = check_settings(engine.config)
    for item in action.code_to_check(change, context):
        view.findings.extend(
            check_text(
                item.path,
                item.text,
                mode="procedure",
                settings=settings,
                capabilities=item.capabilities,
                validators=validators,
            )
        )
    if tip != proposal.base:
        current = Snapshot(engine.store, tip)
        view.moved = [p for p in change.paths if base.entry(p) != current.entry(p)]
    return view
