"""Repositories whose git dir is not ``<work tree>/.git``: a submodule, a work tree made
with ``--separate-git-dir``. ``git worktree list`` names such a main work tree by its git
dir, so the store takes the work tree from ``git rev-parse --show-toplevel``: files go to
the work tree, never into the git dir, and the index matches what was committed. A
``core.worktree`` naming a folder git cannot be run in is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GREET, git, run_cli


def _submodule(tmp_path: Path) -> tuple[Path, Path]:
    upstream = tmp_path / "upstream"
    git(tmp_path, "init", "-q", "-b", "main", str(upstream))
    git(upstream, "commit", "-q", "--allow-empty", "-m", "root")
    outer = tmp_path / "outer"
    git(tmp_path, "init", "-q", "-b", "main", str(outer))
    git(outer, "-c", "protocol.file.allow=always", "submodule", "-q", "add", str(upstream), "inner")
    return outer / "inner", outer / ".git" / "modules" / "inner"


def _separate(tmp_path: Path) -> tuple[Path, Path]:
    work, gitdir = tmp_path / "work", tmp_path / "store.git"
    git(tmp_path, "init", "-q", "-b", "main", f"--separate-git-dir={gitdir}", str(work))
    return work, gitdir


def _core_worktree(tmp_path: Path) -> tuple[Path, Path]:
    holder, work = tmp_path / "holder", tmp_path / "tree"
    git(tmp_path, "init", "-q", "-b", "main", str(holder))
    work.mkdir()
    git(holder, "config", "core.worktree", str(work))
    return work, holder / ".git"


@pytest.mark.parametrize("layout", [_submodule, _separate])
def test_files_go_to_the_work_tree_not_the_git_dir(tmp_path: Path, layout: object) -> None:
    work, gitdir = layout(tmp_path)  # type: ignore[operator]
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    for args in (("init", "."), ("procedure", "create", "greet", "--code", str(code))):
        result = run_cli(*args, cwd=work)
        assert result.code == 0, result.err
    assert (work / "procedures" / "greet" / "main.py").read_text() == GREET
    assert (work / "proctor.toml").is_file()
    assert not (gitdir / "procedures").exists() and not (gitdir / "proctor.toml").exists()
    assert git(work, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(work, "show", "HEAD:procedures/greet/main.py") == GREET


def test_a_branch_checked_out_where_git_knows_only_the_git_dir_is_refused(
    tmp_path: Path,
) -> None:
    """Opened in a linked work tree of a submodule whose main work tree has the store
    branch: git cannot say where that work tree is, so the write is refused, clearly."""
    work, _gitdir = _submodule(tmp_path)
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    assert run_cli("init", ".", cwd=work).code == 0
    toml = work / "proctor.toml"
    toml.write_text('store-ref = "refs/heads/main"\n' + toml.read_text())
    git(work, "commit", "-q", "-am", "the store is main, wherever proctor runs")
    linked = tmp_path / "linked"
    git(work, "worktree", "add", "-q", "-b", "side", str(linked))
    before = git(work, "rev-parse", "main")
    result = run_cli("procedure", "create", "greet", "--code", str(code), cwd=linked)
    assert result.code != 0 and "Traceback" not in result.err
    assert "main work tree of this repository" in result.err
    assert git(work, "rev-parse", "main") == before
    assert git(work, "status", "--porcelain") == ""


def test_a_core_worktree_that_does_not_lead_back_to_the_repository_is_refused(
    tmp_path: Path,
) -> None:
    """``core.worktree`` names a folder with no ``.git``: git cannot be run there, so the
    store refuses the repository (exit 2) and writes nothing, in either folder."""
    work, gitdir = _core_worktree(tmp_path)
    holder = gitdir.parent
    for args in (("--repo", str(holder), "init"), ("--repo", str(holder), "procedure", "list")):
        result = run_cli(*args, cwd=tmp_path)
        assert result.code == 2, result.err
        assert "core.worktree" in result.err and "Traceback" not in result.err
    assert sorted(p.name for p in work.iterdir()) == []
    assert not (tmp_path / ".git").exists()
    assert git(holder, "rev-list", "--all") == ""


@pytest.mark.parametrize(
    ("shared", "expected"), [("group", 0o2775), ("all", 0o2775), ("0770", 0o2770)]
)
def test_object_folders_in_a_shared_repository_are_made_as_git_makes_them(
    tmp_path: Path, shared: str, expected: int
) -> None:
    """``core.sharedRepository``: the object folders a write creates get the permissions
    git gives its own (group-writable, set-gid), so another member's git can add objects."""
    import os
    import stat

    from proctor.store import Change, GitStore, format_ident

    repo = tmp_path / "shared"
    git(tmp_path, "init", "-q", "-b", "main", f"--shared={shared}", str(repo))
    old = os.umask(0o022)
    try:
        with GitStore(repo) as store:
            author = format_ident("Share Test", "share@example.com")
            edits: dict[str, bytes | None] = {f"f{i}.txt": f"{i}\n".encode() for i in range(40)}
            store.write("refs/heads/main", lambda _t: Change(edits=edits, message="m"),
                        author=author)  # fmt: skip
    finally:
        os.umask(old)
    folders = [p for p in (repo / ".git" / "objects").iterdir() if len(p.name) == 2]
    assert len(folders) > 10
    modes = {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders}
    assert modes == {oct(expected)}
