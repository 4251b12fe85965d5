"""Three clones of one store on a real ``git daemon``, two writer processes in each (one
of them syncing after every write), all at once; then a final sync everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from proctor import Workspace
from tests.gitdaemon import GitServer, run_git
from tests.gitdaemon import git_server as git_server  # the fixture

WORKER = Path(__file__).with_name("sync_worker.py")
CODE = 'def run(name: str) -> str:\n    return "hello " + name\n'


def refs(repo: Path, prefix: str) -> dict[str, str]:
    out = run_git(repo, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split(" ") for line in out.splitlines())


def test_three_clones_writing_and_syncing_at_once_lose_nothing(
    git_server: GitServer, tmp_path: Path
) -> None:
    bare = git_server.bare()
    clones = [git_server.clone("store.git", tmp_path / name) for name in ("a", "b", "c")]
    ws, _ = Workspace.init(clones[0])
    with ws:
        ws.execute("procedure.create", {"name": "common", "code": CODE})
        assert ws.sync().exit_code == 0
    for clone in clones[1:]:
        with Workspace.open(clone) as ws:
            assert ws.sync().exit_code == 0
    logs = []
    procs = []
    for i, clone in enumerate(clones):
        for j, syncs in enumerate((True, False)):
            log = tmp_path / f"{clone.name}{j}.jsonl"
            logs.append(log)
            cmd = [sys.executable, str(WORKER), str(clone), f"{clone.name}{j}", str(log)]
            cmd += ["--rounds", "5", "--seed", str(i * 10 + j)]
            if syncs:
                cmd.append("--sync")
            procs.append(subprocess.Popen(cmd, stderr=subprocess.PIPE))
    for proc in procs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
    # The final sync everywhere: twice round, so every clone has every other's last work.
    final = []
    for _round in range(2):
        for clone in clones:
            with Workspace.open(clone) as ws:
                result = ws.sync()
            assert result.exit_code == 0, result.conflicts
            final += [[t.name, t.status, t.final] for t in result.tags]
    entries = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    actions = [e for e in entries if e["kind"] == "action"]
    syncs = [e for e in entries if e["kind"] == "sync"]
    assert len(actions) >= 15 and len(syncs) == 15
    # No conflict other than "the remote kept moving" while everyone wrote at once.
    assert all(c[0] == "push" for s in syncs for c in s["conflicts"])
    # Nothing lost: every applied commit's correlation id is on the remote's history.
    on_remote = run_git(
        bare, "log", "--format=%(trailers:key=Proctor-Correlation-Id,valueonly)", "main"
    )
    remote_ids = set(on_remote.split())
    commits = [a for a in actions if a["commit"] and not a["action"].endswith("release")]
    assert commits and {a["corr"] for a in commits} <= remote_ids
    # Every release is on the remote under its tag, renumbered, or adopted (the same
    # code was released by another clone); none withdrawn.
    tag_ids = set()
    for tag in refs(bare, "refs/tags/"):
        message = run_git(bare, "cat-file", "tag", tag)
        tag_ids.update(
            line.split(": ", 1)[1]
            for line in message.splitlines()
            if line.startswith("Proctor-Correlation-Id: ")
        )
    outcomes = [t for s in syncs for t in s["tags"]] + final
    assert not [t for t in outcomes if t[1] == "withdrawn"]
    adopted = {t[0] for t in outcomes if t[1] == "adopted"}
    for release in (a for a in actions if a["action"] == "procedure.release"):
        assert release["corr"] in tag_ids or set(release["tags"]) & adopted, release
    # Every clone ends where the remote is, with the same tag objects for the same names.
    tip = run_git(bare, "rev-parse", "main").strip()
    remote_tags = refs(bare, "refs/tags/")
    assert remote_tags
    for clone in clones:
        assert run_git(clone, "rev-parse", "main").strip() == tip
        assert refs(clone, "refs/tags/") == remote_tags
        assert run_git(clone, "status", "--porcelain") == ""
    # Every release names a commit of the branch's history.
    for tag in remote_tags:
        run_git(bare, "merge-base", "--is-ancestor", tag + "^{commit}", "main")
