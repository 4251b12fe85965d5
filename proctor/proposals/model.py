"""The proposal file (``proposals/<id>.json``): its model, its id, where it lives, and the
content hash approvals are bound to.

The file is plain data on the store branch, so ``git log -- proposals/<id>.json`` is its
whole history. It is read strictly: a file edited by hand into something that is not a
proposal is an error naming the file, never a proposal with defaults filled in.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from proctor.core.errors import NotFoundError, UsageError, ValidationFailed
from proctor.store.gitstore import Change, Snapshot
from proctor.store.objects import blob_sha

__all__ = [
    "DIRECTORY",
    "STATUSES",
    "Proposal",
    "ProposalStatus",
    "Review",
    "check_id",
    "content_hash",
    "dump",
    "load",
    "load_all",
    "new_id",
    "now",
    "path_of",
]

DIRECTORY = "proposals"
ProposalStatus = Literal["pending", "approved", "applied", "rejected", "withdrawn", "failed"]
STATUSES: tuple[str, ...] = ("pending", "approved", "applied", "rejected", "withdrawn", "failed")
# Time first, so ids sort by creation; a random tail, so two made in the same
# microsecond on two machines do not collide.
ID_RE = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9]{6}-[0-9a-f]{6}$")
MAX_FILE = 4 * 1024 * 1024


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    """A new proposal id: ``YYYYMMDD-HHMMSS-ffffff-<random hex>`` in UTC."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f") + "-" + secrets.token_hex(3)


def check_id(proposal_id: str) -> str:
    """``proposal_id`` if it has the shape of one, else UsageError (before git is read)."""
    if not isinstance(proposal_id, str) or not ID_RE.match(proposal_id):
        raise UsageError(
            f"{proposal_id!r} is not a proposal id (like 20261202-101500-123456-a1b2c3); "
            "`proctor proposal list` shows them"
        )
    return proposal_id


def path_of(proposal_id: str) -> str:
    return f"{DIRECTORY}/{check_id(proposal_id)}.json"


class _Strict(BaseModel):
    # Built on first use: a write that records no proposal never builds these.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Review(_Strict):
    """One reviewer's word, bound to the content hash the reviewer saw."""

    actor: str
    decision: Literal["approve", "reject"]
    comment: str = ""
    at: str
    content_hash: str


class Proposal(_Strict):
    """A change held for review. ``version`` goes up by one with every transition.

    ``required_approvals`` approvals count only when their ``content_hash`` is the
    proposal's (an edit changes it, so earlier approvals no longer count) and each is by
    an actor in every group of ``approvers`` (a group lists principals: ``role:NAME`` or
    an actor glob; no groups: anyone but the proposer). ``result`` says how it ended:
    ``{"applied_on": <tip>}`` or ``{"error": <reason>, "tip": <tip>}``; the commit that
    applied it is the one that set ``status`` to applied (its ``Proctor-Proposal``
    trailer names the id).
    """

    id: str
    action: str
    params: dict[str, Any]
    status: ProposalStatus = "pending"
    version: int = Field(default=1, ge=1)
    created_by: str
    created_at: str
    base: str | None
    content_hash: str
    required_approvals: int = Field(default=1, ge=1)
    approvers: list[list[str]] = Field(default_factory=list)
    policy_commit: str | None = None
    policy_rule: str = ""
    reviews: list[Review] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    updated_at: str | None = None

    def approvals(self) -> list[Review]:
        """The approvals that are bound to the current content, one per actor."""
        seen: dict[str, Review] = {}
        for review in self.reviews:
            if (
                review.decision == "approve"
                and review.content_hash == self.content_hash
                and review.actor != self.created_by
            ):
                seen.setdefault(review.actor, review)
        return list(seen.values())

    def void_approvals(self) -> list[Review]:
        """Approvals given to an earlier content (before an edit): they no longer count."""
        return [
            r
            for r in self.reviews
            if r.decision == "approve" and r.content_hash != self.content_hash
        ]


def dump(proposal: Proposal) -> bytes:
    """The file's bytes: stable key order, two-space indents, a final newline."""
    return (json.dumps(proposal.model_dump(mode="json"), indent=2) + "\n").encode()


def parse(data: bytes, path: str) -> Proposal:
    """A proposal from the file's bytes; ValidationFailed naming the file otherwise."""
    if len(data) > MAX_FILE:
        raise ValidationFailed(f"{path}: {len(data)} bytes, more than a proposal can be")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    try:
        proposal = Proposal.model_validate(raw)
    except PydanticValidationError as exc:
        problems = [
            f"{'.'.join(str(x) for x in e.get('loc', ())) or 'file'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        raise ValidationFailed(
            f"{path} is not a valid proposal: " + "; ".join(problems), findings=problems
        ) from None
    if f"{DIRECTORY}/{proposal.id}.json" != path:
        raise ValidationFailed(f"{path} holds proposal {proposal.id!r}, not its own id")
    return proposal


def load(snapshot: Snapshot, proposal_id: str) -> Proposal:
    """The proposal ``proposal_id`` at ``snapshot``: UsageError for a malformed id,
    NotFoundError when there is none, ValidationFailed for a broken file."""
    path = path_of(proposal_id)
    data = snapshot.read(path)
    if data is None:
        raise NotFoundError(f"no proposal {proposal_id}")
    return parse(data, path)


def load_all(snapshot: Snapshot) -> tuple[list[Proposal], dict[str, str]]:
    """Every proposal at ``snapshot`` by id (so by time), and the files that are broken
    (file name -> error) so a listing can say so without failing on them."""
    proposals: list[Proposal] = []
    broken: dict[str, str] = {}
    for name in sorted(snapshot.listdir(DIRECTORY)):
        if not name.endswith(".json"):
            continue
        path = f"{DIRECTORY}/{name}"
        try:
            proposals.append(parse(snapshot.read(path) or b"", path))
        except ValidationFailed as exc:
            broken[path] = exc.message
    return proposals, broken


def content_hash(change: Change) -> str:
    """What approvals are bound to: every path the change writes (its blob id and mode)
    or deletes, and the tags it creates, each with its target, message and trailers (a
    release's notes are part of what was reviewed). Equal hashes, equal effect on the
    store."""
    h = hashlib.sha256()
    for path in sorted(change.edits):
        data = change.edits[path]
        mode = change.modes.get(path) or ("100755" if path in change.executable else "")
        blob = "-" if data is None else blob_sha(data)
        h.update(f"{path}\0{blob}\0{mode}\n".encode())
    for tag in sorted(change.tags, key=lambda t: t.name):
        h.update(f"tag\0{tag.name}\0{tag.target or ''}\0".encode())
        h.update(hashlib.sha256(tag.message.encode("utf-8", "surrogateescape")).digest())
        for key, value in tag.trailers:
            h.update(f"\0{key}\0{value}".encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
