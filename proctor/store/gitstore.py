"""The store's facade: ``GitStore``, and the write loop that publishes by compare-and-swap.

Why not GitPython for writes: it has no compare-and-swap on refs, its ``index.commit``
loses updates under concurrency, and it spawns one process per object written. Here:

* objects are written as loose objects in-process (zlib + sha1, atomically renamed into
  place), never through the user's index or work tree (``objects``, ``odb``);
* reads go through one long-lived ``git cat-file --batch`` process and an in-memory cache
  of (immutable) tree objects, so a store with 10,000 procedures is not re-parsed on every
  write (``catfile``, ``odb``);
* a ref moves only by ``git update-ref --stdin`` with the expected old value, so a commit
  and its release tag move together or not at all (``refs``);
* proctor's writers to one ref queue on a lock file (flock), so compare-and-swap only
  arbitrates against other git writers (``locks``); when the store branch is checked out
  git's own ``index.lock`` is held from the check for uncommitted work until after the
  ref moved, and the work tree and index are brought up to date *before* it moves, so a
  plain ``git commit`` (which reads HEAD and the index before it locks) fails and never
  reverts proctor's commit, and ``git status`` stays clean (``indexlock``, ``staging``);
* commit headers hold git's identity, validated as git validates it, and trailers one
  printable line each (``identity``);
* every error raised means nothing was written: a lost compare-and-swap or a failure
  on the way puts the work tree and index back, and a write killed on the way is
  finished (the ref moved) or rolled back (it did not) by the next operation from its
  journal (``journal``, ``worktree.recover``); a result means the refs moved, and its
  warnings say what did not go as it should around the write.

This module ties those together; the names it re-exports are kept for code that imports
them from here (``proctor.store`` is the place to import them from).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from proctor.core.errors import ConcurrencyError, DirtyWorkTreeError, StoreError, UsageError
from proctor.store import convert, fs, journal, locks, refs, staging, worktree
from proctor.store.catfile import CatFile
from proctor.store.change import Change, TagSpec, WriteResult
from proctor.store.checkout import Checkout, Worktrees
from proctor.store.errors import (
    WORK_TREE_BACK,
    IdentityError,
    IndexLockedError,
    JournalError,
    MissingWorkTreeError,
    OperationInProgressError,
    TrailerError,
    UnsafePathError,
)
from proctor.store.git import discover, git_env
from proctor.store.identity import check_trailer, resolve_identity, validate_identity
from proctor.store.indexlock import IndexLock
from proctor.store.locks import state_dir, writer_lock
from proctor.store.objects import (
    LARGE_TREE,
    MODE_EXEC,
    MODE_FILE,
    MODE_TREE,
    ZERO_SHA,
    Entry,
    Tree,
    add_trailers,
    blob_sha,
    check_ref_name,
    check_sha,
    format_ident,
    parse_tree_raw,
    serialize_tree_raw,
    short,
    tree_sort_key,
)
from proctor.store.odb import ObjectStore
from proctor.store.refs import CasLost, RefUpdater
from proctor.store.snapshot import Snapshot
from proctor.store.worktree import Recovery, index_lookup

__all__ = [
    "LARGE_TREE",
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_TREE",
    "ZERO_SHA",
    "CatFile",
    "Change",
    "Checkout",
    "Entry",
    "GitStore",
    "IdentityError",
    "IndexLockedError",
    "JournalError",
    "OperationInProgressError",
    "Recovery",
    "Snapshot",
    "TagSpec",
    "TrailerError",
    "Tree",
    "UnsafePathError",
    "WriteResult",
    "add_trailers",
    "blob_sha",
    "check_trailer",
    "discover",
    "format_ident",
    "index_lookup",
    "parse_tree_raw",
    "serialize_tree_raw",
    "short",
    "tree_sort_key",
    "validate_identity",
]


class GitStore(ObjectStore):
    """A repository opened as a store. Close it (or use ``with``) to end its git processes."""

    # How long a write waits for another git process to release ``index.lock``.
    INDEX_LOCK_TIMEOUT = 2.0
    # ``update-ref --stdin`` processes kept alive (one per reflog message).
    MAX_UPDATERS = 4

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.worktrees = Worktrees(self.cwd, self.common_dir, self.work_tree, self.git_dir)
        self._identities: dict[str, tuple[str, str]] = {}
        self._updaters: OrderedDict[str, RefUpdater] = OrderedDict()
        self._refs: refs.LocalRefs | None = None

    def __enter__(self) -> GitStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the ``cat-file`` and ``update-ref`` processes; later use starts new ones."""
        super().close()
        while self._updaters:
            self._updaters.popitem()[1].dispose()

    # -- identity ------------------------------------------------------------------------

    def identity(self, kind: str = "author") -> tuple[str, str]:
        """git's author or committer (name, email), validated; IdentityError says the fix.

        Asked only when a write needs it (reads need no identity), then kept.
        """
        if kind not in self._identities:
            self._identities[kind] = resolve_identity(kind, self.config, self.cwd)
        return self._identities[kind]

    # -- refs ----------------------------------------------------------------------------

    def head_ref(self) -> str | None:
        """The branch HEAD points to (``refs/heads/x``), or None when HEAD is detached."""
        return refs.head_ref(self.cwd, self.git_dir)

    def read_ref(self, ref: str) -> str | None:
        """The sha a ref points at now, read from the ref files (no process spawned)."""
        return refs.read_ref(self.common_dir, ref)

    def resolve(self, rev: str) -> str:
        """Resolve any revision expression to a commit sha, or raise NotFoundError."""
        return refs.resolve(self.cwd, rev)

    def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
        """Move refs in one transaction: ``(ref, new, expected_old)``.

        ``expected_old`` None means "must not exist" (create-only, used for tags and the
        first commit of a branch). Raises CasLost when any ref is not where expected.
        A branch moved alone from one commit to another (a plain write) is moved in this
        process (``refs.LocalRefs``) where that is exactly what git would do.
        """
        if len(updates) == 1:
            ref, new, old = updates[0]
            note = locks.held_writer_lock(self.common_dir, ref)
            if note is not None and old is not None and new != ZERO_SHA:
                check_ref_name(ref)
                check_sha(new, "new value of " + ref)
                check_sha(old, "old value of " + ref)
                ident = format_ident(*self.identity("committer"))
                if self._local_refs().move(ref, new, old, reason, ident, note):
                    return
        for ref, _new, _old in updates:  # git moves these: no killed writer's lock in its way
            note = locks.held_writer_lock(self.common_dir, ref)
            if note is not None:
                self._local_refs().remove_dead_locks(ref, note)
        refs.update_refs(self.cwd, self.common_dir, updates, reason, self._updater(reason))

    def _local_refs(self) -> refs.LocalRefs:
        if self._refs is None:
            self._refs = refs.LocalRefs(
                self.common_dir, self.git_dir, self.work_tree, self.config, self.shared
            )
        return self._refs

    def _updater(self, reason: str) -> RefUpdater:
        updater = self._updaters.get(reason)
        if updater is not None and updater.alive:
            self._updaters.move_to_end(reason)
            return updater
        if updater is not None:
            updater.dispose()
        updater = RefUpdater(self.cwd, reason)
        self._updaters[reason] = updater
        while len(self._updaters) > self.MAX_UPDATERS:
            self._updaters.popitem(last=False)[1].dispose()
        return updater

    # -- work tree -----------------------------------------------------------------------

    def checkout_of(self, ref: str) -> Checkout | None:
        """The work tree that has ``ref`` checked out (or is rebasing it), read now: a
        ``git switch`` since the last write is seen. StoreError if git cannot tell."""
        return self.worktrees.find(ref)

    def checked_out_in(self, ref: str) -> str | None:
        """The path of the work tree that has ``ref`` checked out, if any (read now)."""
        checkout = self.checkout_of(ref)
        return checkout.work_tree if checkout else None

    def staged_ids(self, work_tree: str, paths: list[str]) -> dict[str, str]:
        """The blob ids the index of ``work_tree`` holds for ``paths`` (absent: not staged)."""
        return worktree.staged_ids(self, work_tree, paths)

    def recover(self, ref: str, timeout: float = 0.2) -> Recovery:
        """Finish a work-tree sync an interrupted write owes ``ref``, if any.

        The entry point for opening a store (reads included): without a journal it is one
        directory listing and one ``lstat``. A journal whose writer is still running (its
        lock is held) is left to it. The ref locks a writer killed while moving the branch
        in-process left are removed here too (``LocalRefs.remove_dead_locks``). Whatever
        stops the recovery (an unreadable journal, a foreign
        ``index.lock``) is returned as a warning, never raised, so reads go on.
        """
        pending = journal.pending(self.common_dir)
        # A writer killed as it moved the branch in-process left the branch's lock.
        locked = os.path.lexists(os.path.join(self.common_dir, ref + ".lock"))
        if not pending and not locked:
            return Recovery()
        with writer_lock(self.common_dir, ref, wait=False) as got:
            if not got:
                return Recovery()
            try:
                note = locks.held_writer_lock(self.common_dir, ref)
                if locked and note is not None:
                    self._local_refs().remove_dead_locks(ref, note)
                return worktree.recover(self, ref, timeout) if pending else Recovery()
            except (StoreError, IndexLockedError, OSError) as exc:
                return Recovery(warnings=[str(exc)])

    # -- the write loop ------------------------------------------------------------------

    def write(
        self,
        ref: str,
        build: Callable[[str | None], Change],
        *,
        author: str | None = None,
        committer: str | None = None,
        trailers: Mapping[str, str] | None = None,
        max_attempts: int = 8,
        reason: str = "proctor",
    ) -> WriteResult:
        """Build a change on the current tip and publish it by compare-and-swap.

        ``build(tip)`` is called with the tip commit (None for an unborn branch) and must
        return the Change; it is called again, on the new tip, after a lost race in which
        none of the touched paths changed, so the caller's submission criteria are re-run
        there. If a touched path did change, ConcurrencyError carries the expected and
        actual tips. Retries use jittered exponential backoff and are bounded.

        ``author``/``committer`` are identity lines; None (the default) means git's own
        identity at the time of the write (``identity``). Every error raised means nothing
        was written; once the refs moved the result is returned, with ``warnings`` for
        whatever did not follow.
        """
        check_ref_name(ref)
        if not reason.strip():
            raise UsageError("the reason a write gives (its reflog message) must not be empty")
        for key, value in (trailers or {}).items():
            check_trailer(key, value)
        if author is None:
            author = format_ident(*self.identity("author"))
            committer = committer or format_ident(*self.identity("committer"))
        attempt = _Attempt(self, ref, build, author, committer or author, trailers, reason)
        retries = _Retries(attempt, max_attempts)
        try:
            with writer_lock(self.common_dir, ref):
                recovery = worktree.recover(self, ref, self.INDEX_LOCK_TIMEOUT)
                _refuse_if_owed(recovery)
                attempt.base = self.read_ref(ref)
                try:
                    result = retries.run()
                finally:
                    attempt.release_held()
        except _Exhausted:
            error = ConcurrencyError(
                f"{ref} kept moving; gave up after {max_attempts} attempts",
                expected=attempt.base,
                actual=self.read_ref(ref),
            )
            error.attempts, error.backoff = attempt.count, retries.slept()
            error.exhausted = True
            raise error from None
        except ConcurrencyError as error:
            error.attempts, error.backoff = attempt.count, retries.slept()
            raise
        self._count_write()
        result = replace(result, backoff=retries.slept())
        if recovery.warnings:
            result = replace(result, warnings=[*recovery.warnings, *result.warnings])
        return result

    def _count_write(self) -> None:
        """Ask ``git gc --auto`` when git itself would: when the loose objects in the
        folder it samples (``objects/17``) exceed ``gc.auto`` / 256.

        Porcelain commands run that check after writing; proctor writes objects itself,
        so it asks the same question after each write (one directory listing; a CLI
        process writes once and exits, so a count kept in the process would never
        reach a threshold).
        """
        try:
            threshold = int(self.config.get("gc.auto", "6700").strip() or 6700)
        except ValueError:
            threshold = 6700
        if threshold <= 0:
            return
        try:
            names = os.listdir(self.objects_dir / "17")
        except OSError:
            return
        loose = sum(1 for n in names if len(n) == 38)
        if loose <= -(-threshold // 256) or (Path(self.common_dir) / "gc.pid").exists():
            return
        # Packs (detached by default, so the write returns at once); safe beside writers.
        # The write has landed: housekeeping that cannot start is not its failure.
        with contextlib.suppress(OSError):
            subprocess.run(
                ["git", "gc", "--auto", "--quiet"],
                cwd=self.cwd,
                env=git_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )

    def _ensure_unchanged(self, base: str | None, tip: str | None, paths: list[str]) -> None:
        base_tree = self.commit_tree(base) if base else None
        tip_tree = self.commit_tree(tip) if tip else None
        for path in paths:
            if self.entry_at(base_tree, path) != self.entry_at(tip_tree, path):
                raise ConcurrencyError(
                    f"{path} was changed by someone else (expected version {short(base)}, "
                    f"found {short(tip)})",
                    expected=base,
                    actual=tip,
                )

    def _objects(
        self,
        tip: str | None,
        change: Change,
        message: str,
        author: str,
        committer: str,
        cwd: str | None,
        converts: bool | None = None,
    ) -> str:
        """Write the change's blobs, trees and commit; returns the commit. ``converts``:
        whether git's line-ending conversion applies (asked here when None).

        Before any ref moves, so a failure to write (a full disk) is a StoreError saying
        nothing was written; the objects already written are unreferenced, and removed by
        the next ``git gc``.
        """
        base_tree = self.commit_tree(tip) if tip else None
        try:
            blob_ids = None
            if converts is None:
                converts = convert.applies(self, base_tree, change.paths, change.edits, cwd)
            if converts:
                blob_ids = convert.clean_blob_ids(self, change.edits, cwd or self.cwd)
            new_tree = self.apply_edits(
                base_tree, change.edits, change.executable, change.modes, blob_ids
            )
            return self.write_commit(new_tree, [tip] if tip else [], message, author, committer)
        except OSError as exc:
            raise StoreError(f"could not write the objects ({exc}); nothing was written") from None

    def _tag_updates(
        self, change: Change, commit: str | None, tagger: str, trailers: Mapping[str, str]
    ) -> tuple[list[tuple[str, str, str | None]], list[str]]:
        updates: list[tuple[str, str, str | None]] = []
        names = []
        for tag in change.tags:
            check_ref_name(tag.name, "tag")
            target = tag.target or commit
            if target is None:
                raise UsageError(f"tag {tag.name} has nothing to point at")
            tag_ref = "refs/tags/" + tag.name
            if self.read_ref(tag_ref) is not None:
                raise UsageError(f"tag {tag.name} already exists; releases are never moved")
            message = add_trailers(tag.message, {**trailers, **dict(tag.trailers)})
            tag_obj = self.write_tag(target, tag.name, tagger, message)
            updates.append((tag_ref, tag_obj, None))
            names.append(tag.name)
        return updates, names

    def _publish(self, attempt: _Attempt, tip: str | None, change: Change) -> WriteResult:
        ref, trailers = attempt.ref, _trailers(attempt, change)
        message = add_trailers(change.message, trailers)
        for tag in change.tags:
            # Refuse a bad tag message before anything.
            add_trailers(tag.message, {**trailers, **dict(tag.trailers)})
        for path in change.edits:
            fs.check_path(path)
        checkout = self.checkout_of(ref) if change.edits else None
        if checkout is None:
            commit = None
            updates: list[tuple[str, str, str | None]] = []
            if change.edits:
                commit = self._objects(
                    tip, change, message, attempt.author, attempt.committer, None
                )
                updates.append((ref, commit, tip))
            elif tip is not None:
                updates.append((ref, tip, tip))  # verify the tip the change was built on
            tag_updates, tag_names = self._tag_updates(change, commit, attempt.committer, trailers)
            updates += tag_updates
            if not updates:
                raise UsageError("nothing to write")
            self.update_refs(updates, attempt.reason)
            return WriteResult(commit, tip, tag_names, attempt.count)
        return self._publish_checked_out(attempt, tip, change, message, checkout)

    @fs.folders_kept()  # the write walks to each folder it touches once
    def _publish_checked_out(
        self,
        attempt: _Attempt,
        tip: str | None,
        change: Change,
        message: str,
        checkout: Checkout,
        target: str | None = None,
        extra: list[tuple[str, str, str | None]] | None = None,
    ) -> WriteResult:
        """Publish with the branch checked out: under ``index.lock``, check for local work,
        write the objects, then the work tree and the index (``staging``), and only then
        move the refs; a lost compare-and-swap puts the work tree and index back."""
        ref, trailers = attempt.ref, _trailers(attempt, change)
        checkout.refuse_if_busy(ref)
        fs.check_work_tree_paths(checkout.work_tree, change.paths)
        record = journal.Record(
            ref, tip, None, change.paths, checkout.work_tree, str(checkout.index)
        )
        record.admin = worktree.admin_identity(checkout.index.parent)
        inside = os.path.relpath(checkout.index, self.common_dir)
        record.index_in = None if inside.startswith("..") else inside
        journal.save(self.common_dir, record)  # first: no instant with a lock and no journal
        lock, attempt.held = attempt.held, None
        if lock is None or lock.index != checkout.index:
            if lock is not None:
                lock.release()
            try:
                lock = IndexLock.acquire(
                    checkout.index,
                    self.INDEX_LOCK_TIMEOUT,
                    ref,
                    state_dir(self.common_dir),
                    tip=tip,
                )
            except BaseException:
                journal.remove(self.common_dir, ref)
                raise
        touched = False
        try:
            # A git commit in the work tree since the build moved the ref and the files
            # together: lose the race here rather than call its files uncommitted.
            if self.read_ref(ref) != tip:
                raise CasLost(ref)
            index_data = worktree.read_index(self, checkout)
            local_ids = None
            base_tree = self.commit_tree(tip) if tip else None
            converts = convert.applies(
                self, base_tree, change.paths, change.edits, checkout.work_tree
            )
            if converts:
                local_ids = convert.staged_ids_of(checkout.work_tree)
            dirty = worktree.dirty_paths(self, checkout, tip, change, index_data, local_ids)
            if dirty:
                raise DirtyWorkTreeError(
                    "uncommitted changes in "
                    + ", ".join(dirty)
                    + "; commit or stash them first (nothing was written)"
                )
            if target is None:
                commit = self._objects(
                    tip,
                    change,
                    message,
                    attempt.author,
                    attempt.committer,
                    checkout.work_tree,
                    converts,
                )
            else:
                commit = target  # an existing commit the ref moves to (``advance``)
            updates: list[tuple[str, str, str | None]] = [(ref, commit, tip), *(extra or [])]
            tag_updates, tag_names = self._tag_updates(change, commit, attempt.committer, trailers)
            entries = worktree.staged_entries(self, checkout, change.paths, index_data)
            record.new = commit
            record.existed = {
                p: os.path.lexists(os.path.join(checkout.work_tree, p)) for p in change.paths
            }
            record.index_old = staging.trailer(index_data)
            journal.save(self.common_dir, record)
            touched = True
            record.index_new = staging.stage(
                self,
                checkout,
                self.commit_tree(commit),
                record,
                index_data,
                change.edits,
                {p for p, e in entries.items() if e.skip_worktree},
            )
            journal.save(self.common_dir, record)
            staging.publish_index(checkout)
            try:
                self.update_refs(updates + tag_updates, attempt.reason)
            except BaseException:
                if self.read_ref(ref) != commit:
                    raise
                self._finish(record, lock)  # interrupted once it had moved: it stands
                raise
        except BaseException as exc:
            if touched:
                try:
                    staging.rollback(self, record)
                except BaseException as undo:
                    lock.abandon()  # the journal stays: the next operation rolls back
                    raise StoreError(
                        f"could not write the work tree ({exc}) nor put it back ({undo}); "
                        "nothing was committed; " + worktree.repair_hint(lock.path)
                    ) from undo
            if touched and isinstance(exc, CasLost):
                # The new index was in place, so a ``git commit`` may have read it and be
                # about to take the lock: released now, that commit would write the index
                # it read (git reads before it locks) and commit files whose write was
                # just undone. Held into the next try, git fails on the lock instead, and
                # what it read matches what the next try puts in place. The journal now
                # says nothing is touched, so a kill here leaves a lock recovery removes.
                journal.save(
                    self.common_dir,
                    journal.Record(
                        ref, tip, None, change.paths, checkout.work_tree, str(checkout.index)
                    ),
                )
                attempt.held = lock
                raise
            lock.release()
            journal.remove(self.common_dir, ref)
            raise
        warnings = self._finish(record, lock)
        return WriteResult(commit, tip, tag_names, attempt.count, warnings=warnings)

    def advance(
        self,
        ref: str,
        target: str,
        expected: str | None,
        extra: list[tuple[str, str, str | None]] | None = None,
        *,
        reason: str = "proctor: sync",
    ) -> WriteResult:
        """Move ``ref`` from ``expected`` to the existing commit ``target`` (a fetched or
        replayed one), with ``extra`` ref updates in the same transaction.

        The work-tree sync of a write, for a move that makes no commit: when the branch
        is checked out, every path that differs between the two trees is checked for
        uncommitted work first (DirtyWorkTreeError, nothing written), then the work tree
        and index are brought to ``target`` under ``index.lock`` before the ref moves.
        ConcurrencyError when ``ref`` is no longer at ``expected``.
        """
        check_ref_name(ref)
        with writer_lock(self.common_dir, ref):
            recovery = worktree.recover(self, ref, self.INDEX_LOCK_TIMEOUT)
            _refuse_if_owed(recovery)
            tip = self.read_ref(ref)
            if tip != expected:
                raise ConcurrencyError(
                    f"{ref} moved during the sync (expected {short(expected)}, found {short(tip)})",
                    expected=expected,
                    actual=tip,
                )
            change = Change(message="advance")
            for path, content in self.tree_changes(tip, target).items():
                change.edits[path] = content
            attempt = _Attempt(self, ref, lambda _t: change, "", "", None, reason)
            attempt.count = 1
            checkout = self.checkout_of(ref) if change.edits else None
            try:
                if checkout is None:
                    self.update_refs([(ref, target, tip), *(extra or [])], reason)
                    result = WriteResult(target, tip, [], 1)
                else:
                    result = self._publish_checked_out(
                        attempt, tip, change, "", checkout, target, extra
                    )
            except CasLost:
                raise ConcurrencyError(
                    f"{ref} moved during the sync", expected=tip, actual=self.read_ref(ref)
                ) from None
            finally:
                attempt.release_held()
        if recovery.warnings:
            result = replace(result, warnings=[*recovery.warnings, *result.warnings])
        return result

    def tree_diff(self, old: str | None, new: str) -> list[tuple[str, str | None, str | None]]:
        """Every file that differs from commit ``old`` to commit ``new``, as
        ``(path, mode in new, blob id in new)``; mode and id are None where ``new`` has
        no file (one ``git diff-tree``; every file of ``new`` when ``old`` is None)."""
        out: list[tuple[str, str | None, str | None]] = []
        if old is None:
            proc = self.git("ls-tree", "-r", "-z", "--full-tree", new)
            for record in proc.stdout.split(b"\0"):
                if record:
                    meta, _, path = record.partition(b"\t")
                    mode, _kind, sha = meta.decode().split()[:3]
                    out.append((path.decode("utf-8", "surrogateescape"), mode, sha))
            return out
        proc = self.git("diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new)
        fields = proc.stdout.split(b"\0")
        for i in range(0, len(fields) - 1, 2):
            parts = fields[i].lstrip(b":").decode().split()
            if len(parts) < 5:
                continue
            name = fields[i + 1].decode("utf-8", "surrogateescape")
            if parts[1] == "000000":
                out.append((name, None, None))
            else:
                out.append((name, parts[1], parts[3]))
        return out

    def tree_changes(self, old: str | None, new: str) -> dict[str, bytes | None]:
        """``tree_diff`` with each file's bytes in ``new`` (None: no file there)."""
        return {
            path: None if sha is None else self.read_object(sha)[1]
            for path, _mode, sha in self.tree_diff(old, new)
        }

    def _finish(self, record: journal.Record, lock: IndexLock) -> list[str]:
        """The refs moved: drop the backups, release ``index.lock``, clear the journal.
        What fails here is a warning on the applied write, never its failure."""
        try:
            staging.finish(self, record, leftovers=False)
            lock.release()
            journal.remove(self.common_dir, record.ref)
        except OSError as exc:
            lock.abandon()
            return [
                f"committed {short(record.new)}, but cleaning up after it failed ({exc}); "
                + worktree.repair_hint(lock.path)
            ]
        return []


class _Exhausted(Exception):
    """Every attempt a write may make lost its compare-and-swap."""


class _Retries:
    """The write's attempts: bounded, with jittered exponential backoff between them.

    Most writes win their first compare-and-swap, so the first try runs on its own and
    ``tenacity`` is imported only once one is lost. The lost try is then handed to the
    retry loop as its first attempt (replayed, not re-run), so the count of attempts,
    the waits between them and the time slept are what one loop over all of them gives.
    """

    def __init__(self, attempt: _Attempt, max_attempts: int) -> None:
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.retrying: Any = None

    def run(self) -> WriteResult:
        try:
            return self.attempt()
        except CasLost as exc:
            lost = exc  # retried outside the handler: later errors do not chain onto it
        return self._retry(lost)

    def _retry(self, lost: CasLost) -> WriteResult:
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        self.retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=0.005, max=0.25),
            retry=retry_if_exception_type(CasLost),
            reraise=False,
        )
        replayed = False

        def attempt() -> WriteResult:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise lost
            return self.attempt()

        try:
            result: WriteResult = self.retrying(attempt)
        except RetryError:
            raise _Exhausted from None
        return result

    def slept(self) -> float:
        """Seconds slept between attempts (tenacity's ``idle_for``; 0 without a retry)."""
        if self.retrying is None:
            return 0.0
        return float(self.retrying.statistics.get("idle_for", 0.0) or 0.0)


def _trailers(attempt: _Attempt, change: Change) -> Mapping[str, str]:
    """The write's trailers, then the change's own (checked like the write's)."""
    if not change.trailers:
        return attempt.trailers or {}
    for key, value in change.trailers.items():
        check_trailer(key, value)
    return {**(attempt.trailers or {}), **change.trailers}


@dataclass
class _Attempt:
    """One try of a write; remembers what the previous try built on and touched."""

    store: GitStore
    ref: str
    build: Callable[[str | None], Change]
    author: str
    committer: str
    trailers: Mapping[str, str] | None
    reason: str
    base: str | None = None
    paths: list[str] | None = None
    count: int = 0
    #: ``index.lock``, kept from a try that lost its compare-and-swap after it had put
    #: its index in place (see ``_publish_checked_out``); the next try reuses it.
    held: IndexLock | None = None

    def release_held(self) -> None:
        """Give up a lock no further try will use (the journal that covers it goes too)."""
        if self.held is not None:
            self.held.release()
            self.held = None
            journal.remove(self.store.common_dir, self.ref)

    def __call__(self) -> WriteResult:
        self.count += 1
        store = self.store
        tip = store.read_ref(self.ref)
        if self.paths is not None and tip != self.base:
            store._ensure_unchanged(self.base, tip, self.paths)
        change = self.build(tip)
        self.paths, self.base = change.paths, tip
        try:
            return store._publish(self, tip, change)
        except OSError as exc:  # only raised before the refs moved
            raise StoreError(f"{exc}; nothing was written") from None


def _refuse_if_owed(recovery: Recovery) -> None:
    """Stop a write while a work tree that is not there is owed an interrupted one: its
    journal, which puts that work tree right when it is back, must not be replaced."""
    if recovery.kept_for is not None:
        raise MissingWorkTreeError(
            f"an interrupted write still owes the work tree {recovery.kept_for}, which is "
            f"not there: {WORK_TREE_BACK}, and any proctor command finishes that write "
            "(nothing was written)",
            work_tree=recovery.kept_for,
        )
