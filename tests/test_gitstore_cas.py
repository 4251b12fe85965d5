"""GitStore's compare-and-swap write loop, driven step by step in one process.

The concurrent writer is real (a second GitStore, or plain git, moving the ref), but it
acts at a chosen instant - inside the build callback, or just before the ref transaction -
so each branch of the loop (rebuild on a new tip, conflict, create-only tags) is hit
deterministically. Process-level races live in tests/test_concurrency.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.core.errors import ConcurrencyError, UsageError
from proctor.store import Change, GitStore, TagSpec, WriteResult, format_ident
from proctor.store.refs import CasLost

IDENTITY = {
    "GIT_AUTHOR_NAME": "Cas Test",
    "GIT_AUTHOR_EMAIL": "cas@example.com",
    "GIT_COMMITTER_NAME": "Cas Test",
    "GIT_COMMITTER_EMAIL": "cas@example.com",
}
AUTHOR = format_ident("Cas Test", "cas@example.com")
REF = "refs/heads/main"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(params=[False, True], ids=["bare", "checked-out"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A repository whose main has one commit with ``a.txt`` and ``b.txt``.

    Bare: nothing but CAS orders writers. Checked out: the work-tree lock and sync run too.
    """
    if request.param:
        path = tmp_path / "wt"
        git(tmp_path, "init", "-q", "-b", "main", str(path))
        (path / "a.txt").write_text("a0\n")
        (path / "b.txt").write_text("b0\n")
        git(path, "add", "a.txt", "b.txt")
        git(path, "commit", "-q", "-m", "base")
    else:
        path = tmp_path / "bare.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
        with GitStore(path) as s:
            s.write(
                REF,
                lambda _tip: Change(edits={"a.txt": b"a0\n", "b.txt": b"b0\n"}, message="base"),
                author=AUTHOR,
            )
    return path


@pytest.fixture
def stores(repo: Path) -> Iterator[tuple[GitStore, GitStore]]:
    """The writer under test and an independent 'other writer' on the same repository."""
    with GitStore(repo) as mine, GitStore(repo) as other:
        yield mine, other


def other_write(other: GitStore, path: str, content: bytes) -> str:
    """Another writer that is not proctor moves the ref: ``git commit`` in the work tree,
    or, in a bare repository, a commit made of plain objects and ``git update-ref``.

    Not a second proctor write: proctor may serialise its own writers with a lock, and
    the CAS loop exists for the writers that do not take it.
    """
    repo = Path(other.cwd)
    if other.work_tree is not None:
        (repo / path).write_bytes(content)
        git(repo, "add", path)
        git(repo, "commit", "-q", "-m", f"other {path}")
    else:
        old = other.read_ref(REF)
        assert old
        tree = other.apply_edits(other.commit_tree(old), {path: content})
        new = other.write_commit(tree, [old], f"other {path}\n", AUTHOR, AUTHOR)
        git(repo, "update-ref", REF, new, old)
    return git(repo, "rev-parse", REF).strip()


def show(repo: Path, rev: str) -> str:
    return git(repo, "show", rev)


def test_rebuilds_on_new_tip_when_other_path_changed(
    repo: Path, stores: tuple[GitStore, GitStore]
) -> None:
    """The ref moves under us (another path): build runs again on the new tip, and the
    commit lands on top of the other writer's, keeping both edits."""
    mine, other = stores
    start = mine.read_ref(REF)
    seen: list[str | None] = []

    def build(tip: str | None) -> Change:
        seen.append(tip)
        if len(seen) == 1:
            other_write(other, "b.txt", b"b1\n")
        return Change(edits={"a.txt": b"a1\n"}, message="mine")

    result: WriteResult = mine.write(
        REF, build, author=AUTHOR, trailers={"Proctor-Action": "test.mine"}
    )
    assert result.attempts == 2
    assert len(seen) == 2, "build (and with it the submission criteria) must run again"
    concurrent = git(repo, "rev-parse", f"{REF}^").strip()
    assert seen == [start, concurrent]
    assert result.parent == concurrent
    assert git(repo, "rev-parse", REF).strip() == result.commit
    assert show(repo, f"{REF}:a.txt") == "a1\n"
    assert show(repo, f"{REF}:b.txt") == "b1\n"
    assert "Proctor-Action: test.mine" in git(repo, "log", "-1", "--format=%B", REF)
    assert git(repo, "rev-list", "--merges", REF) == ""
    if not repo.name.endswith(".git"):
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_conflict_when_other_writer_touched_same_path(
    repo: Path, stores: tuple[GitStore, GitStore]
) -> None:
    """Same path changed under us: ConcurrencyError naming both versions, nothing written."""
    mine, other = stores
    start = mine.read_ref(REF)
    calls = [0]
    concurrent: list[str] = []

    def build(tip: str | None) -> Change:
        calls[0] += 1
        if calls[0] == 1:
            concurrent.append(other_write(other, "a.txt", b"theirs\n"))
        return Change(edits={"a.txt": b"mine\n"}, message="mine")

    with pytest.raises(ConcurrencyError) as info:
        mine.write(REF, build, author=AUTHOR)
    assert info.value.expected == start
    assert info.value.actual == concurrent[0]
    assert info.value.exit_code == 3
    assert calls[0] == 1, "no rebuild over someone else's change to the same path"
    assert git(repo, "rev-parse", REF).strip() == concurrent[0]
    assert show(repo, f"{REF}:a.txt") == "theirs\n"


def test_rebuild_whose_paths_differ_is_checked_against_new_tip(
    repo: Path, stores: tuple[GitStore, GitStore]
) -> None:
    """A rebuild may touch a path the first build did not; what is compared on the next
    lost race is the last build's paths. Here the second race hits that new path."""
    mine, other = stores
    calls = [0]

    def build(tip: str | None) -> Change:
        calls[0] += 1
        if calls[0] == 1:
            other_write(other, "b.txt", b"b1\n")  # not ours yet: rebuild
            return Change(edits={"a.txt": b"a1\n"}, message="mine")
        if calls[0] == 2:
            other_write(other, "c.txt", b"c1\n")  # the path this build will write
        return Change(edits={"a.txt": b"a1\n", "c.txt": b"mine\n"}, message="mine")

    with pytest.raises(ConcurrencyError):
        mine.write(REF, build, author=AUTHOR)
    assert show(repo, f"{REF}:c.txt") == "c1\n"


def test_existing_tag_blocks_the_commit(repo: Path, stores: tuple[GitStore, GitStore]) -> None:
    """Commit and release tag move together: a tag that exists already refuses both."""
    mine, _other = stores
    start = mine.read_ref(REF)
    git(repo, "tag", "-a", "-m", "theirs", "procedures/x/v1.0.0", REF)
    tag_before = git(repo, "rev-parse", "refs/tags/procedures/x/v1.0.0").strip()

    with pytest.raises(UsageError, match="already exists"):
        mine.write(
            REF,
            lambda _tip: Change(
                edits={"a.txt": b"a1\n"},
                message="release",
                tags=[TagSpec("procedures/x/v1.0.0", "mine")],
            ),
            author=AUTHOR,
        )
    assert git(repo, "rev-parse", REF).strip() == start
    assert git(repo, "rev-parse", "refs/tags/procedures/x/v1.0.0").strip() == tag_before


class TagRacingStore(GitStore):
    """A store whose 'other writer' creates the release tag at the worst instant: after
    the tag was checked, just before the ref transaction runs (once)."""

    def __init__(self, path: Path, tag: str) -> None:
        super().__init__(path)
        self.tag = tag
        self.raced = False

    def update_refs(self, updates: list[tuple[str, str, str | None]], reason: str) -> None:
        if not self.raced:
            self.raced = True
            git(Path(self.cwd), "tag", "-a", "-m", "theirs", self.tag, updates[0][2] or REF)
        super().update_refs(updates, reason)


def test_tag_created_concurrently_blocks_the_commit(repo: Path) -> None:
    """The tag appears between the check and the transaction: the transaction fails as a
    whole (the branch does not move), and the rebuild then refuses the existing tag."""
    tag = "procedures/x/v2.0.0"
    with TagRacingStore(repo, tag) as store:
        start = store.read_ref(REF)
        with pytest.raises(UsageError, match="already exists"):
            store.write(
                REF,
                lambda _tip: Change(
                    edits={"a.txt": b"a2\n"}, message="release", tags=[TagSpec(tag, "mine")]
                ),
                author=AUTHOR,
            )
        assert store.raced
    assert git(repo, "rev-parse", REF).strip() == start
    assert (
        git(repo, "for-each-ref", "--format=%(contents:subject)", f"refs/tags/{tag}").strip()
        == "theirs"
    )
    if not repo.name.endswith(".git"):
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_update_refs_is_all_or_nothing(repo: Path, stores: tuple[GitStore, GitStore]) -> None:
    """One transaction, two refs: if the create-only tag exists, the branch stays put."""
    mine, _other = stores
    start = mine.read_ref(REF)
    assert start
    tree = mine.apply_edits(mine.commit_tree(start), {"a.txt": b"a3\n"})
    commit = mine.write_commit(tree, [start], "direct\n", AUTHOR, AUTHOR)
    git(repo, "tag", "taken", start)
    tag_obj = mine.write_tag(commit, "taken", AUTHOR, "mine\n")
    with pytest.raises(CasLost):
        mine.update_refs([(REF, commit, start), ("refs/tags/taken", tag_obj, None)], "test")
    assert git(repo, "rev-parse", REF).strip() == start
    assert git(repo, "rev-parse", "refs/tags/taken").strip() == start


def test_retry_budget_exhausted_raises_concurrency_error(
    repo: Path, stores: tuple[GitStore, GitStore]
) -> None:
    """A ref that moves on every attempt (other paths): bounded, then ConcurrencyError."""
    mine, other = stores
    calls = [0]

    def build(tip: str | None) -> Change:
        calls[0] += 1
        other_write(other, f"o{calls[0]}.txt", b"x\n")
        return Change(edits={"a.txt": b"mine\n"}, message="mine")

    with pytest.raises(ConcurrencyError) as info:
        mine.write(REF, build, author=AUTHOR, max_attempts=3)
    assert calls[0] == 3
    assert info.value.actual == git(repo, "rev-parse", REF).strip()
    assert show(repo, f"{REF}:a.txt") == "a0\n"
