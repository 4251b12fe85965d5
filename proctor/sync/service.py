"""One sync: fetch, replay, settle the releases, move the branch, push; again on a race.

The loop, bounded and with jittered backoff between rounds::

    fetch      the branch and the release tags into refs/proctor/remotes/<remote>/
    replay     the local commits the remote lacks, onto its tip (``replay``), on a
               private ref; the store branch has not moved yet
    tags       every release between here and there settled (``tags``)
    publish    the store branch, the tags and the fetched tags move in one ref
               transaction here, the work tree brought along (never over local work)
    push       the branch and the new tags in one atomic push, never forced

A push the server refuses because it moved meanwhile starts the next round; so does a
local write landing during the round (the branch moved under the sync). Any conflict
stops the sync before the store branch or the remote moved.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

from proctor.core.errors import ConcurrencyError, DirtyWorkTreeError, StoreError
from proctor.store.errors import MissingWorkTreeError, NameTakenError
from proctor.store.gitstore import ZERO_SHA, GitStore, short
from proctor.store.locks import writer_lock
from proctor.sync import remote as git_remote
from proctor.sync.model import (
    Conflict,
    Replayed,
    SyncEvent,
    SyncResult,
    SyncStatus,
    TagOutcome,
)
from proctor.sync.replay import ReplayConflict, Replayer, read_commit
from proctor.sync.tags import plan_tags

if TYPE_CHECKING:
    from proctor.core.plugins import PluginManager
    from proctor.sync.replay import ProposalsFor

__all__ = ["DEFAULT_ATTEMPTS", "sync", "sync_status"]

logger = logging.getLogger("proctor.sync")

DEFAULT_ATTEMPTS = 6


def _scratch(ref: str) -> str:
    return "refs/proctor/sync/" + ref.removeprefix("refs/heads/")


def _merge_base(store: GitStore, a: str, b: str) -> str | None:
    proc = store.git("merge-base", a, b, check=False)
    out = proc.stdout.decode().strip()
    return out or None


def _rev_list(store: GitStore, base: str, tip: str) -> list[str]:
    proc = store.git("rev-list", "--reverse", "--topo-order", f"{base}..{tip}")
    return proc.stdout.decode().split()


def sync_status(store: GitStore, ref: str, remote: str) -> SyncStatus:
    """Ahead/behind counts against the remote's tip as last fetched (no network), and
    the local releases the remote has not got. UsageError for an unknown remote."""
    git_remote.check_remote(store.cwd, remote)
    local = store.read_ref(ref)
    fetched = store.read_ref(git_remote.head_ref(remote, ref))
    ahead = behind = 0
    if local and fetched:
        proc = store.git("rev-list", "--left-right", "--count", f"{local}...{fetched}")
        left, right = proc.stdout.decode().split()
        ahead, behind = int(left), int(right)
    elif local:
        ahead = len(store.git("rev-list", local).stdout.split())
    elif fetched:
        behind = len(store.git("rev-list", fetched).stdout.split())
    here = git_remote.read_tags(store.cwd, "refs/tags/")
    there = git_remote.read_tags(store.cwd, f"{git_remote.PRIVATE}/{remote}/tags/")
    pending = sorted(t for t, (obj, _c) in here.items() if there.get(t, ("",))[0] != obj)
    return SyncStatus(remote, ref, local, fetched, ahead, behind, pending)


class _Round:
    """One round of the loop; ``run`` returns True when it is done, False to go again."""

    def __init__(self, sync: _Sync) -> None:
        self.s = sync
        self.replayed: list[Replayed] = []

    def run(self) -> bool:
        s = self.s
        store, ref, remote, result = s.store, s.ref, s.remote, s.result
        seen = git_remote.read_tags(store.cwd, s.tag_prefix)
        git_remote.fetch(store.cwd, remote, ref)
        remote_tip = store.read_ref(git_remote.head_ref(remote, ref))
        result.fetched = remote_tip
        local = store.read_ref(ref)
        new_tip = local
        mapping: dict[str, str] = {}
        if remote_tip is not None and local != remote_tip:
            if local is None:
                new_tip = remote_tip
            else:
                base = _merge_base(store, local, remote_tip)
                if base is None:
                    result.conflicts.append(
                        Conflict(
                            "history",
                            f"{ref} here and on {remote} share no history; sync joins only "
                            "clones of one store (clone it afresh, or merge with git)",
                        )
                    )
                    return True
                if base == local:
                    new_tip = remote_tip  # behind: a fast-forward
                elif base != remote_tip:
                    replayed = self.replay(base, local, remote_tip, mapping)
                    if replayed is None:
                        return True
                    new_tip = replayed
        local_tags = git_remote.read_tags(store.cwd, "refs/tags/")
        remote_tags = git_remote.read_tags(store.cwd, s.tag_prefix)
        plan = plan_tags(
            store, remote, s.plugins, new_tip, mapping, local_tags, remote_tags, seen, s.proposals
        )
        if plan.conflicts:
            result.conflicts.extend(plan.conflicts)
        if new_tip is not None and (new_tip != local or plan.updates):
            try:
                written = store.advance(ref, new_tip, local, plan.updates)
            except ConcurrencyError:
                logger.info("%s moved during the sync; starting the round again", ref)
                return False
            except (DirtyWorkTreeError, MissingWorkTreeError, NameTakenError) as exc:
                # local work, a file, or a work tree in the way
                result.conflicts.append(Conflict("worktree", exc.message))
                return True
            result.warnings.extend(written.warnings)
        elif new_tip is None and plan.updates:
            store.update_refs(plan.updates, "proctor: sync")
        # What this round did here stands, whatever the push does: keep it in the report.
        s.settle(self.replayed, plan.outcomes)
        result.local_after = new_tip
        return self.push(new_tip, remote_tip, plan.push)

    def replay(self, base: str, local: str, remote_tip: str, mapping: dict[str, str]) -> str | None:
        """Replay base..local onto remote_tip; the new tip, or None after a conflict."""
        s = self.s
        store = s.store
        scratch = _scratch(s.ref)
        store.update_refs([(scratch, remote_tip, store.read_ref(scratch))], "proctor: sync")
        replayer = Replayer(store, scratch, s.plugins, base, remote_tip, s.remote, s.proposals)
        done: list[Replayed] = []
        try:
            for sha in _rev_list(store, base, local):
                new = replayer.replay(sha)
                rec = read_commit(store, sha)
                done.append(Replayed(sha, new, rec.action or "", rec.subject))
                mapping[sha] = new or store.read_ref(scratch) or remote_tip
        except ReplayConflict as exc:
            s.result.conflicts.append(exc.conflict)
            return None
        finally:
            tip = store.read_ref(scratch)
            if tip is not None:
                store.update_refs([(scratch, ZERO_SHA, tip)], "proctor: sync")
        self.replayed = done
        s.result.warnings.extend(replayer.notes)
        return mapping[done[-1].old] if done else remote_tip

    def push(self, new_tip: str | None, remote_tip: str | None, tags: list[str]) -> bool:
        s = self.s
        store, ref, remote = s.store, s.ref, s.remote
        specs: list[str] = []
        if new_tip is not None and new_tip != remote_tip:
            specs.append(f"{new_tip}:{ref}")
        tag_specs = [f"refs/tags/{t}:refs/tags/{t}" for t in tags]
        if not specs and not tag_specs:
            return True
        outcome = git_remote.PushOutcome(False)
        if s.atomic:
            outcome = git_remote.push(store.cwd, remote, specs + tag_specs, atomic=True)
            if outcome.no_atomic:
                s.atomic = False
                s.result.atomic = False
                s.result.warnings.append(
                    f"{remote} does not take atomic pushes: the branch goes first, then the tags"
                )
        if not s.atomic:
            # The branch first: a tag never names a commit the remote's branch lacks.
            outcome = git_remote.PushOutcome(True)
            if specs:
                outcome = git_remote.push(store.cwd, remote, specs, atomic=False)
            if outcome.ok and tag_specs:
                outcome = git_remote.push(store.cwd, remote, tag_specs, atomic=False)
        if outcome.ok:
            s.result.pushed = True
            updates: list[tuple[str, str, str | None]] = []
            if specs and new_tip is not None:
                private = git_remote.head_ref(remote, ref)
                updates.append((private, new_tip, store.read_ref(private)))
            for t in tags:
                obj = store.read_ref("refs/tags/" + t)
                private = s.tag_prefix + t
                if obj is not None:
                    updates.append((private, obj, store.read_ref(private)))
            if updates:
                store.update_refs(updates, "proctor: sync")
            return True
        if outcome.race:
            logger.info("%s moved while pushing (%s); fetching again", remote, outcome.error)
            return False
        raise StoreError(f"git push to {remote} was refused: {outcome.error}")


class _Sync:
    def __init__(
        self,
        store: GitStore,
        ref: str,
        remote: str,
        plugins: PluginManager,
        attempts: int,
        proposals: ProposalsFor | None = None,
    ) -> None:
        self.store = store
        self.ref = ref
        self.remote = remote
        self.plugins = plugins
        self.proposals = proposals
        self.attempts = max(1, attempts)
        self.atomic = True
        self.tag_prefix = f"{git_remote.PRIVATE}/{remote}/tags/"
        self.result = SyncResult(remote, ref)
        self._tags: dict[str, TagOutcome] = {}
        self._original: dict[str, str] = {}  # a replayed commit -> the local one it replaced
        self._replayed: dict[str, Replayed] = {}

    def settle(self, replayed: list[Replayed], outcomes: list[TagOutcome]) -> None:
        """Fold a round that moved the branch into the report: a commit replayed again
        in a later round is reported once, from the local commit it started as."""
        for r in replayed:
            first = self._original.pop(r.old, r.old)
            self._replayed[first] = Replayed(first, r.new, r.action, r.subject)
            if r.new is not None:
                self._original[r.new] = first
        for t in outcomes:
            self._tags[t.name] = t
        self.result.replayed = list(self._replayed.values())
        self.result.tags = list(self._tags.values())

    def run(self) -> SyncResult:
        result = self.result
        result.local_before = result.local_after = self.store.read_ref(self.ref)
        for attempt in range(self.attempts):
            if attempt:
                result.retries += 1
                time.sleep(random.uniform(0.02, min(1.5, 0.1 * 2**attempt)))
            result.conflicts = []
            if _Round(self).run():
                return result
        result.conflicts.append(
            Conflict(
                "push",
                f"{self.remote} or {self.ref} kept moving: gave up after {self.attempts} "
                f"rounds; run the sync again (the last fetch is in "
                f"{git_remote.head_ref(self.remote, self.ref)})",
            )
        )
        return result


def sync(
    store: GitStore,
    ref: str,
    remote: str,
    plugins: PluginManager,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    actor: str = "anonymous",
    proposals: ProposalsFor | None = None,
) -> SyncResult:
    """Sync the store branch ``ref`` with ``remote`` (see the module docstring); the
    outcome is announced as a ``SyncEvent`` (``sync.<status>``) by ``actor``.
    ``proposals`` gives an engine its proposal handler (the governance layer's), which
    says whether a change applied elsewhere through a proposal has the approvals the
    remote's policy asks for; without one such a change is a conflict.

    Conflicts are in the result (exit 3), never half-applied. Raises UsageError for an
    unknown remote (nothing fetched or changed), StoreError when git cannot reach the
    remote or the server refuses for another reason than a race (exit 1).
    """
    git_remote.check_remote(store.cwd, remote)
    with writer_lock(store.common_dir, "refs/proctor/sync-lock/" + ref.removeprefix("refs/")):
        store.recover(ref)
        result = _Sync(store, ref, remote, plugins, attempts, proposals).run()
    for failure in plugins.emit(SyncEvent.of(result, actor)):
        result.warnings.append(
            f"event handler of plugin {failure.plugin!r} failed: {failure.error}"
        )
    if result.conflicts:
        logger.info("sync with %s left %d conflict(s)", remote, len(result.conflicts))
    else:
        logger.info(
            "synced %s with %s: %s, %d replayed",
            ref,
            remote,
            short(result.local_after),
            len(result.replayed),
        )
    return result
