"""``proctor run`` and ``Workspace.run``: versions resolved from git objects, params
checked, the code checked (cached by blob), capabilities resolved against the
repository, every status with its exit code, events, and the async face. Every run is a
real sandboxed interpreter; the run log is the real SQLite file under .git/proctor."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import git, run_cli
from runs_helpers import BEHAVE, GREET, create, event_manager, greet_metadata, make_store

from proctor import Workspace
from proctor.core.errors import ConfigError, NotFoundError, UsageError
from proctor.core.events import RunEvent
from proctor.runs.params import ParamsError

V2 = GREET.replace('"Hello, "', '"Hi, "')


def runs_in_log(repo: Path) -> list[tuple[str, str, str]]:
    path = repo / ".git" / "proctor" / "runs.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT id, version, status FROM proctor_runs ORDER BY started"
        ).fetchall()


@pytest.fixture
def released(repo: Path) -> Path:
    """greet released as 0.1.0 ("Hello"), then updated on the tip ("Hi"), unreleased."""
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata(), release=True)
    create(repo, "greet", V2, greet_metadata())
    return repo


def test_versions_resolve_from_git_objects_never_the_work_tree(released: Path) -> None:
    # An uncommitted edit in the work tree must not be what runs.
    (released / "procedures/greet/main.py").write_text(
        'def run(name: str, punctuation: str = "!") -> str:\n    return "dirty"\n'
    )
    with Workspace.open(released) as ws:
        release = ws.procedures.latest_release("greet")
        assert release is not None
        tip = ws.store.read_ref(ws.ref)

        default = ws.run("greet", {"name": "Ada"})
        assert (default.status, default.value) == ("ok", "Hello, Ada!")
        assert (default.version, default.commit) == ("0.1.0", release.commit)

        at_tip = ws.run("greet@tip", {"name": "Ada"})
        assert at_tip.value == "Hi, Ada!"
        assert at_tip.version == tip[:12] and at_tip.commit == tip

        by_release = ws.run("greet", {"name": "Bo"}, version="v0.1.0")
        assert (by_release.value, by_release.version) == ("Hello, Bo!", "0.1.0")
        # A sha that is a release's commit counts as that release.
        by_sha = ws.run("greet", {"name": "Cy"}, version=release.commit)
        assert (by_sha.value, by_sha.version) == ("Hello, Cy!", "0.1.0")

        with pytest.raises(
            NotFoundError, match=r"unknown version 9\.9\.9 of greet \(releases: 0\.1\.0\)"
        ):
            ws.run("greet", {"name": "x"}, version="9.9.9")
        with pytest.raises(NotFoundError, match="unknown procedure 'nope'"):
            ws.run("nope", {})
        with pytest.raises(UsageError, match="invalid procedure name"):
            ws.run("Bad-Name", {})
        for record in (default, at_tip, by_release, by_sha):
            assert record.recorded and record.level is not None
    assert [v for _, v, _ in runs_in_log(released)] == ["0.1.0", tip[:12], "0.1.0", "0.1.0"]


def test_a_procedure_never_released_runs_at_its_tip(repo: Path) -> None:
    make_store(repo)
    create(repo, "greet", GREET, greet_metadata())
    with Workspace.open(repo) as ws:
        record = ws.run("greet", {"name": "Ada", "punctuation": "?"})
    assert record.value == "Hello, Ada?"
    assert record.version == git(repo, "rev-parse", "HEAD").strip()[:12]


def test_bad_params_are_usage_errors_and_nothing_is_recorded(released: Path) -> None:
    with Workspace.open(released) as ws, pytest.raises(ParamsError) as info:
        ws.run("greet", {"nmae": "Ada"})
    assert info.value.problems == [
        "unknown parameter 'nmae' (takes name, punctuation)",
        "missing required parameter 'name' (str)",
    ]
    r = run_cli("run", "greet", "-p", "name=1", "-p", "bogus=2", "--json", cwd=released)
    assert r.code == 2
    out = json.loads(r.out)
    assert out["status"] == "invalid" and out["error"] == "ParamsError"
    assert out["errors"] == ["unknown parameter 'bogus' (takes name, punctuation)"]
    r = run_cli("run", "greet", "-p", "name", cwd=released)
    assert r.code == 2 and "-p expects KEY=VALUE" in r.err
    assert runs_in_log(released) == []


def test_every_status_has_its_exit_code(repo: Path) -> None:
    make_store(repo, "[runs.limits]\noutput = 1024\noutput-max = 65536\n")
    create(repo, "behave", BEHAVE)
    r = run_cli("run", "behave", "-p", "mode=ok", cwd=repo)
    assert (r.code, r.out) == (0, '{"mode": "ok"}\n')
    assert "behave " in r.err and ": ok in " in r.err

    r = run_cli("run", "behave", "-p", "mode=raise", cwd=repo)
    assert r.code == 4 and r.out == ""
    assert "ValueError: boom: raise" in r.err and "Traceback" in r.err

    r = run_cli("run", "behave", "-p", "mode=spin", "--timeout", "0.5", "--json", cwd=repo)
    assert r.code == 5
    assert json.loads(r.out)["status"] == "timeout"

    r = run_cli("run", "behave", "-p", "mode=flood", "--json", cwd=repo)
    out = json.loads(r.out)
    assert (r.code, out["status"], out["exit_code"]) == (6, "killed", 6)
    assert out["stdout_truncated"] and len(out["stdout"]) <= 1024

    statuses = [s for _, _, s in runs_in_log(repo)]
    assert statuses == ["ok", "error", "timeout", "killed"]


def test_code_that_fails_the_checks_is_denied_and_recorded(repo: Path) -> None:
    """A revision proctor never checked (a plain git commit) is checked before it runs."""
    make_store(repo)
    proc = repo / "procedures" / "sneaky"
    proc.mkdir(parents=True)
    (proc / "main.py").write_text("import os\n\n\ndef run():\n    return os.system('id')\n")
    (proc / "metadata.json").write_text(json.dumps({"name": "sneaky"}))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "sneak a procedure in")
    sha = git(repo, "rev-parse", "HEAD").strip()
    r = run_cli("run", f"sneaky@{sha}", "--json", cwd=repo)
    assert r.code == 7, r.err
    out = json.loads(r.out)
    assert out["status"] == "denied" and out["level"] is None
    assert out["reason"].startswith("the code does not pass the checks: procedures/sneaky/main.py:")
    assert [s for _, _, s in runs_in_log(repo)] == ["denied"]


def test_the_check_verdict_is_cached_by_blob(released: Path) -> None:
    with Workspace.open(released) as ws:
        assert ws.run("greet", {"name": "a"}).status == "ok"
        cached = list((released / ".git/proctor/checked").glob("*.json"))
        assert len(cached) == 1
        blob = git(released, "rev-parse", "procedures/greet/v0.1.0:procedures/greet/main.py")
        assert json.loads(cached[0].read_text()) == {"blob": blob.strip(), "errors": []}
        # The next run reads the verdict rather than checking again: a verdict edited on
        # disk is what it finds.
        cached[0].write_text(json.dumps({"blob": blob.strip(), "errors": ["planted finding"]}))
        second = ws.run("greet", {"name": "a"})
    assert second.status == "denied"
    assert second.reason == "the code does not pass the checks: planted finding"


WRITER = """\
def run(directory: str) -> str:
    with open(directory + "/result.txt", "w") as fh:
        fh.write("written")
    return "done"
"""


def writer_metadata(paths: list[str]) -> dict[str, object]:
    return {
        "name": "writer",
        "parameters": [{"name": "directory", "type": "str", "required": True}],
        "capabilities": {"filesystem_write": paths},
    }


def test_filesystem_write_paths_are_relative_to_the_repository(repo: Path) -> None:
    make_store(repo)
    create(repo, "writer", WRITER, writer_metadata(["out"]))
    (repo / "out").mkdir()
    with Workspace.open(repo) as ws:
        record = ws.run("writer", {"directory": str(repo / "out")})
        assert record.status == "ok", record
        assert (repo / "out/result.txt").read_text() == "written"
        # Beside the granted path, nothing reaches the host: refused (level 0's
        # rlimits do not isolate files, so only where the machine offers more), or
        # written into the sandbox's own private tmpfs and gone with it.
        beside = ws.run("writer", {"directory": str(repo)})
    if beside.level:
        assert beside.status in ("ok", "error"), beside
        assert beside.status == "ok" or beside.error_type == "PermissionError"
        assert not (repo / "result.txt").exists()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (".git/hooks", "filesystem_write path .git/hooks is inside the repository's git directory"),
        ("missing", "filesystem_write path missing does not exist"),
    ],
)
def test_a_capability_that_cannot_be_granted_is_denied(repo: Path, path: str, reason: str) -> None:
    make_store(repo)
    create(repo, "writer", WRITER, writer_metadata([path]))
    hooks = sorted(p.name for p in (repo / ".git/hooks").iterdir())
    r = run_cli("run", "writer", "-p", f"directory={repo / path}", "--json", cwd=repo)
    assert r.code == 7
    out = json.loads(r.out)
    assert out["status"] == "denied" and out["reason"].startswith(reason)
    assert sorted(p.name for p in (repo / ".git/hooks").iterdir()) == hooks


@pytest.mark.parametrize("min_level", [0, 1, 2])
def test_the_configured_minimum_level_holds(repo: Path, min_level: int) -> None:
    """Without namespaces, level 1 is out of reach and level 2 only through the
    Landlock fallback: a run reaches at least ``min-level`` or is denied saying why."""
    from proctor.runs.sandbox import probe

    make_store(repo, f'[runs]\nmin-level = {min_level}\ndisable = ["namespaces"]\n')
    create(repo, "greet", GREET, greet_metadata())
    with Workspace.open(repo) as ws:
        record = ws.run("greet", {"name": "Ada"})
    best = probe(namespaces=False).best
    if best is not None and best >= min_level:
        assert record.status == "ok" and record.level == best
        assert record.level >= min_level
        # [runs] disable reached the sandbox: no bubblewrap namespaces were used.
        assert not record.layers["namespaces"].startswith("bubblewrap")
    else:
        assert record.status == "denied" and record.level is None
        assert record.reason and f"level {min_level} required" in record.reason


def test_runs_are_announced_as_events(released: Path) -> None:
    seen: list[object] = []
    with Workspace.open(released, plugins=event_manager(seen)) as ws:
        ok = ws.run("greet", {"name": "Ada"})
        denied = ws.run("greet", {"name": "Ada"}, timeout=1e-9)
    events = [e for e in seen if isinstance(e, RunEvent)]
    assert [e.kind for e in events] == ["run.ok", f"run.{denied.status}"]
    assert events[0].run_id == ok.run_id == events[0].correlation_id
    assert (events[0].procedure, events[0].version, events[0].level) == ("greet", "0.1.0", ok.level)
    assert events[0].to_dict()["kind"] == "run.ok"


def test_arun_and_run_inside_a_running_event_loop(released: Path) -> None:
    async def main() -> tuple[object, object]:
        with Workspace.open(released) as ws:
            concurrent = await asyncio.gather(
                ws.arun("greet", {"name": "A"}), ws.arun("greet", {"name": "B"})
            )
            # Sync code called from a coroutine: run() goes through a worker thread.
            inside = ws.run("greet", {"name": "C"})
            return concurrent, inside

    concurrent, inside = asyncio.run(main())
    assert [r.value for r in concurrent] == ["Hello, A!", "Hello, B!"]  # type: ignore[attr-defined]
    assert inside.value == "Hello, C!"  # type: ignore[attr-defined]
    assert len(runs_in_log(released)) == 3


def test_a_run_log_that_cannot_be_reached_does_not_stop_the_run(
    released: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_RUN_LOG", "postgresql://nobody:secret@127.0.0.1:1/none")
    with Workspace.open(released) as ws:
        record = ws.run("greet", {"name": "Ada"})
    assert record.status == "ok" and not record.recorded
    assert (
        record.warnings
        and "run log postgresql+asyncpg://nobody:***@127.0.0.1:1/none" in (record.warnings[0])
    )
    assert "secret" not in json.dumps(record.to_json())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[runs]\nmin-level = 5\n", "min-level: expected at most 2, got 5"),
        ("[runs]\nmin_level = 1\n", "unknown key(s) min_level"),
        ("[runs]\ntimeout = -1\n", "timeout: expected seconds > 0"),
        ("[runs.limits]\nmemory = 'lots'\n", "limits.memory: expected a size in bytes"),
        ("[runs.rollback]\nthreshold = 2\n", "threshold: expected a success rate between 0 and 1"),
        ("[runs.rollback]\nwindow = 5\nmin-runs = 6\n", "min-runs: expected at most 5"),
        ("[runs]\ndisable = ['seccomp']\n", "unknown layer(s) seccomp"),
    ],
)
def test_a_bad_runs_table_is_a_config_error(repo: Path, config: str, message: str) -> None:
    make_store(repo, config)
    create(repo, "greet", GREET, greet_metadata())
    with Workspace.open(repo) as ws, pytest.raises(ConfigError, match=r"proctor.toml \[?runs"):
        ws.run("greet", {"name": "x"})
    r = run_cli("run", "greet", "-p", "name=x", cwd=repo)
    assert r.code == 2 and message in r.err, r.err
    assert runs_in_log(repo) == []


def test_settings_defaults_and_units() -> None:
    from proctor.core.config import parse_config
    from proctor.runs.settings import RollbackSettings, runs_settings

    default = runs_settings(parse_config({}), environ={})
    assert (default.min_level, default.timeout, default.run_log) == (0, 30.0, None)
    assert default.rollback == RollbackSettings(True, 20, 10, 0.9)
    cfg = parse_config(
        {"runs": {"run-log": "sqlite:///x.db", "limits": {"memory": "256MiB", "output-max": 10**6}}}
    )
    got = runs_settings(cfg, environ={"PROCTOR_RUN_LOG": "postgresql://h/db"})
    assert got.run_log == "postgresql://h/db"  # the environment wins over the file
    assert got.limits == {"memory": 256 * 1024 * 1024, "output_max": 10**6}
    assert got.sandbox_limits().memory == 256 * 1024 * 1024


def test_a_cancelled_arun_stops_its_run_before_the_cancellation_goes_on(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile
    import time

    from runs_helpers import SLOW

    create(repo, "slow", SLOW)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    async def cancel_midway() -> tuple[float, list[Path]]:
        with Workspace.open(repo, actor="tester@example.com") as ws:
            task = asyncio.ensure_future(ws.arun("slow", timeout=120))
            deadline = time.monotonic() + 30
            # Polling a folder another thread fills: no event to wait on.
            while not list(tmp.glob("proctor-run-*/runner")) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            task.cancel()
            start = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Looked at as soon as the cancellation arrives, before anything waits for
            # the worker thread (the loop's shutdown would).
            return time.monotonic() - start, list(tmp.glob("proctor-run-*"))

    seconds, left = asyncio.run(cancel_midway())
    assert seconds < 15
    assert left == []  # killed and cleaned up before the cancellation went on
