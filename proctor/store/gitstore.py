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
  the touched paths are checked for uncommitted work before publishing and brought up to
  date after, so ``git status`` stays clean and nothing of the user's is overwritten
  (``worktree``).

This module ties those together; the names it re-exports are kept for code that imports
them from here (``proctor.store`` is the place to import them from).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proctor.core.errors import ConcurrencyError, DirtyWorkTreeError, UsageError
from proctor.store import refs, worktree
from proctor.store.catfile import CatFile
from proctor.store.change import Change, TagSpec, WriteResult
from proctor.store.git import discover
from proctor.store.locks import writer_lock
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
    format_ident,
    parse_tree_raw,
    serialize_tree_raw,
    short,
    tree_sort_key,
)
from proctor.store.odb import ObjectStore
from proctor.store.refs import CasLost
from proctor.store.snapshot import Snapshot
from proctor.store.worktree import index_lookup

__all__ = [
    "LARGE_TREE",
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_TREE",
    "ZERO_SHA",
    "CatFile",
    "Change",
    "Entry",
    "GitStore",
    "Snapshot",
    "TagSpec",
    "Tree",
    "WriteResult",
    "add_trailers",
    "blob_sha",
    "discover",
    "format_ident",
    "index_lookup",
    "parse_tree_raw",
    "serialize_tree_raw",
    "short",
    "tree_sort_key",
]


class GitStore(ObjectStore):
    """A repository opened as a store. Close it (or use ``with``) to end its git process."""

    # Loose objects written in-process never trigger git's own ``gc --auto`` (only porcelain
    # commands do), so a store written only by proctor asks for it every this many writes.
    GC_EVERY = 500

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._checked_out: dict[str, str | None] = {}
        self._writes = 0

    def __enter__(self) -> GitStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- refs ----------------------------------------------------------------------------

    def head_ref(self) -> str | None:
        """The branch HEAD points to (``refs/heads/x``), or None when HEAD is detached."""
        return refs.head_ref(self.cwd)

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
        """
        refs.update_refs(self.cwd, self.common_dir, updates, reason)

    # -- work tree -----------------------------------------------------------------------

    def checked_out_in(self, ref: str) -> str | None:
        """The work tree that has ``ref`` checked out, if any (asked of git once per ref)."""
        if ref not in self._checked_out:
            self._checked_out[ref] = worktree.checked_out_in(self.cwd, ref)
        return self._checked_out[ref]

    def staged_ids(self, work_tree: str, paths: list[str]) -> dict[str, str]:
        """The blob ids the index of ``work_tree`` holds for ``paths`` (absent: not staged)."""
        return worktree.staged_ids(self, work_tree, paths)

    def dirty_paths(self, work_tree: str, tip: str | None, change: Change) -> list[str]:
        """Touched paths whose local state the write would lose."""
        return worktree.dirty_paths(self, work_tree, tip, change)

    def recover(self, ref: str) -> list[str]:
        """Finish an interrupted work-tree sync; returns the paths brought up to date."""
        return worktree.recover(self, ref, self.checked_out_in)

    def sync_worktree(self, work_tree: str, root_tree: str, paths: list[str]) -> None:
        """Bring ``paths`` in the work tree and index up to date with ``root_tree``."""
        worktree.sync_worktree(self, work_tree, root_tree, paths)

    # -- the write loop ------------------------------------------------------------------

    def write(
        self,
        ref: str,
        build: Callable[[str | None], Change],
        *,
        author: str,
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
        """
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        attempt = _Attempt(self, ref, build, author, committer, trailers, reason)
        retrying = Retrying(
            stop=stop_after_attempt(max_attempts),
            wait=wait_random_exponential(multiplier=0.005, max=0.25),
            retry=retry_if_exception_type(CasLost),
            reraise=False,
        )
        try:
            with writer_lock(self.common_dir, ref):
                self.recover(ref)
                attempt.base = self.read_ref(ref)
                result = retrying(attempt)
        except RetryError:
            raise ConcurrencyError(
                f"{ref} kept moving; gave up after {max_attempts} attempts",
                expected=attempt.base,
                actual=self.read_ref(ref),
            ) from None
        self._writes += 1
        if self._writes % self.GC_EVERY == 0:
            # Returns at once below git's thresholds; packing is safe beside writers.
            self.git("gc", "--auto", "--quiet", check=False)
        return result

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

    def _publish(
        self,
        ref: str,
        tip: str | None,
        change: Change,
        author: str,
        committer: str | None,
        trailers: Mapping[str, str] | None,
        reason: str,
        work_tree: str | None,
        attempts: int,
    ) -> WriteResult:
        if work_tree is not None and change.edits:
            # A git commit in the work tree since the build moved the ref and the files
            # together: lose the race here rather than call its files uncommitted.
            if self.read_ref(ref) != tip:
                raise CasLost(ref)
            dirty = self.dirty_paths(work_tree, tip, change)
            if dirty:
                raise DirtyWorkTreeError(
                    "uncommitted changes in "
                    + ", ".join(dirty)
                    + "; commit or stash them first (nothing was written)"
                )
        updates: list[tuple[str, str, str | None]] = []
        commit: str | None = None
        message = add_trailers(change.message, trailers or {})
        if change.edits:
            base_tree = self.commit_tree(tip) if tip else None
            new_tree = self.apply_edits(base_tree, change.edits, change.executable)
            commit = self.write_commit(
                new_tree, [tip] if tip else [], message, author, committer or author
            )
            updates.append((ref, commit, tip))
        elif tip is not None:
            updates.append((ref, tip, tip))  # verify the tip the change was built on
        tag_names = []
        for tag in change.tags:
            target = tag.target or commit
            if target is None:
                raise UsageError(f"tag {tag.name} has nothing to point at")
            tag_ref = "refs/tags/" + tag.name
            if self.read_ref(tag_ref) is not None:
                raise UsageError(f"tag {tag.name} already exists; releases are never moved")
            tag_obj = self.write_tag(
                target, tag.name, committer or author, add_trailers(tag.message, trailers or {})
            )
            updates.append((tag_ref, tag_obj, None))
            tag_names.append(tag.name)
        if not updates:
            raise UsageError("nothing to write")
        if work_tree is None or commit is None:
            self.update_refs(updates, reason)
        else:
            journal = worktree.write_journal(self.common_dir, ref, tip, commit, change.paths)
            try:
                self.update_refs(updates, reason)
            except BaseException:
                journal.unlink(missing_ok=True)
                raise
            self.sync_worktree(work_tree, self.commit_tree(commit), change.paths)
            journal.unlink(missing_ok=True)
        return WriteResult(commit=commit, parent=tip, tags=tag_names, attempts=attempts)


@dataclass
class _Attempt:
    """One try of a write; remembers what the previous try built on and touched."""

    store: GitStore
    ref: str
    build: Callable[[str | None], Change]
    author: str
    committer: str | None
    trailers: Mapping[str, str] | None
    reason: str
    base: str | None = None
    paths: list[str] | None = None
    count: int = 0

    def __call__(self) -> WriteResult:
        self.count += 1
        store = self.store
        tip = store.read_ref(self.ref)
        if self.paths is not None and tip != self.base:
            store._ensure_unchanged(self.base, tip, self.paths)
        change = self.build(tip)
        self.paths, self.base = change.paths, tip
        return store._publish(
            self.ref,
            tip,
            change,
            self.author,
            self.committer,
            self.trailers,
            self.reason,
            store.checked_out_in(self.ref),
            self.count,
        )
