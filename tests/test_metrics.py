"""Metrics: counted from the events, summed over every process of a clone, exposed in the
Prometheus text format; the documented list is exactly the exported one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import GREET, git, run_cli
from effects_receiver import Receiver
from prometheus_client.parser import text_string_to_metric_families

from proctor import Workspace
from proctor.core.errors import ConcurrencyError
from proctor.core.events import ActionEvent, RunEvent
from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import PluginInfo, PluginManager
from proctor.engine.actions import ActionType, Params
from proctor.plugins import BUILTIN_PLUGINS, plugin_manager
from proctor.plugins.metrics import METRICS, exposition
from proctor.store.gitstore import Change

DOC = Path(__file__).parent.parent / "docs" / "metrics.md"
ACTOR = "ana@example.com"


def samples(repo: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = exposition(repo / ".git")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(repo: Path, name: str, **labels: str) -> float | None:
    return samples(repo).get((name, frozenset(labels.items())))


def test_the_doc_lists_exactly_the_exported_metrics(repo: Path) -> None:
    rows = re.findall(r"^\| `(proctor_\w+)` \| (\w+) \| ([^|]*) \|", DOC.read_text(), re.MULTILINE)
    documented = {(name, kind, labels.strip()) for name, kind, labels in rows}
    exported = {(m.name, m.type, ", ".join(f"`{label}`" for label in m.labels)) for m in METRICS}
    assert documented == exported
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    families = {f.name for f in text_string_to_metric_families(exposition(repo / ".git"))}
    # prometheus_client names a counter family without its _total suffix.
    assert families == {m.name.removesuffix("_total") for m in METRICS}


def test_actions_are_counted_across_processes(repo: Path, tmp_path: Path) -> None:
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    assert run_cli("procedure", "create", "a", "--code", str(code), cwd=repo).code == 0
    assert run_cli("procedure", "create", "b", "--code", str(code), cwd=repo).code == 0
    bad = run_cli("procedure", "create", "c", "--code", str(tmp_path / "missing.py"), cwd=repo)
    assert bad.code == 2
    dup = run_cli("procedure", "create", "a", "--code", str(code), cwd=repo)
    assert dup.code != 0

    printed = run_cli("metrics", cwd=repo)
    assert printed.code == 0, printed.err
    assert 'proctor_actions_total{action="procedure.create",outcome="applied"} 2.0' in printed.out
    assert 'proctor_actions_total{action="procedure.create",outcome="failed"} 1.0' in printed.out
    assert 'proctor_cas_backoff_seconds_count{action="procedure.create"} 2.0' in printed.out

    target = tmp_path / "textfile" / "proctor.prom"
    target.parent.mkdir()
    written = run_cli("metrics", "--textfile", str(target), cwd=repo)
    assert written.code == 0, written.err
    assert target.read_text() == printed.out
    assert [p.name for p in target.parent.iterdir()] == ["proctor.prom"]


def test_the_textfile_replaces_only_a_regular_file(repo: Path, tmp_path: Path) -> None:
    """``--textfile`` renames over its path: a FIFO, a folder or a link there (or a
    device, as ``/dev/null`` would be) is refused with exit 2 and left as it was, and no
    temporary file stays behind."""
    import os
    import stat

    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "fifo")
    (out / "adir").mkdir()
    (out / "real.prom").write_text("old\n")
    os.symlink(out / "real.prom", out / "link")
    for name in ("fifo", "adir", "link"):
        done = run_cli("metrics", "--textfile", str(out / name), cwd=repo)
        assert done.code == 2, (name, done.err)
        assert "not a regular file" in done.err and "Traceback" not in done.err
    assert stat.S_ISFIFO(os.lstat(out / "fifo").st_mode)
    assert os.path.islink(out / "link") and (out / "real.prom").read_text() == "old\n"
    assert sorted(p.name for p in out.iterdir()) == ["adir", "fifo", "link", "real.prom"]
    assert run_cli("metrics", "--textfile", "", cwd=repo).code == 2  # not stdout in disguise
    assert run_cli("metrics", "--textfile", str(out / "real.prom"), cwd=repo).code == 0
    assert "proctor_" in (out / "real.prom").read_text()


# -- compare-and-swap retries, backoff, exhaustion, conflicts --------------------------------


class NoteParams(Params):
    name: str


class Racing(ActionType):
    """Writes a note; while ``moves`` lasts, each build first moves the branch as another
    writer would (``touch``: that writer changes the same note)."""

    api_name = "test.race"
    Params = NoteParams
    repo: ClassVar[Path]
    moves: ClassVar[int] = 0
    touch: ClassVar[bool] = False

    def apply(self, params: Any, context: Any) -> Change:
        if Racing.moves > 0:
            Racing.moves -= 1
            other_writer(Racing.repo, f"notes/{params.name}.txt" if Racing.touch else None)
        return Change(edits={f"notes/{params.name}.txt": b"note\n"}, message="Write a note")


def other_writer(repo: Path, path: str | None) -> None:
    """A commit by someone else, straight onto the branch (git plumbing, no proctor)."""
    if path is None:
        tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    else:
        blob = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=b"theirs\n",
            capture_output=True,
            check=True,
        ).stdout.decode()
        tree = subprocess.run(
            ["git", "mktree"],
            cwd=repo,
            input=f"040000 tree {make_dir(repo, path, blob.strip())}\tnotes\n".encode(),
            capture_output=True,
            check=True,
        ).stdout.decode()
    commit = git(repo, "commit-tree", tree.strip(), "-p", "HEAD", "-m", "theirs").strip()
    git(repo, "update-ref", "refs/heads/main", commit)


def make_dir(repo: Path, path: str, blob: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return (
        subprocess.run(
            ["git", "mktree"],
            cwd=repo,
            input=f"100644 blob {blob}\t{name}\n".encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )


class RacingPlugin:
    @hookimpl
    def proctor_register_actions(self, register: Any) -> None:
        register(Racing)


def racing_workspace(repo: Path) -> Workspace:
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    manager = PluginManager()
    manager.load_builtins(table=BUILTIN_PLUGINS)
    manager.register("racing", RacingPlugin(), PluginInfo(name="racing", module="tests.racing"))
    Racing.repo = repo
    return Workspace.open(repo, actor=ACTOR, plugins=manager)


def test_cas_retries_and_backoff_are_counted(repo: Path) -> None:
    Racing.moves, Racing.touch = 2, False
    with racing_workspace(repo) as ws:
        result = ws.execute("test.race", {"name": "n"})
    assert result.status == "applied"
    assert result.attempts == 3
    assert value(repo, "proctor_cas_retries_total", action="test.race") == 2.0
    assert value(repo, "proctor_cas_backoff_seconds_count", action="test.race") == 1.0
    backoff = value(repo, "proctor_cas_backoff_seconds_sum", action="test.race")
    assert backoff is not None and backoff > 0
    assert value(repo, "proctor_cas_retries_exhausted_total", action="test.race") is None


def test_exhausted_retries_are_counted(repo: Path) -> None:
    Racing.moves, Racing.touch = 100, False
    with racing_workspace(repo) as ws, pytest.raises(ConcurrencyError, match="kept moving"):
        ws.execute("test.race", {"name": "n"})
    Racing.moves = 0
    assert value(repo, "proctor_cas_retries_exhausted_total", action="test.race") == 1.0
    assert value(repo, "proctor_cas_retries_total", action="test.race") == 7.0
    assert value(repo, "proctor_actions_total", action="test.race", outcome="failed") == 1.0
    assert value(repo, "proctor_version_conflict_delta_count", action="test.race") == 1.0


def test_a_conflict_on_a_touched_path_records_how_far_the_store_moved(repo: Path) -> None:
    Racing.moves, Racing.touch = 1, True
    with racing_workspace(repo) as ws, pytest.raises(ConcurrencyError, match="changed by"):
        ws.execute("test.race", {"name": "n"})
    assert value(repo, "proctor_version_conflict_delta_sum", action="test.race") == 1.0
    assert value(repo, "proctor_version_conflict_delta_bucket", action="test.race", le="1.0") == 1.0
    assert value(repo, "proctor_cas_retries_exhausted_total", action="test.race") is None


# -- proposals, runs, side effects ---------------------------------------------------------


def announce(repo: Path, event: Any) -> None:
    assert plugin_manager().emit(event) == ()


def test_proposals_are_counted_by_the_status_they_reach(repo: Path) -> None:
    store = str(repo / ".git")
    for action, status in [
        ("procedure.delete", "proposed"),
        ("proposal.approve", "applied"),
        ("proposal.approve", "applied"),
        ("proposal.reject", "applied"),
        ("proposal.apply", "failed"),
        ("proposal.apply", "applied"),
    ]:
        announce(
            repo,
            ActionEvent(actor=ACTOR, correlation_id="c", store=store, action=action, status=status),  # type: ignore[arg-type]
        )
    assert value(repo, "proctor_proposals_total", status="pending") == 1.0
    assert value(repo, "proctor_proposals_total", status="approved") == 2.0
    assert value(repo, "proctor_proposals_total", status="rejected") == 1.0
    assert value(repo, "proctor_proposals_total", status="failed") == 1.0
    assert value(repo, "proctor_proposals_total", status="applied") == 1.0


def test_runs_are_counted_by_status(repo: Path) -> None:
    store = str(repo / ".git")
    for status in ("ok", "ok", "timeout"):
        announce(
            repo,
            RunEvent(
                actor=ACTOR,
                correlation_id="r",
                store=store,
                run_id="r",
                procedure="greet",
                version="0.1.0",
                commit="0" * 40,
                status=status,  # type: ignore[arg-type]
            ),
        )
    assert value(repo, "proctor_runs_total", procedure="greet", status="ok") == 2.0
    assert value(repo, "proctor_runs_total", procedure="greet", status="timeout") == 1.0


def test_side_effects_are_counted_by_outcome_with_their_latency(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s")
    with Receiver(script=[(401, {})]) as receiver:
        (repo / "proctor.toml").write_text(
            f'[side-effects.hook]\ntype = "webhook"\nurl = "{receiver.url}"\n'
            'secret-env = "HOOK_SECRET"\n'
        )
        git(repo, "add", "proctor.toml")
        git(repo, "commit", "-q", "-m", "hook")
        with Workspace.open(repo, actor=ACTOR) as ws:
            ws.execute("procedure.create", {"name": "a", "code": GREET})
            ws.execute("procedure.create", {"name": "b", "code": GREET})
    labels = {"effect": "hook", "type": "webhook"}
    assert value(repo, "proctor_side_effects_total", **labels, outcome="failed") == 1.0
    assert value(repo, "proctor_side_effects_total", **labels, outcome="delivered") == 1.0
    assert value(repo, "proctor_side_effect_seconds_count", **labels) == 2.0


def test_help_does_not_import_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from proctor.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "assert 'sqlite3' not in sys.modules\n"
        "assert 'urllib.request' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_folding_the_log_counts_each_increment_once_across_a_crash(repo: Path) -> None:
    """State a fold killed between writing the totals and deleting its file leaves
    behind: the next fold deletes the file without adding it again."""
    import json

    from proctor.plugins.metrics import metrics_dir

    store = str(repo / ".git")
    event = ActionEvent(actor=ACTOR, correlation_id="c", store=store, action="x", status="applied")
    announce(repo, event)
    assert value(repo, "proctor_actions_total", action="x", outcome="applied") == 1.0
    directory = metrics_dir(store)
    totals = json.loads((directory / "totals.json").read_text())
    line = (json.dumps([["proctor_actions_total", json.dumps(["x", "applied"]), "", 1.0]])) + "\n"
    (directory / "fold-crashed.jsonl").write_text(line)
    slot = "proctor_actions_total\x00" + json.dumps(["x", "applied"]) + "\x00"
    totals["samples"][slot] += 1.0
    totals["folded"] = ["fold-crashed.jsonl"]
    (directory / "totals.json").write_text(json.dumps(totals))
    announce(repo, event)
    assert value(repo, "proctor_actions_total", action="x", outcome="applied") == 3.0
    assert sorted(p.name for p in directory.iterdir()) == ["lock", "totals.json"]


BATCH = r"""
import sys, time
from proctor.core.events import LlmEvent
from proctor.plugins.metrics import proctor_on_event

store, batch, levels = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
for level in levels:
    proctor_on_event(LlmEvent(actor="a", correlation_id=batch, store=store, what="queue",
                              inflight=level, submitted=10, completed=0))
print("ready", flush=True)
sys.stdin.readline()  # stays running, its items in flight, until told or killed
"""


def test_the_inflight_gauge_sums_the_batches_still_running(repo: Path, tmp_path: Path) -> None:
    """Two batches in their own processes with 3 and 2 items in flight: the gauge says 5.
    One is killed with its items in flight: they stop counting. The other reaches 0 and
    ends: the gauge is 0 and no file is left."""
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    script = tmp_path / "batch.py"
    script.write_text(BATCH)
    store = str(repo / ".git")

    def start(batch: str, levels: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(script), store, batch, levels],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        return child

    first = start("batch-a", "1,2,3")
    second = start("batch-b", "4,2")
    try:
        assert value(repo, "proctor_llm_queue_inflight") == 5
        first.kill()
        first.wait()
        assert value(repo, "proctor_llm_queue_inflight") == 2
    finally:
        first.kill()
        second.kill()
        second.wait()
    finished = start("batch-c", "2,1,0")
    finished.communicate("\n")
    assert value(repo, "proctor_llm_queue_inflight") == 0
    assert list((repo / ".git/proctor/metrics/inflight").glob("*.json")) == []
