"""proctor sync against a real ``git daemon`` on 127.0.0.1: clones of one bare store."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proctor import Workspace
from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import PluginInfo, PluginManager
from proctor.engine.actions import ActionContext, ActionType, Params
from proctor.store.gitstore import Change
from tests.conftest import repo_state, run_cli, switch_off_the_store_branch
from tests.gitdaemon import GitServer, run_git
from tests.gitdaemon import git_server as git_server  # the fixture
from tests.runs_helpers import event_manager

CODE = 'def run(name: str) -> str:\n    return "hello " + name\n'
CODE2 = 'def run(name: str) -> str:\n    return "hi " + name\n'
CODE3 = (
    'def run(name: str, loud: bool = False) -> str:\n    return ("HI " if loud else "hi ") + name\n'
)


class Cluster:
    """A bare store served by ``git daemon`` and clones of it, seeded with ``x``."""

    def __init__(self, server: GitServer, root: Path) -> None:
        self.server = server
        self.root = root
        self.bare = server.bare()
        self.clones: dict[str, Path] = {}
        seed = self.clone("a")
        ws, _ = Workspace.init(seed)
        with ws:
            ws.execute("procedure.create", {"name": "x", "code": CODE})
            assert ws.sync().exit_code == 0

    def clone(self, name: str) -> Path:
        path = self.server.clone("store.git", self.root / name)
        self.clones[name] = path
        return path

    def ws(self, name: str, plugins: PluginManager | None = None) -> Workspace:
        return Workspace.open(self.clones[name], actor=f"{name}@example.com", plugins=plugins)

    def do(self, name: str, action: str, params: dict[str, Any]) -> Any:
        with self.ws(name) as ws:
            result = ws.execute(action, params)
        assert result.status == "applied", result.errors
        return result

    def sync(self, name: str, **kw: Any) -> Any:
        with self.ws(name) as ws:
            return ws.sync(**kw)

    def remote(self, *args: str) -> str:
        return run_git(self.bare, *args)

    def tags(self, where: Path) -> dict[str, str]:
        out = run_git(where, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags/")
        return dict(line.split(" ") for line in out.splitlines())


@pytest.fixture
def cluster(git_server: GitServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(git_server, tmp_path)
    c.clone("b")
    yield c


def trailers(repo: Path, rev: str) -> dict[str, str]:
    out = run_git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


# -- replay --------------------------------------------------------------------------------


def test_remote_moved_local_commit_replayed_as_same_action(cluster: Cluster) -> None:
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    assert cluster.sync("a").pushed
    mine = cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    old = mine.commit
    result = cluster.sync("b")
    assert result.exit_code == 0 and result.pushed
    assert [(r.old, r.action) for r in result.replayed] == [(old, "procedure.create")]
    new = result.replayed[0].new
    assert new and new != old
    remote_tip = cluster.remote("rev-parse", "main").strip()
    assert remote_tip == new
    # Same action, actor and correlation id; decided again by policy on the new base.
    before, after = trailers(cluster.clones["b"], old), trailers(cluster.bare, new)
    for key in ("Proctor-Action", "Proctor-Actor", "Proctor-Correlation-Id"):
        assert after[key] == before[key]
    assert after["Proctor-Policy"] == "ALLOW_IMMEDIATE"
    # Both changes are on the remote and in b's work tree, which is clean.
    b = cluster.clones["b"]
    assert (b / "procedures/x/main.py").read_text() == CODE2
    assert (b / "procedures/beta/main.py").read_text() == CODE
    assert run_git(b, "status", "--porcelain") == ""
    assert cluster.remote("show", "main:procedures/x/main.py") == CODE2


def test_fast_forward_brings_work_tree_along(cluster: Cluster) -> None:
    cluster.do("a", "procedure.create", {"name": "gamma", "code": CODE})
    cluster.sync("a")
    result = cluster.sync("b")
    assert result.exit_code == 0 and not result.replayed and not result.pushed
    b = cluster.clones["b"]
    assert (b / "procedures/gamma/main.py").read_text() == CODE
    assert run_git(b, "status", "--porcelain") == ""
    assert run_git(b, "rev-parse", "HEAD").strip() == cluster.remote("rev-parse", "main").strip()


def test_replay_refused_by_policy_of_new_base_changes_nothing(cluster: Cluster) -> None:
    a = cluster.clones["a"]
    toml = (
        (a / "proctor.toml")
        .read_text()
        .replace('# "procedure.delete" = "REQUIRE_PROPOSAL"', '"procedure.create" = "DENY"')
    )
    (a / "proctor.toml").write_text(toml)
    run_git(a, "commit", "-qam", "Deny creating procedures")
    run_git(a, "push", "-q", "origin", "main")
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    b = cluster.clones["b"]
    before, remote_before = repo_state(b), cluster.remote("rev-parse", "main")
    result = cluster.sync("b")
    assert result.exit_code == 3
    assert [c.kind for c in result.conflicts] == ["policy"]
    assert "DENY" in result.conflicts[0].message
    after = repo_state(b)
    assert after["status"] == before["status"] and after["head"] == before["head"]
    assert run_git(b, "rev-parse", "main") != cluster.remote("rev-parse", "main")
    assert cluster.remote("rev-parse", "main") == remote_before
    assert not any("refs/proctor/sync/" in line for line in after["refs"].splitlines())


def test_replay_that_no_longer_applies_is_reported_nothing_half_done(cluster: Cluster) -> None:
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    first = cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    second = cluster.do("b", "procedure.update", {"name": "x", "code": CODE3})
    b = cluster.clones["b"]
    before, remote_before = repo_state(b), cluster.remote("for-each-ref")
    run = run_cli("sync", "--json", cwd=b)
    assert run.code == 3, run.err
    data = json.loads(run.out)
    assert data["status"] == "conflict" and data["pushed"] is False
    (conflict,) = data["conflicts"]
    assert conflict["kind"] == "commit" and conflict["commit"] == second.commit
    assert conflict["path"] == "procedures/x/main.py"
    after = repo_state(b)
    # The fetch moved the private remote refs only; the branch, tags, work tree stayed.
    assert after["status"] == before["status"]
    assert run_git(b, "rev-parse", "main").strip() == second.commit
    assert run_git(b, "rev-parse", "main~1").strip() == first.commit
    assert cluster.remote("for-each-ref") == remote_before
    text = run_cli("sync", cwd=b)
    assert text.code == 3 and "conflict (commit)" in text.err and "procedures/x/main.py" in text.err


def test_non_proctor_local_commit_is_a_conflict(cluster: Cluster) -> None:
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    b = cluster.clones["b"]
    (b / "README").write_text("notes\n")
    run_git(b, "add", "README")
    run_git(b, "commit", "-qm", "Notes")
    result = cluster.sync("b")
    assert result.exit_code == 3 and result.conflicts[0].kind == "commit"
    assert "not made by proctor" in result.conflicts[0].message


# -- releases ------------------------------------------------------------------------------


def test_tag_race_loser_renumbered_to_next_free_version(cluster: Cluster) -> None:
    cluster.sync("b")
    won = cluster.do("a", "procedure.release", {"name": "x"})
    assert won.tags == ["procedures/x/v0.1.0"]
    cluster.do("b", "procedure.update", {"name": "x", "code": CODE3})  # a new optional param
    lost = cluster.do("b", "procedure.release", {"name": "x"})
    assert lost.tags == ["procedures/x/v0.1.0"]
    b = cluster.clones["b"]
    mine = run_git(b, "rev-parse", "refs/tags/procedures/x/v0.1.0").strip()
    assert cluster.sync("a").pushed
    run = run_cli("sync", cwd=b)
    assert run.code == 0, run.err
    assert "release procedures/x/v0.1.0 renumbered" in run.err
    assert "released as 0.2.0" in run.err  # minor: the new parameter has a default
    remote = cluster.tags(cluster.bare)
    a_tags = cluster.tags(cluster.clones["a"])
    assert remote["refs/tags/procedures/x/v0.1.0"] == a_tags["refs/tags/procedures/x/v0.1.0"]
    assert (
        cluster.tags(b)["refs/tags/procedures/x/v0.1.0"] == a_tags["refs/tags/procedures/x/v0.1.0"]
    )
    assert (
        cluster.tags(b)["refs/tags/procedures/x/v0.2.0"] == remote["refs/tags/procedures/x/v0.2.0"]
    )
    assert cluster.remote("show", "procedures/x/v0.2.0:procedures/x/main.py") == CODE3
    message = cluster.remote("cat-file", "tag", "procedures/x/v0.2.0")
    assert "Renumbered from 0.1.0" in message and "Proctor-Actor: b@example.com" in message
    # Nothing lost: the tag it had is kept under refs/proctor/superseded/.
    kept = run_git(b, "for-each-ref", "--format=%(objectname)", "refs/proctor/superseded/")
    assert mine in kept.split()
    # After one more sync every clone has the same release tags as the remote.
    cluster.sync("a")
    assert cluster.tags(cluster.clones["a"]) == remote == cluster.tags(b)


def test_tag_race_same_code_adopts_remote_tag(cluster: Cluster) -> None:
    cluster.sync("b")
    cluster.do("a", "procedure.release", {"name": "x"})
    cluster.do("b", "procedure.release", {"name": "x"})
    cluster.sync("a")
    result = cluster.sync("b")
    assert result.exit_code == 0
    assert [(t.name, t.status) for t in result.tags] == [("procedures/x/v0.1.0", "adopted")]
    assert cluster.tags(cluster.clones["b"]) == cluster.tags(cluster.bare)


def test_stale_release_withdrawn_with_clear_conflict(cluster: Cluster) -> None:
    cluster.sync("b")
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.do("a", "procedure.release", {"name": "x"})
    cluster.sync("a")
    cluster.do("b", "procedure.release", {"name": "x"})  # of the older code
    result = cluster.sync("b")
    assert result.exit_code == 3
    (conflict,) = result.conflicts
    assert conflict.kind == "release" and conflict.tag == "procedures/x/v0.1.0"
    assert "withdrawn" in conflict.message and "newer" in conflict.message
    assert cluster.tags(cluster.clones["b"]) == cluster.tags(cluster.bare)
    # The branch itself synced: b has a's code now.
    assert (cluster.clones["b"] / "procedures/x/main.py").read_text() == CODE2


def test_release_on_replayed_commit_recreated_there(cluster: Cluster) -> None:
    cluster.do("a", "procedure.create", {"name": "alpha", "code": CODE})
    cluster.sync("a")
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    cluster.do("b", "procedure.release", {"name": "beta"})
    result = cluster.sync("b")
    assert result.exit_code == 0
    statuses = {t.name: t.status for t in result.tags}
    assert statuses == {"procedures/beta/v0.1.0": "recreated"}
    peeled = cluster.remote("rev-parse", "procedures/beta/v0.1.0^{commit}").strip()
    assert peeled == result.replayed[0].new
    assert cluster.remote("merge-base", "--is-ancestor", peeled, "main") == ""


# -- pushing -------------------------------------------------------------------------------

RACE_HOOK = """#!/bin/sh
# Another writer lands on main while each of the first {n} pushes is received.
cat >/dev/null
n=$(cat "$PWD/races" 2>/dev/null || echo 0)
if [ "$n" -lt {n} ]; then
  echo $((n + 1)) > "$PWD/races"
  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  tip=$(git rev-parse refs/heads/main)
  c=$(git commit-tree -p "$tip" -m "server side $n" "$tip^{{tree}}")
  git update-ref refs/heads/main "$c" "$tip"
fi
exit 0
"""


def install_race_hook(bare: Path, n: int) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(RACE_HOOK.format(n=n))
    hook.chmod(0o755)


def test_push_rejected_retried_until_it_lands(cluster: Cluster) -> None:
    install_race_hook(cluster.bare, 2)
    mine = cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    result = cluster.sync("b")
    assert result.exit_code == 0 and result.pushed
    assert result.retries == 2
    log = cluster.remote("log", "--format=%s", "main")
    assert log.count("server side") == 2 and "Create procedure beta" in log
    corr = trailers(cluster.bare, "main")["Proctor-Correlation-Id"]
    assert corr == trailers(cluster.clones["b"], mine.commit)["Proctor-Correlation-Id"]


def test_push_rejected_retries_are_bounded(cluster: Cluster) -> None:
    install_race_hook(cluster.bare, 100)
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    run = run_cli("sync", "--attempts", "3", "--json", cwd=cluster.clones["b"])
    assert run.code == 3
    data = json.loads(run.out)
    assert data["retries"] == 2 and data["pushed"] is False
    assert data["conflicts"][0]["kind"] == "push" and "3 rounds" in data["conflicts"][0]["message"]
    assert "Create procedure beta" not in cluster.remote("log", "--format=%s", "main")


def test_push_without_atomic_support_falls_back(cluster: Cluster) -> None:
    run_git(cluster.bare, "config", "receive.advertiseAtomic", "false")
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    cluster.do("b", "procedure.release", {"name": "beta"})
    result = cluster.sync("b")
    assert result.exit_code == 0 and result.pushed and result.atomic is False
    assert any("atomic" in w for w in result.warnings)
    assert cluster.tags(cluster.bare) == cluster.tags(cluster.clones["b"])


# -- bad input and local work --------------------------------------------------------------


def test_unknown_remote_exit_2_nothing_changed(cluster: Cluster) -> None:
    b = cluster.clones["b"]
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    before = repo_state(b)
    run = run_cli("sync", "nowhere", cwd=b)
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        "error: unknown remote 'nowhere'; known remotes: origin "
        "(add one with `git remote add NAME URL`)"
    ]
    assert repo_state(b) == before
    run = run_cli("sync", "--status", "nowhere", "--json", cwd=b)
    assert run.code == 2 and json.loads(run.out)["status"] == "invalid"


def test_dirty_work_tree_never_overwritten(cluster: Cluster) -> None:
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    b = cluster.clones["b"]
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    mine = "def run(name: str) -> str:\n    return 'my unsaved work ' + name\n"
    (b / "procedures/x/main.py").write_text(mine)
    tip = run_git(b, "rev-parse", "main")
    remote_before = cluster.remote("for-each-ref")
    result = cluster.sync("b")
    assert result.exit_code == 3
    (conflict,) = result.conflicts
    assert conflict.kind == "worktree" and "procedures/x/main.py" in conflict.message
    assert (b / "procedures/x/main.py").read_text() == mine
    assert run_git(b, "rev-parse", "main") == tip
    assert cluster.remote("for-each-ref") == remote_before
    assert not result.pushed


def test_a_work_tree_that_is_not_there_is_a_conflict_not_a_bad_input(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The store branch checked out in a linked work tree that is unmounted: a sync that
    would fast-forward it stops as a work tree in the way stops it (exit 3), the branch
    and the remote as they were."""
    cluster.do("a", "procedure.create", {"name": "gamma", "code": CODE})
    cluster.sync("a")
    b = cluster.clones["b"]
    switch_off_the_store_branch(b)
    linked = tmp_path / "linked"
    run_git(b, "worktree", "add", "-q", str(linked), "main")
    linked.rename(tmp_path / "away")
    tip = run_git(b, "rev-parse", "main")
    remote_before = cluster.remote("for-each-ref")
    result = cluster.sync("b")
    assert result.exit_code == 3
    (conflict,) = result.conflicts
    assert conflict.kind == "worktree" and str(linked) in conflict.message
    assert run_git(b, "rev-parse", "main") == tip
    assert cluster.remote("for-each-ref") == remote_before


def test_a_file_in_the_way_of_a_sync_is_a_conflict(cluster: Cluster) -> None:
    """A file of the user's under the name a sync would write a procedure file by (its
    backup's): the sync stops as for any local work in the way (exit 3), the file kept."""
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    b = cluster.clones["b"]
    mine = b / "procedures/x/.main.py.proctor-old"
    mine.write_text("mine\n")
    tip = run_git(b, "rev-parse", "main")
    result = cluster.sync("b")
    assert result.exit_code == 3
    (conflict,) = result.conflicts
    assert conflict.kind == "worktree" and ".main.py.proctor-old" in conflict.message
    assert mine.read_text() == "mine\n"
    assert run_git(b, "rev-parse", "main") == tip


def test_a_link_in_place_of_proctors_state_is_an_error_not_a_conflict(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Only local work in the way is a conflict (exit 3): a symbolic link in place of
    proctor's own writer lock is refused as the bad state it is (exit 2)."""
    from proctor.store.locks import ref_file

    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    b = cluster.clones["b"]
    lock = ref_file(str(b / ".git"), "refs/heads/main", "write", ".lock")
    lock.unlink(missing_ok=True)
    target = tmp_path / "elsewhere"
    target.write_text("")
    lock.symlink_to(target)
    run = run_cli("sync", cwd=b)
    assert run.code == 2, (run.code, run.err)
    assert "symbolic link" in run.err


# -- status --------------------------------------------------------------------------------


def test_sync_status_counts_against_last_fetch(cluster: Cluster) -> None:
    cluster.sync("b")
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    cluster.do("b", "procedure.release", {"name": "beta"})
    with cluster.ws("b") as ws:
        status = ws.sync_status()
    assert (status.ahead, status.behind) == (1, 0)  # a's push not fetched yet
    assert status.unpublished_tags == ["procedures/beta/v0.1.0"]
    run_git(
        cluster.clones["b"], "fetch", "-q", "origin", "+main:refs/proctor/remotes/origin/heads/main"
    )
    run = run_cli("sync", "--status", "--json", cwd=cluster.clones["b"])
    assert run.code == 0
    data = json.loads(run.out)
    assert (data["ahead"], data["behind"], data["fetched_ever"]) == (1, 1, True)
    text = run_cli("sync", "--status", cwd=cluster.clones["b"])
    assert "1 ahead, 1 behind origin" in text.out and "1 release(s) not pushed" in text.out
    # proctor status says the same, from the same last fetch
    status_json = json.loads(run_cli("status", "--json", cwd=cluster.clones["b"]).out)
    assert (status_json["remote"]["ahead"], status_json["remote"]["behind"]) == (1, 1)
    assert (
        "remote:    main: 1 ahead, 1 behind origin"
        in run_cli("status", cwd=cluster.clones["b"]).out
    )
    cluster.sync("b")
    with cluster.ws("b") as ws:
        status = ws.sync_status()
    assert (status.ahead, status.behind, status.unpublished_tags) == (0, 0, [])


# -- proposals (file level, by version) ----------------------------------------------------


class ProposalParams(Params):
    id: str
    version: int
    status: str


class WriteProposal(ActionType):
    """Stands in for the proposal state machine: writes proposals/<id>.json."""

    api_name = "proposal.write"
    Params = ProposalParams

    def apply(self, params: ProposalParams, context: ActionContext) -> Change:
        data = {"id": params.id, "version": params.version, "status": params.status}
        return Change(edits={f"proposals/{params.id}.json": json.dumps(data).encode()})


def proposal_plugins() -> PluginManager:
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_register_actions(register: Any) -> None:
        register(WriteProposal)

    plugin.proctor_register_actions = proctor_register_actions  # type: ignore[attr-defined]
    manager = PluginManager()
    manager.load_builtins(set())
    manager.register("proposals-test", plugin, PluginInfo(name="proposals-test", module="tests"))
    manager.check_pending()
    return manager


def write_proposal(cluster: Cluster, clone: str, version: int, status: str) -> Any:
    with cluster.ws(clone, proposal_plugins()) as ws:
        result = ws.execute("proposal.write", {"id": "p1", "version": version, "status": status})
    assert result.status == "applied"
    return result


def test_proposal_changed_on_both_sides_stale_side_fails(cluster: Cluster) -> None:
    write_proposal(cluster, "a", 1, "pending")
    cluster.sync("a")
    cluster.sync("b")
    write_proposal(cluster, "a", 2, "approved")
    cluster.sync("a")
    write_proposal(cluster, "b", 2, "withdrawn")
    with cluster.ws("b", proposal_plugins()) as ws:
        result = ws.sync()
    assert result.exit_code == 3
    (conflict,) = result.conflicts
    assert conflict.kind == "proposal" and conflict.path == "proposals/p1.json"
    assert "stale" in conflict.message
    assert json.loads(cluster.remote("show", "main:proposals/p1.json"))["status"] == "approved"


def test_proposal_higher_version_that_descends_wins(cluster: Cluster) -> None:
    write_proposal(cluster, "a", 1, "pending")
    cluster.sync("a")
    cluster.sync("b")
    # a approves (version 2) and applies (version 3) and publishes both.
    write_proposal(cluster, "a", 2, "approved")
    write_proposal(cluster, "a", 3, "applied")
    cluster.sync("a")
    # b, offline, made the same approval (version 2): origin's version 3 descends from it.
    write_proposal(cluster, "b", 2, "approved")
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    with cluster.ws("b", proposal_plugins()) as ws:
        result = ws.sync()
    assert result.exit_code == 0, result.conflicts
    assert [r.new is None for r in result.replayed] == [True, False]
    assert any("kept origin's version 3" in w for w in result.warnings)
    assert json.loads(cluster.remote("show", "main:proposals/p1.json"))["version"] == 3
    assert cluster.remote("show", "main:procedures/beta/main.py") == CODE


def test_push_declined_by_server_is_exit_1_at_once(cluster: Cluster) -> None:
    hook = cluster.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >/dev/null\necho 'no pushes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    run = run_cli("sync", cwd=cluster.clones["b"])
    assert run.code == 1
    assert run.err.startswith("error: git push to origin was refused")
    assert len(run.err.strip().splitlines()) == 1
    assert "Create procedure beta" not in cluster.remote("log", "--format=%s", "main")


def test_release_moved_on_server_is_never_followed(cluster: Cluster) -> None:
    cluster.do("a", "procedure.release", {"name": "x"})
    cluster.sync("a")
    cluster.sync("b")
    b = cluster.clones["b"]
    ours = cluster.tags(b)["refs/tags/procedures/x/v0.1.0"]
    first = cluster.remote("rev-list", "--max-parents=0", "main").strip()
    run_git(cluster.bare, "tag", "-f", "-a", "-m", "moved", "procedures/x/v0.1.0", first)
    result = cluster.sync("b")
    assert result.exit_code == 3
    (conflict,) = result.conflicts
    assert conflict.kind == "release" and "never moved" in conflict.message
    assert cluster.tags(b)["refs/tags/procedures/x/v0.1.0"] == ours
    again = cluster.sync("b")  # the same conflict, never a renumbering
    assert [c.kind for c in again.conflicts] == ["release"] and not again.tags
    assert cluster.tags(b)["refs/tags/procedures/x/v0.1.0"] == ours


def test_sync_table_names_the_default_remote(cluster: Cluster) -> None:
    b = cluster.clones["b"]
    run_git(b, "remote", "add", "backup", str(cluster.bare))
    toml = (b / "proctor.toml").read_text() + '\n[sync]\nremote = "backup"\nattempts = 2\n'
    (b / "proctor.toml").write_text(toml)
    run_git(b, "commit", "-qam", "Sync with the backup remote")
    result = cluster.sync("b")
    assert result.remote == "backup" and result.exit_code == 0 and result.pushed
    assert run_git(b, "rev-parse", "refs/proctor/remotes/backup/heads/main") == run_git(
        b, "rev-parse", "main"
    )
    (b / "proctor.toml").write_text(toml.replace("attempts = 2", "atempts = 2"))
    run_git(b, "commit", "-qam", "A typo")
    run = run_cli("sync", cwd=b)
    assert run.code == 2 and "unknown key(s) atempts" in run.err


def test_sync_announces_one_event_and_no_second_action_events(cluster: Cluster) -> None:
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    cluster.sync("a")
    cluster.do("b", "procedure.create", {"name": "beta", "code": CODE})
    seen: list[Any] = []
    with cluster.ws("b", event_manager(seen)) as ws:
        result = ws.sync()
    assert result.exit_code == 0
    # The replayed create was announced when it was made; its side effects do not run
    # again: the sync is one event of its own.
    assert [e.kind for e in seen] == ["sync.synced"]
    (event,) = seen
    assert (event.replayed, event.pushed, event.actor) == (1, True, "b@example.com")
    assert event.to_dict()["kind"] == "sync.synced"


# -- governance on the remote's tip -------------------------------------------------------

GATED = """\
[policy]
"procedure.delete" = "REQUIRE_PROPOSAL"

[policy.roles]
"b@example.com" = ["maintainer"]
"c@example.com" = ["maintainer"]
"""


def set_policy(cluster: Cluster, clone: str, text: str) -> None:
    """Commit ``text`` as proctor.toml on ``clone`` with plain git and push it."""
    path = cluster.clones[clone]
    (path / "proctor.toml").write_text(text)
    run_git(path, "commit", "-qam", "policy")
    run_git(path, "push", "-q", "origin", "main")


def deleted_through_a_proposal(cluster: Cluster) -> None:
    """``a`` proposes to delete x and publishes the proposal; ``b`` takes it, then
    approves it offline, which applies it there."""
    set_policy(cluster, "a", GATED)
    with cluster.ws("a") as ws:
        proposed = ws.execute("procedure.delete", {"name": "x"})
        assert proposed.status == "proposed" and proposed.proposal
        assert ws.sync().exit_code == 0
    assert cluster.sync("b").exit_code == 0
    with cluster.ws("b") as ws:
        assert ws.approve(proposed.proposal).status == "applied"


def test_a_proposal_applied_offline_is_synced_when_the_remote_still_takes_it(
    cluster: Cluster,
) -> None:
    deleted_through_a_proposal(cluster)
    cluster.do("a", "procedure.create", {"name": "other", "code": CODE})  # the remote moves
    cluster.sync("a")
    result = cluster.sync("b")
    assert result.exit_code == 0, result.conflicts
    assert "procedures/x/main.py" not in cluster.remote("ls-tree", "-r", "--name-only", "main")


@pytest.mark.parametrize(
    ("policy", "answer"),
    [
        (GATED.replace('"REQUIRE_PROPOSAL"', '"DENY"'), "DENY for procedure.delete"),
        (
            GATED + '\n[[policy.rules]]\nname = "two"\nactions = ["procedure.delete"]\n'
            'decision = "REQUIRE_PROPOSAL"\napprovals = 2\napprovers = ["role:maintainer"]\n',
            "has 1 of the 2 approval(s)",
        ),
    ],
)
def test_a_proposal_applied_offline_is_decided_again_by_the_remote_policy(
    cluster: Cluster, policy: str, answer: str
) -> None:
    """The approval that applied a proposal elsewhere is a review step; what it writes
    is the proposed action, which the remote's policy decides again (denied now, or
    wanting more approvals than the proposal has): a conflict, nothing published."""
    deleted_through_a_proposal(cluster)
    set_policy(cluster, "a", policy)
    remote_before = cluster.remote("rev-parse", "main")
    result = cluster.sync("b")
    assert result.exit_code == 3
    assert [c.kind for c in result.conflicts] == ["policy"]
    assert answer in result.conflicts[0].message
    assert cluster.remote("rev-parse", "main") == remote_before
    assert "procedures/x/main.py" in cluster.remote("ls-tree", "-r", "--name-only", "main")


def test_a_replayed_rollback_is_governed_as_the_update_it_amounts_to(cluster: Cluster) -> None:
    cluster.do("a", "procedure.release", {"name": "x"})
    cluster.do("a", "procedure.update", {"name": "x", "code": CODE2})
    assert cluster.sync("a").exit_code == 0
    assert cluster.sync("b").exit_code == 0
    cluster.do("b", "procedure.rollback", {"name": "x", "to": "0.1.0"})
    set_policy(cluster, "a", '[policy]\n"procedure.update" = "DENY"\n')
    result = cluster.sync("b")
    assert result.exit_code == 3
    assert "DENY for procedure.update" in result.conflicts[0].message
    assert cluster.remote("show", "main:procedures/x/main.py") == CODE2


def test_a_replay_is_governed_by_what_it_writes_not_by_its_trailer(cluster: Cluster) -> None:
    """A commit whose trailer names a harmless action but which deletes a procedure and
    rewrites proctor.toml is decided as that delete and that configuration change."""
    set_policy(cluster, "a", '[policy]\n"procedure.delete" = "DENY"\n"config.update" = "DENY"\n')
    assert cluster.sync("b").exit_code == 0
    b = cluster.clones["b"]
    run_git(b, "rm", "-q", "-r", "procedures/x")
    (b / "proctor.toml").write_text("")
    run_git(b, "add", "proctor.toml")
    run_git(
        b, "commit", "-q", "-m", "Update procedure x\n\nProctor-Action: procedure.update\n"
        "Proctor-Actor: b@example.com"
    )  # fmt: skip
    cluster.do("a", "procedure.create", {"name": "other", "code": CODE})
    cluster.sync("a")
    remote_before = cluster.remote("rev-parse", "main")
    result = cluster.sync("b")
    assert result.exit_code == 3
    message = result.conflicts[0].message
    assert "DENY for procedure.delete" in message or "DENY for config.update" in message
    assert "procedure.update" not in message  # not what the trailer says it is
    assert cluster.remote("rev-parse", "main") == remote_before


def test_a_proposal_made_offline_is_replayed_when_the_remote_moved(cluster: Cluster) -> None:
    set_policy(cluster, "a", GATED)
    assert cluster.sync("b").exit_code == 0
    with cluster.ws("b") as ws:
        proposed = ws.execute("procedure.delete", {"name": "x"})
    assert proposed.status == "proposed" and proposed.proposal
    cluster.do("a", "procedure.create", {"name": "other", "code": CODE})
    cluster.sync("a")
    result = cluster.sync("b")
    assert result.exit_code == 0, result.conflicts
    assert [r.action for r in result.replayed] == ["proposal.create"]
    shown = json.loads(cluster.remote("show", f"main:proposals/{proposed.proposal}.json"))
    assert shown["status"] == "pending"
    assert "procedures/x/main.py" in cluster.remote("ls-tree", "-r", "--name-only", "main")
