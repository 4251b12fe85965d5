"""Policy and the checks actions run come from the committed proctor.toml on the store ref,
whatever is checked out and whatever is uncommitted; ``proctor check`` reads the work
tree's, as a linter does. Also: a long-lived Workspace sees ``git switch``, and a failing
``git worktree list`` refuses the write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GREET, git, repo_state, run_cli

from proctor import Workspace
from proctor.core.errors import ConfigError, StoreError

STRICT = 'store-ref = "refs/heads/main"\n\n[policy]\n"procedure.delete" = "DENY"\n'
LOOSE = 'store-ref = "refs/heads/main"\n'
SUBPROCESS = "import subprocess\n\n\ndef run(name: str) -> str:\n    return name\n"


@pytest.fixture
def strict(repo: Path) -> Path:
    """main holds ``greet`` and a committed proctor.toml that denies deletes."""
    (repo / "proctor.toml").write_text(STRICT)
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "config")
    with Workspace.open(repo, actor="tester@example.com") as ws:
        ws.execute("procedure.create", {"name": "greet", "code": GREET, "description": "Greets"})
    return repo


def delete_greet(repo: Path) -> tuple[int, dict[str, object]]:
    r = run_cli("--repo", str(repo), "--json", "procedure", "delete", "greet")
    return r.code, json.loads(r.out) if r.out.strip() else {"err": r.err}


def assert_greet_on_main(repo: Path) -> None:
    assert git(repo, "show", "main:procedures/greet/main.py") == GREET
    assert "Delete procedure" not in git(repo, "log", "--format=%s", "main")


def test_detached_head_with_an_uncommitted_config_cannot_loosen_policy(strict: Path) -> None:
    git(strict, "switch", "-q", "--detach", "main")
    (strict / "proctor.toml").write_text(LOOSE)  # uncommitted: names the store ref, no policy
    main = git(strict, "rev-parse", "main")
    code, data = delete_greet(strict)
    assert code == 1, data
    assert data["status"] == "denied"
    assert git(strict, "rev-parse", "main") == main
    assert_greet_on_main(strict)


def test_another_branch_committed_config_cannot_loosen_policy(strict: Path) -> None:
    git(strict, "switch", "-q", "-c", "other")
    (strict / "proctor.toml").write_text(LOOSE)
    git(strict, "commit", "-q", "-am", "loose config on another branch")
    main = git(strict, "rev-parse", "main")
    code, data = delete_greet(strict)
    assert code == 1, data
    assert data["status"] == "denied"
    assert git(strict, "rev-parse", "main") == main
    assert_greet_on_main(strict)


def test_an_uncommitted_edit_on_the_store_branch_cannot_loosen_policy(strict: Path) -> None:
    (strict / "proctor.toml").write_text(LOOSE)
    code, data = delete_greet(strict)
    assert code == 1 and data["status"] == "denied"
    assert_greet_on_main(strict)


def test_the_code_checks_of_actions_use_the_committed_config(strict: Path) -> None:
    git(strict, "switch", "-q", "-c", "other")
    (strict / "proctor.toml").write_text(
        LOOSE + '\n[safety]\nextra-allowed-imports = ["subprocess"]\n'
    )
    git(strict, "commit", "-q", "-am", "loose checks on another branch")
    code = strict.parent / "sub.py"
    code.write_text(SUBPROCESS)
    before = repo_state(strict)
    r = run_cli("--repo", str(strict), "procedure", "create", "sub", "--code", str(code))
    assert r.code == 2, r.err
    assert "subprocess" in r.err
    assert repo_state(strict) == before
    with Workspace.open(strict) as ws:
        assert ws.config.table("safety").values == {}
        assert ws.config.policy == {"procedure.delete": "DENY"}


def test_proctor_check_reads_the_work_tree_config(strict: Path) -> None:
    path = strict / "procedures/sub/main.py"
    path.parent.mkdir(parents=True)
    path.write_text(SUBPROCESS)
    r = run_cli("check", "--mode", "procedure", str(path), cwd=strict)
    assert r.code == 1 and "subprocess" in r.out
    (strict / "proctor.toml").write_text(
        STRICT + '\n[safety]\nextra-allowed-imports = ["subprocess"]\n'
    )
    r = run_cli("check", "--mode", "procedure", str(path), cwd=strict)
    assert r.code == 0, r.out


def test_a_broken_committed_config_names_the_ref_and_the_file(strict: Path) -> None:
    (strict / "proctor.toml").write_text(STRICT + "\n[policy\n")
    git(strict, "commit", "-q", "-am", "broken")
    git(strict, "switch", "-q", "-c", "other")
    (strict / "proctor.toml").write_text(LOOSE)
    git(strict, "commit", "-q", "-am", "fine here")
    before = repo_state(strict)
    r = run_cli("--repo", str(strict), "procedure", "delete", "greet")
    assert r.code == 2
    assert "refs/heads/main:proctor.toml" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert repo_state(strict) == before
    with pytest.raises(ConfigError, match="refs/heads/main:proctor.toml"):
        Workspace.open(strict)


def test_the_store_ref_comes_from_the_work_tree_config(strict: Path) -> None:
    # The bootstrap: which ref is the store comes from the work tree (or the branch
    # checked out); everything else from that ref's committed copy.
    git(strict, "switch", "-q", "-c", "other")
    (strict / "proctor.toml").write_text(LOOSE + '\n[policy]\n"procedure.create" = "DENY"\n')
    with Workspace.open(strict) as ws:
        assert ws.ref == "refs/heads/main"
        assert ws.config.policy == {"procedure.delete": "DENY"}
    (strict / "proctor.toml").unlink()
    with Workspace.open(strict) as ws:
        assert ws.ref == "refs/heads/other"  # no config here: the checked-out branch


# -- the checked-out branch is asked afresh, and fails closed ---------------------------------


def test_a_long_lived_workspace_sees_git_switch(strict: Path) -> None:
    with Workspace.open(strict, actor="tester@example.com") as ws:
        ws.execute("procedure.update", {"name": "greet", "description": "one"})
        git(strict, "switch", "-q", "-c", "other")
        git(strict, "rm", "-q", "-r", "procedures")
        git(strict, "commit", "-q", "-m", "other has none")
        ws.execute("procedure.update", {"name": "greet", "description": "two"})
        assert not (strict / "procedures").exists()
        assert git(strict, "status", "--porcelain", "--untracked-files=all") == ""
        meta = json.loads(git(strict, "show", "main:procedures/greet/metadata.json"))
        assert meta["description"] == "two"
        git(strict, "switch", "-q", "main")
        path = strict / "procedures/greet/metadata.json"
        assert json.loads(path.read_text())["description"] == "two"
        path.write_text("mine\n")
        with pytest.raises(Exception, match="uncommitted changes"):
            ws.execute("procedure.update", {"name": "greet", "description": "three"})
        assert path.read_text() == "mine\n"


def test_worktree_list_failing_refuses_the_write(strict: Path) -> None:
    with Workspace.open(strict, actor="tester@example.com") as ws:
        # A new linked work tree makes the store list the work trees again, now failing.
        config = (strict / ".git/config").read_text()
        (strict / ".git/worktrees/gone").mkdir(parents=True)
        (strict / ".git/config").write_text(config + "\n[broken\n")
        try:
            with pytest.raises(StoreError, match="worktree list"):
                ws.execute("procedure.update", {"name": "greet", "description": "x"})
        finally:
            (strict / ".git/config").write_text(config)
            (strict / ".git/worktrees/gone").rmdir()
    assert (
        json.loads(git(strict, "show", "main:procedures/greet/metadata.json"))["description"]
        == "Greets"
    )


def test_a_bare_repository_reads_the_store_ref_from_head_and_policy_from_the_ref(
    strict: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(strict), str(bare))
    with Workspace.open(bare) as ws:
        assert ws.ref == "refs/heads/main"
        assert ws.config.policy == {"procedure.delete": "DENY"}
        assert ws.execute("procedure.delete", {"name": "greet"}).status == "denied"
