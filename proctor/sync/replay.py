"""Replaying local proctor commits on the remote's tip.

Each proctor commit is one action's self-contained edit, with its audit trailers
(``Proctor-Action``, ``Proctor-Actor``, ``Proctor-Correlation-Id``...). When the remote
moved, each local commit is applied again, oldest first, **as the same action** on the
new base, through the action engine: the submission criteria, the code checks and the
policy are those of the new base's committed configuration, and the new commit carries
the same actor and correlation id. What it edits is what the original commit edited,
and the store's rule for a lost race decides, file by file:

* the remote left the file as the commit found it: the commit's version is written;
* the remote already holds the commit's version: nothing to write for it;
* ``proposals/<id>.json`` changed on both sides: the higher ``version`` wins if it
  descends from the other (the other side's content is in its history), else conflict;
* anything else changed on both sides: a conflict, and nothing of the sync is published.

The replayed commits are built on a private ref (``refs/proctor/sync/<branch>``); the
store branch moves only once every one of them applied, so a replay that no longer
applies leaves nothing half-done.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proctor.core.config import ProctorConfig, parse_config_text
from proctor.core.errors import EXIT_CONFLICT, ProctorError
from proctor.core.governance import Decision
from proctor.engine.actions import ActionContext, ActionType
from proctor.store.gitstore import MODE_EXEC, MODE_FILE, MODE_TREE, Change, GitStore, short
from proctor.sync.model import Conflict

if TYPE_CHECKING:
    from pydantic import BaseModel

    from proctor.core.plugins import PluginManager
    from proctor.engine.pipeline import ActionEngine, ProposalHandler

    # What gives an engine its proposal handler (the governance layer's ProposalService).
    ProposalsFor = Callable[[ActionEngine], ProposalHandler]

__all__ = ["Recorded", "ReplayConflict", "Replayer", "config_at", "read_commit"]

PROPOSALS = "proposals/"


class ReplayConflict(ProctorError):
    """A local commit or release that no longer applies on the remote's tip (exit 3)."""

    exit_code = EXIT_CONFLICT

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(conflict.message)
        self.conflict = conflict


@dataclass
class Recorded:
    """A commit as written: its parent, author line, message without the trailer
    block, and the trailers."""

    sha: str
    parents: list[str]
    author: str
    body: str
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.body.split("\n", 1)[0]

    @property
    def action(self) -> str | None:
        return self.trailers.get("Proctor-Action")


def split_trailers(message: str) -> tuple[str, dict[str, str]]:
    """(the message without its last paragraph of ``Key: value`` lines, those trailers)."""
    text = message.rstrip("\n")
    head, sep, last = text.rpartition("\n\n")
    lines = last.split("\n")
    trailers: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.partition(": ")
        if not colon or not key or " " in key:
            return text, {}
        trailers[key] = value
    return (head if sep else ""), trailers


def read_commit(store: GitStore, sha: str) -> Recorded:
    """Parse a commit object's headers and message."""
    kind, data = store.read_object(sha)
    if kind != "commit":
        raise ValueError(f"{sha} is a {kind}")
    header, _, message = data.decode("utf-8", "surrogateescape").partition("\n\n")
    parents: list[str] = []
    author = ""
    for line in header.split("\n"):
        if line.startswith("parent "):
            parents.append(line[7:])
        elif line.startswith("author "):
            author = line[7:]
    body, trailers = split_trailers(message)
    return Recorded(sha, parents, author, body, trailers)


def read_tag(store: GitStore, sha: str) -> tuple[str, str, dict[str, str]]:
    """(tagger line, message without its trailers, trailers) of an annotated tag."""
    _kind, data = store.read_object(sha)
    header, _, message = data.decode("utf-8", "surrogateescape").partition("\n\n")
    tagger = next((ln[7:] for ln in header.split("\n") if ln.startswith("tagger ")), "")
    body, trailers = split_trailers(message)
    return tagger, body, trailers


def config_at(store: GitStore, commit: str | None) -> ProctorConfig:
    """The committed configuration at ``commit``: policy and checks of that base."""
    if commit is None:
        return ProctorConfig()
    tree = store.commit_tree(commit)
    for filename in ("proctor.toml", "pyproject.toml"):
        data = store.read_blob(tree, filename)
        if data is not None:
            cfg = parse_config_text(data.decode("utf-8"), filename)
            if cfg is not None:
                return cfg
    return ProctorConfig()


def recorded_params(
    action_type: type[ActionType], edits: dict[str, bytes | None], rec: Recorded
) -> Any:
    """The action's params as far as the commit shows them (for the criteria and for
    policy plugins that read params): the procedure's name from the paths, its code
    and metadata from the files written, a rollback's release from its subject. The
    flag says whether they validate (else the criteria, which read params, are skipped:
    the commit does not show them all)."""
    names = {p.split("/")[1] for p in edits if p.startswith("procedures/") and p.count("/") >= 2}
    data: dict[str, Any] = {}
    if len(names) == 1:
        name = names.pop()
        data["name"] = name
        code = edits.get(f"procedures/{name}/main.py")
        if code is not None:
            data["code"] = code.decode("utf-8", "replace")
        meta = edits.get(f"procedures/{name}/metadata.json")
        if meta is not None:
            try:
                data["metadata"] = json.loads(meta)
            except ValueError:
                pass
        if " to v" in rec.subject:
            data["to"] = rec.subject.rsplit(" to v", 1)[1].strip()
    fields = getattr(action_type.Params, "model_fields", {})
    data = {k: v for k, v in data.items() if k in fields}
    params_model: type[BaseModel] = action_type.Params
    try:
        return params_model.model_validate(data), True
    except Exception:  # noqa: BLE001 - any model's own validation error: no criteria then
        return params_model.model_construct(**data), False


class _ReplayAction(ActionType):
    """The original action, whose ``apply`` is the recorded edit on the new base.

    It is governed as the original would be (``governed_as``) and, beside that, as what
    the recorded edit does on the new base (``effects``: each procedure it creates,
    updates or deletes, the configuration it rewrites), whatever action the commit names:
    a trailer is text anyone can write, and what lands is the edit."""

    def __init__(
        self,
        original: ActionType,
        build: Callable[[str | None], Change],
        effects: list[tuple[type[ActionType], BaseModel]],
    ) -> None:
        self.original = original
        self._build = build
        self._effects = effects

    def apply(self, params: Any, context: ActionContext) -> Change:
        return self._build(context.require_snapshot().commit)

    def code_to_check(self, change: Change, context: ActionContext) -> list[Any]:
        return self.original.code_to_check(change, context)

    def subject(self, params: Any) -> str:
        return self.original.subject(params)

    def governed_as(
        self, params: Any, context: ActionContext
    ) -> list[tuple[type[ActionType], BaseModel]]:
        return [*self.original.governed_as(params, context), *self._effects]


class _RecordProposal(ActionType):
    """A proposal recorded (``proposal.create``): not an action one runs (policy sent
    another action to review), but a commit sync replays like one, adding the proposal
    file alone; a step of a review, so only a DENY stops it."""

    api_name = "proposal.create"
    review_step = True

    def apply(self, params: Any, context: ActionContext) -> Change:  # pragma: no cover
        raise NotImplementedError("replayed only: _ReplayAction builds the change")


def effects(
    store: GitStore,
    actions: dict[str, type[ActionType]],
    tip: str | None,
    edits: dict[str, bytes | None],
) -> list[tuple[type[ActionType], BaseModel]]:
    """The actions ``edits`` amount to on ``tip``, with their params: a procedure that
    is not there and would be is created, one that would be left with no file is
    deleted, any other one touched is updated; a configuration file written is a
    ``config.update``. Only actions registered here are asked about (a store without
    the procedure actions has no policy on them)."""
    from proctor.engine.actions import parse_params

    tip_tree = store.commit_tree(tip) if tip else None
    touched: dict[str, dict[str, bytes | None]] = {}
    out: list[tuple[type[ActionType], BaseModel]] = []
    for path, content in edits.items():
        parts = path.split("/")
        if parts[0] == "procedures" and len(parts) >= 3:
            touched.setdefault(parts[1], {})["/".join(parts[2:])] = content
        elif path in ("proctor.toml", "pyproject.toml") and "config.update" in actions:
            text = "" if content is None else content.decode("utf-8", "replace")
            config = actions["config.update"]
            out.append((config, config.Params.model_construct(text=text)))
    for name, files in sorted(touched.items()):
        before = _files_under(store, tip_tree, f"procedures/{name}")
        after = (before - {f for f, data in files.items() if data is None}) | {
            f for f, data in files.items() if data is not None
        }
        code = files.get("main.py")
        if not before and after:
            text = (code or b"").decode("utf-8", "replace")
            kind, raw = "procedure.create", {"name": name, "code": text}
        elif before and not after:
            kind, raw = "procedure.delete", {"name": name}
        else:
            kind, raw = "procedure.update", {"name": name}
            if code is not None:
                raw["code"] = code.decode("utf-8", "replace")
        if kind in actions:
            out.append((actions[kind], parse_params(actions[kind], raw)))
    return out


def _files_under(store: GitStore, root_tree: str | None, folder: str) -> set[str]:
    """Every file below ``folder`` of a root tree, by its path inside the folder."""
    out: set[str] = set()
    pending = [("", store.tree_at(root_tree, folder))]
    while pending:
        prefix, entries = pending.pop()
        for leaf, (mode, sha) in entries.items():
            if mode == MODE_TREE:
                pending.append((f"{prefix}{leaf}/", store.read_tree(sha)))
            else:
                out.add(prefix + leaf)
    return out


class Replayer:
    """Re-applies local commits on a private ref that starts at the remote's tip."""

    def __init__(
        self,
        store: GitStore,
        scratch: str,
        plugins: PluginManager,
        merge_base: str,
        remote_tip: str,
        remote: str,
        proposals: ProposalsFor | None = None,
    ) -> None:
        self.store = store
        self.scratch = scratch
        self.plugins = plugins
        self.proposals = proposals
        self.merge_base = merge_base
        self.remote_tip = remote_tip
        self.remote = remote
        self.notes: list[str] = []

    # -- one commit ------------------------------------------------------------------------

    def replay(self, sha: str) -> str | None:
        """Apply local commit ``sha`` on the scratch ref; the new commit, or None when the
        remote already holds all of its change. ReplayConflict when it no longer applies."""
        from proctor.engine.pipeline import ActionEngine, Plan

        store = self.store
        rec = read_commit(store, sha)
        if len(rec.parents) != 1:
            raise ReplayConflict(
                Conflict(
                    "commit",
                    f"local commit {short(sha)} is a merge; sync replays single proctor "
                    f"commits: rebase it onto {self.remote}'s tip with git, then sync again",
                    commit=sha,
                )
            )
        api_name = rec.action
        if not api_name:
            raise ReplayConflict(
                Conflict(
                    "commit",
                    f"local commit {short(sha)} ({rec.subject!r}) was not made by proctor; "
                    f"sync replays only proctor's own commits: rebase it onto "
                    f"refs/proctor/remotes/{self.remote}/... with git, then sync again",
                    commit=sha,
                )
            )
        parent = rec.parents[0]
        tip = store.read_ref(self.scratch)
        config = config_at(store, tip)
        engine = ActionEngine(store, self.scratch, self.plugins, config, rec.author)
        if self.proposals is not None:
            engine.proposals = self.proposals(engine)
        actions = engine.actions()
        if api_name == _RecordProposal.api_name and "proposal.approve" in actions:
            actions = {**actions, api_name: _RecordProposal}
        if api_name not in actions:
            raise ReplayConflict(
                Conflict(
                    "commit",
                    f"local commit {short(sha)} was made by action {api_name!r}, which is "
                    "not registered here (a plugin missing?); nothing was synced",
                    commit=sha,
                )
            )
        action_type = actions[api_name]
        diff = store.tree_diff(parent, sha)
        edits_all = {p: (None if s is None else store.read_object(s)[1]) for p, _m, s in diff}
        modes_all = {p: m for p, m, _s in diff if m is not None}
        if action_type is _RecordProposal and set(edits_all) != {
            f"{PROPOSALS}{rec.trailers.get('Proctor-Proposal', '')}.json"
        }:
            raise ReplayConflict(
                Conflict(
                    "commit",
                    f"local commit {short(sha)} says it records proposal "
                    f"{rec.trailers.get('Proctor-Proposal', '?')} but changes other files; "
                    "rebase it with git",
                    commit=sha,
                )
            )
        for path, mode in modes_all.items():
            if mode not in (MODE_FILE, MODE_EXEC):
                raise ReplayConflict(
                    Conflict(
                        "commit",
                        f"local commit {short(sha)} writes {path} as mode {mode}, which a "
                        "replay cannot write; rebase it with git",
                        commit=sha,
                        path=path,
                    )
                )

        def build(base: str | None) -> Change:
            edits, modes = self._three_way(rec, parent, base, edits_all, modes_all)
            return Change(edits=edits, modes=modes, message=rec.body or rec.subject)

        preview, _modes = self._three_way(rec, parent, tip, edits_all, modes_all)
        if not preview:
            return None  # everything it changed is already so on the remote
        params, complete = recorded_params(action_type, edits_all, rec)
        context = ActionContext(
            actor=rec.trailers.get("Proctor-Actor", "anonymous"),
            correlation_id=rec.trailers.get("Proctor-Correlation-Id", "") or rec.sha,
            config=config,
            proposal=rec.trailers.get("Proctor-Proposal"),
        )
        from proctor.store.gitstore import Snapshot

        context.snapshot = Snapshot(store, tip)
        try:
            action = _ReplayAction(action_type(), build, effects(store, actions, tip, preview))
            plan = Plan(api_name, action_type, action, params, context, tip)
            if complete:
                engine.criteria(plan)
            verdict = engine.decide(plan)
            decision = verdict.decision
            why = ""
            if decision is Decision.REQUIRE_PROPOSAL and context.proposal:
                # Applied through a proposal: taken if the proposal, as the commit left
                # it, shows the approvals the policy here asks for.
                missing = (
                    engine.proposals.applied_as_required(
                        Snapshot(store, sha), context.proposal, verdict
                    )
                    if engine.proposals is not None
                    else "proposals are not enabled here"
                )
                if missing is None:
                    decision = Decision.ALLOW_IMMEDIATE
                else:
                    why = f" ({missing})"
            if decision is not Decision.ALLOW_IMMEDIATE:
                what = verdict.as_action or api_name
                raise ReplayConflict(
                    Conflict(
                        "policy",
                        f"local commit {short(sha)} ({rec.subject}): the policy on "
                        f"{self.remote}'s tip answers {decision.value} for {what}{why}; "
                        "nothing was synced",
                        commit=sha,
                    )
                )
            publication = engine.publish(plan, verdict)
        except ReplayConflict:
            raise
        except ProctorError as exc:
            if exc.exit_code not in (2, 3):
                raise
            raise ReplayConflict(
                Conflict(
                    "commit",
                    f"local commit {short(sha)} ({rec.subject}) no longer applies on "
                    f"{self.remote}'s tip: {exc.message}; nothing was synced",
                    commit=sha,
                )
            ) from None
        return publication.commit

    # -- the per-file rule -----------------------------------------------------------------

    def _three_way(
        self,
        rec: Recorded,
        parent: str,
        base: str | None,
        edits: dict[str, bytes | None],
        modes: dict[str, str],
    ) -> tuple[dict[str, bytes | None], dict[str, str]]:
        store = self.store
        parent_tree = store.commit_tree(parent)
        own_tree = store.commit_tree(rec.sha)
        base_tree = store.commit_tree(base) if base else None
        out: dict[str, bytes | None] = {}
        out_modes: dict[str, str] = {}
        for path, content in edits.items():
            before = store.entry_at(parent_tree, path)
            mine = store.entry_at(own_tree, path)
            theirs = store.entry_at(base_tree, path)
            if theirs == mine:
                continue  # already so
            if theirs != before:
                if not self._proposal_wins(rec, path, mine, theirs):
                    continue
            out[path] = content
            if path in modes:
                out_modes[path] = modes[path]
        return out, out_modes

    def _proposal_wins(
        self,
        rec: Recorded,
        path: str,
        mine: tuple[str, str] | None,
        theirs: tuple[str, str] | None,
    ) -> bool:
        """Both sides changed ``path``: True to write ours, False to keep theirs, else
        ReplayConflict. Only proposal files are settled, by their ``version``."""
        conflict = Conflict(
            "commit",
            f"local commit {short(rec.sha)} ({rec.subject}) changes {path}, which "
            f"{self.remote} changed too; nothing was synced. Keep theirs: "
            f"`git reset --keep refs/proctor/remotes/{self.remote}/...` and do the change "
            "again; or merge by hand with git",
            commit=rec.sha,
            path=path,
        )
        if not (path.startswith(PROPOSALS) and path.endswith(".json")) or not mine or not theirs:
            raise ReplayConflict(conflict)
        store = self.store
        ours_v = _version(store.read_object(mine[1])[1])
        theirs_v = _version(store.read_object(theirs[1])[1])
        pid = path[len(PROPOSALS) : -len(".json")]
        if ours_v is not None and theirs_v is not None:
            if theirs_v > ours_v and mine[1] in self._path_blobs(self.remote_tip, path):
                self.notes.append(f"proposal {pid}: kept {self.remote}'s version {theirs_v}")
                return False
            if ours_v > theirs_v and theirs[1] in self._path_blobs(rec.sha, path):
                return True
        raise ReplayConflict(
            Conflict(
                "proposal",
                f"proposal {pid} changed on both sides (here version {ours_v}, on "
                f"{self.remote} version {theirs_v}) and neither descends from the other: "
                f"the local change (commit {short(rec.sha)}, {rec.subject}) is stale; "
                "re-read the proposal after taking the remote's and act on it again",
                commit=rec.sha,
                path=path,
            )
        )

    def _path_blobs(self, tip: str, path: str) -> set[str]:
        """Every blob ``path`` held in the commits from the merge base up to ``tip``."""
        store = self.store
        proc = store.git("log", "--format=%H", f"{self.merge_base}..{tip}", "--", path)
        out = set()
        for commit in proc.stdout.decode().split():
            entry = store.entry_at(store.commit_tree(commit), path)
            if entry is not None:
                out.add(entry[1])
        return out


def _version(data: bytes) -> int | None:
    try:
        value = json.loads(data).get("version")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None
