"""Where the store branch is checked out, asked afresh before every write.

git lets a branch be checked out in at most one work tree, and that can change at any
time (``git switch``, ``git worktree add``); a long-lived store that remembered the answer
would write into another branch's work tree. The list of work trees comes from
``git worktree list`` once, and again only when ``.git/worktrees/`` changes (with no
linked work tree, opened in the main one, that one is the list: no process); which one
has the branch is read from their ``HEAD`` files on every write (no process). A failing
``git worktree list`` is an error, never "not checked out" (that would skip the check
for uncommitted work).

git names the main work tree by where its git dir is: right for ``<work tree>/.git``,
wrong for a submodule (``.git/modules/<name>``), a ``--separate-git-dir`` or a
``core.worktree`` setting, where it gives the git dir itself or the folder holding it.
Opened in the main work tree, the store takes its path from ``rev-parse`` instead;
opened in a linked one, it accepts git's path only where that folder's ``.git`` is the
repository's git dir and no ``core.worktree`` moves it elsewhere, and otherwise knows the
main work tree only by its git dir: a write to a branch checked out there is refused.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from proctor.core.errors import StoreError
from proctor.store.errors import (
    WORK_TREE_BACK,
    MissingWorkTreeError,
    OperationInProgressError,
)
from proctor.store.git import read_head, run_git, same_path

__all__ = ["Checkout", "Worktrees"]

#: Files in a work tree's git dir that mean an operation is half done, with what
#: finishes or abandons it.
_OPERATIONS = (
    ("MERGE_HEAD", "a merge", "git merge --continue", "git merge --abort"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "git cherry-pick --continue", "git cherry-pick --abort"),
    ("REVERT_HEAD", "a revert", "git revert --continue", "git revert --abort"),
    ("rebase-merge", "a rebase", "git rebase --continue", "git rebase --abort"),
    ("rebase-apply", "a rebase or am", "git rebase --continue", "git rebase --abort"),
    (
        "sequencer",
        "a cherry-pick or revert",
        "git cherry-pick --continue",
        "git cherry-pick --abort",
    ),
)


@dataclass(frozen=True)
class Checkout:
    """A work tree with the store branch checked out (or being rebased)."""

    work_tree: str
    git_dir: str  # that work tree's own git dir: its index, HEAD and MERGE_HEAD live here
    rebasing: bool = False

    @functools.cached_property
    def index(self) -> Path:
        """The work tree's index file (asked for several times a write)."""
        return Path(self.git_dir) / "index"

    def operation(self) -> tuple[str, str, str] | None:
        """(what, continue, abort) of an operation in progress, or None."""
        for name, what, cont, abort in _OPERATIONS:
            if os.path.lexists(os.path.join(self.git_dir, name)):
                return what, cont, abort
        return None

    def refuse_if_busy(self, ref: str) -> None:
        """OperationInProgressError when a merge, rebase, cherry-pick or revert is under way."""
        busy = self.operation()
        if busy is None and not self.rebasing:
            return
        what, cont, abort = busy or _OPERATIONS[3][1:]
        raise OperationInProgressError(
            f"{what} is in progress on {ref} in {self.work_tree}; finish it ({cont}) or "
            f"abort it ({abort}) first (nothing was written)"
        )


def work_tree_there(path: str) -> bool:
    """Whether a linked work tree is there: its ``.git`` file is (an unmounted volume
    leaves an empty folder, its mount point, in its place)."""
    return os.path.lexists(os.path.join(path, ".git"))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read().strip()
    except OSError:
        return None


class Worktrees:
    """The work trees of one repository, listed by git and re-listed when they change."""

    def __init__(
        self,
        cwd: str,
        common_dir: str,
        work_tree: str | None = None,
        git_dir: str | None = None,
    ) -> None:
        self.cwd = cwd
        self.common_dir = common_dir
        # The work tree the store was opened in, when that is the main one: git's
        # listing names the main work tree by its git dir's place, rev-parse by itself.
        in_main = git_dir is not None and same_path(git_dir, common_dir)
        self.main_work_tree = work_tree if in_main else None
        self._key: tuple[tuple[str, int], ...] | None = None
        self._entries: list[tuple[str, str]] = []

    def _listing_key(self) -> tuple[tuple[str, int], ...]:
        """The linked work trees' names, each with when its ``gitdir`` file (where git
        keeps its path) last changed: ``git worktree move`` rewrites that file."""
        folder = os.path.join(self.common_dir, "worktrees")
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return ()
        key = []
        for name in names:
            try:
                changed = os.stat(os.path.join(folder, name, "gitdir")).st_mtime_ns
            except OSError:
                changed = 0
            key.append((name, changed))
        return tuple(key)

    def entries(self) -> list[tuple[str, str]]:
        """(work tree, its git dir) for every work tree that exists, and for each linked
        one whose folder is not there but whose git dir git keeps."""
        key = self._listing_key()
        if key != self._key:
            if not key and self.main_work_tree is not None:
                # No linked work tree, and the store was opened in the main one: that is
                # the whole list, as git would give it, without starting git.
                self._entries = [(self.main_work_tree, self.common_dir)]
            else:
                self._entries = self._list()
            self._key = key
        return self._entries

    def _list(self) -> list[tuple[str, str]]:
        proc = run_git(["worktree", "list", "--porcelain", "-z"], self.cwd)
        if proc.returncode != 0:
            raise StoreError(
                "git worktree list failed, so proctor cannot tell where the store branch is "
                f"checked out: {proc.stderr.decode(errors='replace').strip()}"
            )
        admin_of: dict[str, str] = {}
        for name, _changed in self._listing_key():
            linked = os.path.join(self.common_dir, "worktrees", name)
            gitfile = _read(os.path.join(linked, "gitdir"))
            if gitfile:
                admin_of[os.path.realpath(os.path.dirname(gitfile))] = linked
        out: list[tuple[str, str]] = []
        first = True
        for block in proc.stdout.split(b"\0\0"):
            fields = [f.decode("utf-8", "surrogateescape") for f in block.split(b"\0") if f]
            if not fields or not fields[0].startswith("worktree "):
                continue
            path = fields[0][9:]
            is_main, first = first, False
            if "bare" in fields:
                continue
            if is_main:
                main = self._main_path(path)
                if main is None:  # known only by its git dir: see find()
                    out.append(("", self.common_dir))
                    continue
                path = main
            admin: str | None = self.common_dir if is_main else admin_of.get(os.path.realpath(path))
            if is_main and not os.path.isdir(path):
                continue
            if not is_main and not work_tree_there(path):
                if admin is not None:  # its git dir is kept: a branch there is still in use
                    out.append((path, admin))
                continue
            if admin is None:
                gitfile = _read(os.path.join(path, ".git")) or ""
                if not gitfile.startswith("gitdir: "):
                    continue
                admin = os.path.join(path, gitfile[8:])
            out.append((path, admin))
        return out

    def _main_path(self, listed: str) -> str | None:
        """The main work tree's folder, or None when it cannot be told from here."""
        if self.main_work_tree is not None:
            return self.main_work_tree
        dot_git = os.path.join(listed, ".git")
        if not (os.path.isdir(dot_git) and same_path(dot_git, self.common_dir)):
            return None  # git listed the git dir itself (a submodule, --separate-git-dir)
        config = os.path.join(self.common_dir, "config")
        proc = run_git(["config", "--file", config, "core.worktree"], self.cwd)
        return listed if proc.returncode == 1 else None  # set (0) or unreadable: elsewhere

    def find(self, ref: str) -> Checkout | None:
        """The work tree that has ``ref`` checked out or is rebasing it, read now."""
        want = f"ref: {ref}"
        for path, admin in self.entries():
            if read_head(os.path.join(admin, "HEAD")) == want:
                rebasing = False
            elif any(
                _read(os.path.join(admin, state, "head-name")) == ref
                for state in ("rebase-merge", "rebase-apply")
            ):
                rebasing = True
            else:
                continue
            if path and admin != self.common_dir and not work_tree_there(path):
                raise MissingWorkTreeError(
                    f"{ref} is checked out in the work tree {path}, which is not there; "
                    f"{WORK_TREE_BACK} (nothing was written)",
                    work_tree=path,
                )
            if not path:
                raise StoreError(
                    f"{ref} is checked out in the main work tree of this repository, which "
                    f"git knows only by its git dir ({admin}); run proctor from that work "
                    "tree (nothing was written)"
                )
            return Checkout(path, admin, rebasing=rebasing)
        return None
