"""proctor import and proctor generate --all: a batch of 101 metadata-only procedures
answered by replay cassettes, interrupted by SIGINT in a real subprocess and resumed;
the state file, the refusals of --resume, the report and the progress lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, IDENTITY, git, run_cli

from proctor import Workspace
from proctor.core.errors import UsageError
from proctor.llm.backends import Reply, Request, Usage
from proctor.llm.cassettes import RecordBackend
from proctor.llm.fake import FakeBackend
from proctor.llm.generate import GenerationSettings, build_messages
from proctor.procedures.spec import ProcedureSpec

MODEL = "replay-model"


def metadata(index: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": f"add{index:03d}",
        "description": f"Add {index} to a number.",
        "parameters": [{"name": "x", "type": "int", "description": "The number."}],
        "returns": "int",
        "steps": [f"add {index} to x"],
    }
    if index % 25 == 0:  # a few carry examples, which run in the sandbox
        item["examples"] = [{"params": {"x": 1}, "expected": 1 + index}]
    return item


def code(index: int) -> str:
    return f'def run(x: int) -> int:\n    """Add {index} to a number."""\n    return x + {index}\n'


def record_cassettes(directory: Path, items: list[dict[str, Any]]) -> None:
    """One cassette per procedure, keyed by the exact request generation will make."""
    recorder = RecordBackend(FakeBackend(), directory)
    for item in items:
        spec = ProcedureSpec.model_validate(item)
        index = int(spec.name[3:])
        request = Request.build(MODEL, build_messages(spec), {})
        text = json.dumps({"code": code(index), "confidence": 0.95, "explanation": "adds"})
        recorder.write(
            request,
            Reply(text, "stop", Usage(100, 20, 120), request_id=f"req-{spec.name}", model=MODEL),
        )


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


@pytest.fixture
def batch_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    ws.close()
    items = [metadata(i) for i in range(101)]
    cassettes = tmp_path / "cassettes"
    record_cassettes(cassettes, items)
    result = run_cli("import", str(write_jsonl(tmp_path / "meta.jsonl", items)), cwd=repo)
    assert result.code == 0, result.err
    return repo, cassettes


def generate_args(cassettes: Path, *extra: str, model: str = MODEL) -> list[str]:
    return [
        "generate",
        "--all",
        "--backend",
        "replay",
        "--option",
        f"cassettes={cassettes}",
        "--model",
        model,
        *extra,
    ]


def generated_commits(repo: Path) -> list[str]:
    subjects = git(repo, "log", "--format=%s").splitlines()
    return [s.split()[2] for s in subjects if s.startswith("Generate procedure ")]


def test_101_procedures_interrupted_by_sigint_and_resumed_each_committed_once(
    batch_repo: tuple[Path, Path],
) -> None:
    repo, cassettes = batch_repo
    state_path = repo / ".git" / "proctor" / "generate-state.json"
    env = {**os.environ, **IDENTITY}
    proc = subprocess.Popen(
        [str(BIN / "proctor"), *generate_args(cassettes, "--concurrency", "4", "--json")],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = len(json.loads(state_path.read_text())["done"])
        except (FileNotFoundError, ValueError, KeyError):
            done = 0
        if done >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["status"] == "interrupted" and report["pending"] > 0
    state = json.loads(state_path.read_text())
    assert state["status"] == "interrupted"
    first = generated_commits(repo)
    # What is committed is exactly what the state says is done, nothing half-written.
    assert sorted(first) == sorted(state["done"]) and 20 <= len(first) < 101
    assert git(repo, "status", "--porcelain") == ""

    # The settings changed: refused, precisely, nothing written.
    tip = git(repo, "rev-parse", "HEAD")
    changed = run_cli(*generate_args(cassettes, "--resume", model="other-model"), cwd=repo)
    assert changed.code == 2
    assert 'model was "replay-model", now "other-model"' in changed.err
    assert git(repo, "rev-parse", "HEAD") == tip

    resumed = run_cli(*generate_args(cassettes, "--resume", "--json"), cwd=repo)
    assert resumed.code == 0, resumed.err
    final = json.loads(resumed.out)
    assert final["status"] == "finished"
    assert (final["total"], final["applied"], final["failed"], final["pending"]) == (101, 101, 0, 0)
    assert final["resumed_done"] == len(first) and final["auto_extraction_rate"] == 1.0
    names = generated_commits(repo)
    assert len(names) == 101 and len(set(names)) == 101  # each exactly once
    assert sorted(names) == [f"add{i:03d}" for i in range(101)]
    with Workspace.open(repo) as ws:
        assert ws.get_procedure("add050").code == code(50)
        gen = ws.get_procedure("add050").spec.generation
        assert gen is not None and gen.examples is not None and gen.examples["passed"] == 1
    again = run_cli(*generate_args(cassettes, "--resume"), cwd=repo)
    assert again.code == 2 and "finished" in again.err


def small_store(tmp_path: Path, count: int) -> tuple[Path, Path, GenerationSettings]:
    repo = tmp_path / "repo"
    items = [metadata(i + 1) for i in range(count)]
    cassettes = tmp_path / "cassettes"
    record_cassettes(cassettes, items)
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    with ws:
        assert ws.import_procedures(items).status == "applied"
    settings = GenerationSettings("replay", MODEL, options={"cassettes": str(cassettes)})
    return repo, cassettes, settings


def interrupt_after(count: int) -> Any:
    seen = [0]

    def progress(item: Any, state: Any) -> None:
        seen[0] += 1
        if seen[0] == count:
            os.kill(os.getpid(), signal.SIGINT)

    return progress


def test_resume_refuses_when_the_input_changed(tmp_path: Path) -> None:
    repo, _cassettes, settings = small_store(tmp_path, 4)
    with Workspace.open(repo) as ws:
        report = ws.generate_all(settings, concurrency=1, progress=interrupt_after(1))
        # The signal is handled at the loop's next turn: the item after the one that
        # sent it may still finish.
        assert report.interrupted and report.exit_code == 130
        assert report.applied in (1, 2) and report.applied + report.pending == 4
        done = report.applied
        ws.import_procedures([metadata(90)])
    with Workspace.open(repo) as ws:
        with pytest.raises(UsageError, match=r"input changed.*new metadata-only procedures add090"):
            ws.generate_all(settings, resume=True)
        with pytest.raises(UsageError, match=rf"unfinished batch \({done} of 4 done\).*--resume"):
            ws.generate_all(settings)
        report = ws.generate_all(settings, restart=True)
        assert report.failed == 1  # add090 has no cassette
        (failed,) = [i for i in report.items if i.outcome == "failed"]
        assert failed.name == "add090" and "no cassette" in (failed.error or "")
        # A fresh batch: what is left (the 4 - done not generated, and add090).
        assert report.applied == 4 - done and report.total == 5 - done


def test_resume_counts_a_commit_the_state_missed_as_done(tmp_path: Path) -> None:
    repo, _cassettes, settings = small_store(tmp_path, 3)
    state_path = repo / ".git" / "proctor" / "generate-state.json"
    with Workspace.open(repo) as ws:
        report = ws.generate_all(settings, concurrency=1, progress=interrupt_after(1))
        assert report.interrupted and report.pending >= 1
    # As if the process died between the commit and the state write.
    state = json.loads(state_path.read_text())
    state["done"].pop("add001")
    state_path.write_text(json.dumps(state))
    with Workspace.open(repo) as ws:
        report = ws.generate_all(settings, resume=True)
    assert (report.applied, report.total, report.pending) == (3, 3, 0)
    assert sorted(generated_commits(repo)) == ["add001", "add002", "add003"]


def test_resume_with_nothing_recorded_is_refused(tmp_path: Path) -> None:
    repo, _cassettes, settings = small_store(tmp_path, 1)
    with Workspace.open(repo) as ws, pytest.raises(UsageError, match="nothing to resume"):
        ws.generate_all(settings, resume=True)


def test_failed_items_report_their_request_ids(tmp_path: Path) -> None:
    repo, cassettes, _settings = small_store(tmp_path, 2)
    # add002's model answer never parses: re-asked, then given up; its ids are reported.
    spec = ProcedureSpec.model_validate(metadata(2))
    first = Request.build(MODEL, build_messages(spec), {})
    RecordBackend(FakeBackend(), cassettes).write(
        first, Reply("no json here", "stop", request_id="req-bad-1")
    )
    result = run_cli(*generate_args(cassettes, "--option", "x=1"), cwd=repo)
    assert result.code == 2 and "unknown options" in result.err  # bad backend options: exit 2
    with Workspace.open(repo) as ws:
        report = ws.generate_all(
            GenerationSettings("replay", MODEL, options={"cassettes": str(cassettes)}, max_reasks=0)
        )
    (failed,) = [i for i in report.items if i.outcome == "failed"]
    assert failed.name == "add002" and failed.request_ids == ["req-bad-1"]
    assert report.exit_code == 1


def test_cli_plain_progress_lines_report_and_trace_ids(tmp_path: Path) -> None:
    repo, cassettes, _settings = small_store(tmp_path, 2)
    (cassettes / os.listdir(cassettes)[0]).unlink()  # one item fails: no cassette
    result = run_cli(*generate_args(cassettes, "--trace-ids", "--concurrency", "1"), cwd=repo)
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if line.startswith("[")]
    assert len(lines) == 2 and " applied (confidence 0.85)" in lines[1]
    assert lines[0].startswith("[1/2] add001 failed: no cassette")
    assert "2 procedure(s): 1 applied, 0 proposed, 1 failed" in result.out
    assert "auto-extraction rate 50%" in result.out
    assert "trace ids of add00" in result.out
    quiet = run_cli(*generate_args(cassettes, "--json", "--restart"), cwd=repo)
    assert quiet.code == 1 and not [x for x in quiet.err.splitlines() if x.startswith("[")]
    assert json.loads(quiet.out)["failed"] == 1


# -- import ------------------------------------------------------------------------------------


def test_import_makes_valid_metadata_only_procedures(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    Workspace.init(repo)[0].close()
    source = tmp_path / "meta"
    (source / "b").mkdir(parents=True)
    (source / "a.json").write_text(json.dumps(metadata(1)))
    (source / "b" / "metadata.json").write_text(json.dumps(metadata(2)))
    result = run_cli("import", str(source), "--json", cwd=repo)
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "applied"
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", "procedures").split() == [
        "procedures/add001/metadata.json",
        "procedures/add002/metadata.json",
    ]
    listed = run_cli("procedure", "list", cwd=repo)
    assert "add001" in listed.out and "add002" in listed.out
    assert run_cli("procedure", "show", "add001", cwd=repo).code == 0
    assert run_cli("run", "add001", "-p", "x=1", cwd=repo).code == 2  # no code yet
    # Importing the same again changes nothing and says so; a clash refuses all.
    tip = git(repo, "rev-parse", "HEAD")
    same = run_cli("import", str(source), cwd=repo)
    assert same.code == 2 and "nothing to import" in same.err
    clash = dict(metadata(1), description="Something else.")
    bad = run_cli("import", str(write_jsonl(tmp_path / "c.jsonl", [metadata(3), clash])), cwd=repo)
    assert bad.code == 2 and "already exists" in bad.err
    assert git(repo, "rev-parse", "HEAD") == tip


def test_import_refuses_invalid_metadata_with_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    Workspace.init(repo)[0].close()
    path = tmp_path / "bad.jsonl"
    path.write_text('{"name": "ok1"}\n{"name": "Bad Name"}\nnot json\n')
    result = run_cli("import", str(path), cwd=repo)
    assert result.code == 2 and "bad.jsonl:3: not valid JSON" in result.err
    assert "Traceback" not in result.err
    path.write_text('{"name": "ok1"}\n{"name": "Bad Name"}\n')
    result = run_cli("import", str(path), cwd=repo)
    assert result.code == 2 and "item 2" in result.err and "Traceback" not in result.err
    assert run_cli("import", str(tmp_path / "missing.jsonl"), cwd=repo).code == 2


def test_cache_validate_and_purge_count(tmp_path: Path) -> None:
    repo, _cassettes, settings = small_store(tmp_path, 2)
    with Workspace.open(repo) as ws:
        ws.generate_all(settings)
    result = run_cli("cache", "validate", "--json", cwd=repo)
    assert result.code == 0 and json.loads(result.out)["valid"] == 2
    objects = sorted((repo / ".git" / "proctor" / "llm-cache" / "objects").rglob("*.json"))
    objects[0].write_text("{}")
    result = run_cli("cache", "validate", cwd=repo)
    assert result.code == 1 and "1 corrupt" in result.out and "1 removed" in result.out
    result = run_cli("cache", "purge", cwd=repo)
    assert result.code == 0 and result.out.strip() == "removed 1 cached reply"


def test_sigterm_stops_the_batch_cleanly_too(tmp_path: Path) -> None:
    repo, cassettes, _settings = small_store(tmp_path, 12)
    state_path = repo / ".git" / "proctor" / "generate-state.json"
    proc = subprocess.Popen(
        [str(BIN / "proctor"), *generate_args(cassettes, "--concurrency", "1")],
        cwd=repo,
        env={**os.environ, **IDENTITY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(state_path.read_text())["done"]:
                break
        except (FileNotFoundError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.startswith("interrupted: 12 procedure(s)") and "--resume" in err
    state = json.loads(state_path.read_text())
    assert state["status"] == "interrupted"
    assert sorted(generated_commits(repo)) == sorted(state["done"])


def test_cli_generate_one_procedure_and_its_bad_input(tmp_path: Path) -> None:
    repo, cassettes, _settings = small_store(tmp_path, 1)
    none = run_cli("generate", "add001", cwd=repo)
    assert none.code == 2 and none.err.startswith("error: no model to generate with")
    both = run_cli("generate", "add001", "--all", cwd=repo)
    assert both.code == 2 and "give one NAME or --all" in both.err
    args = ["--backend", "replay", "--option", f"cassettes={cassettes}", "--model", MODEL]
    result = run_cli("generate", "add001", *args, "--json", cwd=repo)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["status"], data["action"], data["band"], data["confidence"]) == (
        "applied",
        "procedure.generate",
        "apply",
        0.855,
    )
    assert data["commit"] == git(repo, "rev-parse", "HEAD").strip()
    again = run_cli("generate", "add001", *args, cwd=repo)
    assert again.code == 2 and "already has code" in again.err and "Traceback" not in again.err
