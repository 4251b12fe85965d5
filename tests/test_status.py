"""``proctor status`` and ``Workspace.status()``: read-only, text and JSON, the same facts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git, repo_state, run_cli, switch_off_the_store_branch

from proctor import Workspace

KEYS = {
    "remote",
    "ref",
    "tip",
    "work_tree",
    "in_sync",
    "out_of_sync",
    "operation",
    "journal",
    "recovered",
    "warnings",
}


def test_status_of_a_clean_store(store: Path) -> None:
    before = repo_state(store)
    text = run_cli("--repo", str(store), "status")
    assert text.code == 0, text.err
    tip = git(store, "rev-parse", "HEAD").strip()
    assert "store ref: refs/heads/main" in text.out and tip in text.out
    assert "in sync:   yes" in text.out
    data = json.loads(run_cli("--repo", str(store), "status", "--json").out)
    assert set(data) == KEYS
    assert data["tip"] == tip and data["in_sync"] is True and data["journal"] is None
    assert data["work_tree"] == str(store)
    assert data["remote"] is None and "remote:    - (no remote to sync with)" in text.out
    assert repo_state(store) == before


def test_status_names_what_is_out_of_sync(store: Path) -> None:
    (store / "procedures/greet/main.py").write_text("def run() -> int:\n    return 2\n")
    before = repo_state(store)
    result = run_cli("--repo", str(store), "status")
    assert result.code == 0
    assert "in sync:   no" in result.out and "changed: procedures/greet/main.py" in result.out
    with Workspace.open(store) as ws:
        report = ws.status()
    assert report.in_sync is False and report.out_of_sync == ["procedures/greet/main.py"]
    assert repo_state(store) == before


def test_status_of_a_store_ref_not_checked_out(store: Path) -> None:
    switch_off_the_store_branch(store)
    data = json.loads(run_cli("--repo", str(store), "status", "--json").out)
    assert data["ref"] == "refs/heads/main" and data["work_tree"] is None
    assert data["in_sync"] is None


def test_status_shows_an_operation_in_progress(store: Path) -> None:
    (store / "c.txt").write_text("base\n")
    git(store, "add", "c.txt")
    git(store, "commit", "-qm", "base")
    git(store, "switch", "-q", "-c", "side")
    (store / "c.txt").write_text("side\n")
    git(store, "commit", "-qam", "side")
    git(store, "switch", "-q", "main")
    (store / "c.txt").write_text("main\n")
    git(store, "commit", "-qam", "main")
    subprocess.run(["git", "merge", "side"], cwd=store, capture_output=True)
    data = json.loads(run_cli("--repo", str(store), "status", "--json").out)
    assert data["operation"] == "a merge" and data["in_sync"] is False


def test_status_names_a_work_tree_that_is_not_there(store: Path, tmp_path: Path) -> None:
    """The store branch checked out in a linked work tree that is unmounted: status, a
    read, still answers, and says why writes wait (they are refused meanwhile)."""
    switch_off_the_store_branch(store)
    linked = tmp_path / "linked"
    git(store, "worktree", "add", "-q", str(linked), "main")
    linked.rename(tmp_path / "away")
    result = run_cli("--repo", str(store), "status", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["work_tree"] == str(linked) and data["in_sync"] is False
    assert any(str(linked) in w and "not there" in w for w in data["warnings"])
    assert not any("nothing was written" in w for w in data["warnings"])  # a read
    text = run_cli("--repo", str(store), "status")
    assert text.code == 0 and f"work tree: {linked}" in text.out, text.out
    write = run_cli(
        "--repo", str(store), "procedure", "update", "greet", "--description", "Greets."
    )
    assert write.code == 2 and "git worktree prune" in write.err, write.err
