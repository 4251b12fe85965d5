"""Release tags across machines: create-only everywhere, decided at sync time.

A release is final once it is on the remote: no sync moves or deletes a tag the remote
has. Until its first sync a local release is provisional, and the sync settles it
against the remote's releases of the same procedure:

* the remote has no tag of that name and the version is above the remote's newest
  release: it is pushed as it is, or, when the commit it names was replayed, made
  again on the replayed commit (``recreated``);
* the remote has the name, or a newer release, for **the same code** (the procedure's
  directory is the same tree): the remote's tag is taken and ours dropped (``adopted``);
* for **other code**, built on top of the remote's newest release: ours is re-tagged
  as the next free version, bumped from that release as ``--bump auto`` would bump it
  (``renumbered``, with the reason in the report and in the new tag's message);
* for other code that the remote's newest release already supersedes, or code that
  the replay changed: ours is ``withdrawn`` and reported as a conflict to release again.

Every new or renumbered release is decided again by the policy of the new base
(``procedure.release``). A tag the sync renumbers, adopts over or withdraws is kept
under ``refs/proctor/superseded/<tag>/<id>``, so nothing is lost; and a tag the remote once
had as ours and now has otherwise (moved by hand on the server) is never followed:
that is a conflict too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proctor.core.governance import Decision
from proctor.procedures.repository import (
    bump_version,
    code_path,
    format_semver,
    parse_semver,
    proc_dir,
    tag_name,
)
from proctor.store.gitstore import (
    ZERO_SHA,
    GitStore,
    Snapshot,
    add_trailers,
    format_ident,
    short,
)
from proctor.sync.model import Conflict, TagOutcome
from proctor.sync.remote import tag_ref
from proctor.sync.replay import config_at, read_tag

if TYPE_CHECKING:
    from proctor.core.plugins import PluginManager
    from proctor.sync.replay import ProposalsFor

__all__ = ["TagPlan", "plan_tags"]

SUPERSEDED = "refs/proctor/superseded/"


@dataclass
class TagPlan:
    """The ref updates that go with the branch move, the tags to push, and what
    became of each release."""

    updates: list[tuple[str, str, str | None]] = field(default_factory=list)
    push: list[str] = field(default_factory=list)
    outcomes: list[TagOutcome] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def _parse(tag: str) -> tuple[str, tuple[int, int, int]] | None:
    parts = tag.split("/")
    if len(parts) != 3 or parts[0] != "procedures":
        return None
    version = parse_semver(parts[2])
    return (parts[1], version) if version is not None and parts[2].startswith("v") else None


@dataclass
class _Latest:
    version: tuple[int, int, int]
    commit: str


class _Planner:
    def __init__(
        self,
        store: GitStore,
        remote: str,
        plugins: PluginManager,
        tip: str | None,
        mapping: dict[str, str],
        proposals: ProposalsFor | None = None,
    ) -> None:
        self.store = store
        self.remote = remote
        self.plugins = plugins
        self.proposals = proposals
        self.tip = tip
        self.mapping = mapping
        self.plan = TagPlan()
        self.latest: dict[str, _Latest] = {}
        self.taken: set[str] = set()
        self._engine: object | None = None

    # -- helpers -------------------------------------------------------------------------

    def tree(self, commit: str, name: str) -> tuple[str, str] | None:
        return self.store.entry_at(self.store.commit_tree(commit), proc_dir(name))

    def is_ancestor(self, a: str, b: str | None) -> bool:
        if b is None:
            return False
        if a == b:
            return True
        proc = self.store.git("merge-base", "--is-ancestor", a, b, check=False)
        return proc.returncode == 0

    def target(self, commit: str, name: str) -> tuple[str, bool] | None:
        """Where a release of ``commit`` points on the new branch: (commit, replayed?).
        None when the commit is not on the branch's history (a tag that is not ours)."""
        if commit in self.mapping:
            proc = self.store.git(
                "log", "-1", "--format=%H", self.mapping[commit], "--", proc_dir(name) + "/"
            )
            new = proc.stdout.decode().strip()
            return (new or self.mapping[commit]), True
        if self.is_ancestor(commit, self.tip):
            return commit, False
        return None

    def supersede(self, tag: str, obj: str, remote_obj: str | None) -> None:
        """Take our tag out of ``refs/tags`` (the remote's in its place, if it has the
        name), keeping it under ``refs/proctor/superseded``."""
        keep = f"{SUPERSEDED}{tag}/{obj[:12]}"
        if self.store.read_ref(keep) is None:
            self.plan.updates.append((keep, obj, None))
        self.plan.updates.append(("refs/tags/" + tag, remote_obj or ZERO_SHA, obj))

    def policy(
        self, name: str, version: tuple[int, int, int], trailers: dict[str, str]
    ) -> str | None:
        """None when the new base's policy allows this release, else its answer."""
        from proctor.engine.actions import ActionContext
        from proctor.engine.pipeline import ActionEngine, Plan

        engine = ActionEngine(
            self.store,
            "refs/proctor/sync/policy",
            self.plugins,
            config_at(self.store, self.tip),
            "",
        )
        actions = engine.actions()
        release = actions.get("procedure.release")
        if release is None:
            return None
        params = release.Params.model_validate({"name": name, "version": format_semver(version)})
        context = ActionContext(
            actor=trailers.get("Proctor-Actor", "anonymous"),
            correlation_id=trailers.get("Proctor-Correlation-Id", ""),
            config=engine.config,
            proposal=trailers.get("Proctor-Proposal"),
        )
        plan = Plan("procedure.release", release, release(), params, context, self.tip)
        verdict = engine.decide(plan)
        decision = verdict.decision
        if decision is Decision.REQUIRE_PROPOSAL and context.proposal and self.tip:
            # Released through a proposal: taken if the proposal, as the new tip holds
            # it, shows the approvals the policy there asks for.
            if self.proposals is None:
                return f"{decision.value} (proposals are not enabled here)"
            missing = self.proposals(engine).applied_as_required(
                Snapshot(self.store, self.tip), context.proposal, verdict
            )
            return None if missing is None else f"{decision.value} ({missing})"
        return None if decision is Decision.ALLOW_IMMEDIATE else decision.value

    def make_tag(
        self, old_obj: str, target: str, new_name: str, note: str | None
    ) -> tuple[str, dict[str, str]]:
        tagger, body, trailers = read_tag(self.store, old_obj)
        if note:
            body = f"{body.rstrip()}\n\n{note}"
        if not tagger:
            tagger = format_ident("proctor", "proctor@localhost")
        message = add_trailers(body, trailers)
        return self.store.write_tag(target, new_name, tagger, message), trailers

    def withdraw(self, tag: str, obj: str, remote_obj: str | None, why: str) -> None:
        self.supersede(tag, obj, remote_obj)
        self.plan.outcomes.append(TagOutcome(tag, "withdrawn", None, why))
        self.plan.conflicts.append(
            Conflict(
                "release",
                f"release {tag} withdrawn: {why}; the tag is kept as "
                f"{SUPERSEDED}{tag}/{obj[:12]}; release again after the sync if you want it",
                tag=tag,
            )
        )

    # -- the decision ----------------------------------------------------------------------

    def run(
        self,
        local: dict[str, tuple[str, str]],
        remote: dict[str, tuple[str, str]],
        seen: dict[str, tuple[str, str]],
    ) -> TagPlan:
        for tag, (obj, commit) in remote.items():
            parsed = _parse(tag)
            self.taken.add(tag)
            if parsed is not None:
                name, version = parsed
                latest = self.latest.get(name)
                if latest is None or version > latest.version:
                    self.latest[name] = _Latest(version, commit)
            if tag not in local:
                self.plan.updates.append(("refs/tags/" + tag, obj, None))
                self.plan.outcomes.append(TagOutcome(tag, "fetched", tag))
        ordered = []
        for tag, (obj, commit) in local.items():
            parsed = _parse(tag)
            if parsed is not None and remote.get(tag, ("", ""))[0] != obj:
                ordered.append((parsed[0], parsed[1], tag, obj, commit))
        for name, version, tag, obj, commit in sorted(ordered):
            remote_obj = remote[tag][0] if tag in remote else None
            if remote_obj is not None and seen.get(tag, ("", ""))[0] == obj:
                self.plan.conflicts.append(
                    Conflict(
                        "release",
                        f"{self.remote} has {tag} as {short(remote_obj)}, but it was "
                        f"{short(obj)} when it was last fetched: releases are never moved, "
                        "so the tag was changed on the server by hand; it is left as it is "
                        "here, sort it out on the server",
                        tag=tag,
                    )
                )
                # Keep remembering the value it was published with, so every later sync
                # sees the same move (and never takes it for a race this clone lost).
                self.plan.updates.append((tag_ref(self.remote, tag), obj, remote_obj))
                continue
            self.settle(name, version, tag, obj, commit, remote_obj)
        return self.plan

    def settle(
        self,
        name: str,
        version: tuple[int, int, int],
        tag: str,
        obj: str,
        commit: str,
        remote_obj: str | None,
    ) -> None:
        found = self.target(commit, name)
        if found is None:
            return  # not on the branch's history: not a release of this store to sync
        target, moved = found
        released = self.tree(commit, name)
        if moved and self.tree(target, name) != released:
            self.withdraw(
                tag,
                obj,
                remote_obj,
                f"the code it released changed when it was replayed on {self.remote}'s tip",
            )
            return
        latest = self.latest.get(name)
        if remote_obj is None and (latest is None or version > latest.version):
            if moved:
                _tagger, _body, trailers = read_tag(self.store, obj)
                denied = self.policy(name, version, trailers)
                if denied:
                    self.withdraw(
                        tag, obj, None, f"the policy on {self.remote}'s tip answers {denied}"
                    )
                    return
                # The same release, message and tagger on the commit that replaced its
                # own: nothing of it is lost, so the provisional tag is not kept.
                new_obj, _ = self.make_tag(obj, target, tag, None)
                self.plan.updates.append(("refs/tags/" + tag, new_obj, obj))
                self.plan.outcomes.append(
                    TagOutcome(tag, "recreated", tag, f"on the replayed commit {short(target)}")
                )
            else:
                self.plan.outcomes.append(TagOutcome(tag, "pushed", tag))
            self.plan.push.append(tag)
            self.taken.add(tag)
            self.latest[name] = _Latest(version, target)
            return
        assert latest is not None
        label = format_semver(version)
        remote_tree = self.tree(self.store.tag_target(remote_obj), name) if remote_obj else None
        if remote_obj is not None and remote_tree == released:
            self.supersede(tag, obj, remote_obj)
            self.plan.outcomes.append(
                TagOutcome(tag, "adopted", tag, f"{self.remote} released the same code as {label}")
            )
            return
        if self.tree(latest.commit, name) == released:
            self.supersede(tag, obj, remote_obj)
            final = tag_name(name, latest.version)
            self.plan.outcomes.append(
                TagOutcome(
                    tag,
                    "adopted",
                    final,
                    f"the same code is released as {format_semver(latest.version)}",
                )
            )
            return
        why = (
            f"{self.remote} has {name} {label} from other code"
            if remote_obj is not None
            else f"{self.remote} has a newer release of {name}, {format_semver(latest.version)}"
        )
        if not self.is_ancestor(latest.commit, target):
            self.withdraw(
                tag,
                obj,
                remote_obj,
                f"{why}, made from code newer than this release's",
            )
            return
        new_version = bump_version(latest.version, self._bump(latest.commit, target, name))
        while tag_name(name, new_version) in self.taken:
            new_version = bump_version(new_version, "patch")
        new_tag = tag_name(name, new_version)
        new_label = format_semver(new_version)
        _tagger, _body, trailers = read_tag(self.store, obj)
        denied = self.policy(name, new_version, trailers)
        if denied:
            self.withdraw(
                tag, obj, remote_obj, f"{why}; and the policy answers {denied} for {new_label}"
            )
            return
        note = f"Renumbered from {label} at sync: {why}, so this release is {new_label}."
        new_obj, _ = self.make_tag(obj, target, new_tag, note)
        self.supersede(tag, obj, remote_obj)
        self.plan.updates.append(("refs/tags/" + new_tag, new_obj, None))
        self.plan.push.append(new_tag)
        self.taken.add(new_tag)
        self.latest[name] = _Latest(new_version, target)
        self.plan.outcomes.append(
            TagOutcome(tag, "renumbered", new_tag, f"{why}; released as {new_label}")
        )

    def _bump(self, old: str, new: str, name: str) -> str:
        from proctor.core.errors import ValidationFailed
        from proctor.procedures.signature import code_signature, compare

        entry = config_at(self.store, self.tip).entry_point
        texts = []
        for commit in (old, new):
            data = self.store.read_blob(self.store.commit_tree(commit), code_path(name))
            texts.append(data.decode("utf-8", "replace") if data is not None else None)
        try:
            sigs = [code_signature(t, entry) if t else None for t in texts]
        except ValidationFailed:
            return "patch"
        return compare(sigs[0], sigs[1]).bump


def plan_tags(
    store: GitStore,
    remote: str,
    plugins: PluginManager,
    tip: str | None,
    mapping: dict[str, str],
    local: dict[str, tuple[str, str]],
    remote_tags: dict[str, tuple[str, str]],
    seen: dict[str, tuple[str, str]],
    proposals: ProposalsFor | None = None,
) -> TagPlan:
    """Decide every release between here and the remote (see the module docstring).

    ``tip`` is the branch's new tip, ``mapping`` each replayed local commit's
    replacement; ``local``/``remote_tags``/``seen`` are tag name -> (tag object, commit),
    ``seen`` the remote's as fetched before this sync.
    """
    return _Planner(store, remote, plugins, tip, mapping, proposals).run(local, remote_tags, seen)
