"""Stores for the run tests: procedures created through proctor, config committed as a
person would commit it (the committed config is what a run reads)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import types
from pathlib import Path
from typing import Any

from conftest import BIN, IDENTITY, git

from proctor import Workspace, hookimpl
from proctor.core.plugins import PluginInfo, PluginManager

GREET = '''\
def run(name: str, punctuation: str = "!") -> str:
    """Greet someone.

    Args:
        name: Who to greet.
        punctuation: What ends the greeting.
    """
    return "Hello, " + name + punctuation
'''

BEHAVE = '''\
def run(mode: str = "ok", seconds: float = 0.0) -> dict:
    """Behave as told: return, raise, spin, or flood the output."""
    if mode == "raise":
        raise ValueError("boom: " + mode)
    if mode == "spin":
        while True:
            pass
    if mode == "flood":
        while True:
            print("x" * 4096)
    return {"mode": mode}
'''


def greet_metadata(examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": "greet",
        "description": "Greet someone by name",
        "parameters": [
            {"name": "name", "type": "str", "description": "Who to greet", "required": True},
            {
                "name": "punctuation",
                "type": "str",
                "description": "What ends the greeting",
                "default": "!",
                "required": False,
            },
        ],
        "returns": "str",
        "examples": examples
        if examples is not None
        else [{"params": {"name": "Ada"}, "expected": "Hello, Ada!"}],
    }


def make_store(repo: Path, config: str = "") -> Path:
    """A proctor store whose committed proctor.toml is ``config``."""
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    ws.close()
    if config:
        path = repo / "proctor.toml"
        path.write_text('entry-point = "run"\n\n' + config)
        git(repo, "add", "proctor.toml")
        git(repo, "commit", "-q", "-m", "Configure runs")
    return repo


def create(
    repo: Path,
    name: str,
    code: str,
    metadata: dict[str, Any] | None = None,
    release: bool = False,
) -> None:
    with Workspace.open(repo, actor="tester@example.com") as ws:
        params: dict[str, Any] = {"name": name, "code": code}
        if metadata is not None:
            params["metadata"] = metadata
        tip = ws.store.read_ref(ws.ref)
        exists = tip is not None and ws.procedures.snapshot(tip).exists(f"procedures/{name}")
        result = ws.execute("procedure.update" if exists else "procedure.create", params)
        assert result.status == "applied", result
        if release:
            result = ws.execute("procedure.release", {"name": name})
            assert result.status == "applied", result


def event_manager(seen: list[Any]) -> PluginManager:
    """The built-ins plus a plugin that keeps every event."""
    plugin = types.SimpleNamespace()

    @hookimpl
    def proctor_on_event(event: Any) -> None:
        seen.append(event)

    plugin.proctor_on_event = proctor_on_event  # type: ignore[attr-defined]
    manager = PluginManager()
    manager.load_builtins(set())
    manager.register("events", plugin, PluginInfo(name="events", module="tests"))
    manager.check_pending()
    return manager


def as_json(text: str) -> Any:
    return json.loads(text)


SLOW = 'import time\n\n\ndef run() -> int:\n    """Wait."""\n    time.sleep(60)\n    return 1\n'


def start_run(
    repo: Path,
    name: str,
    env: dict[str, str],
    tmp: Path,
    *args: str,
    ignore: tuple[int, ...] = (),
) -> subprocess.Popen[str]:
    """``proctor run NAME ARGS`` as a real subprocess with TMPDIR ``tmp`` (where its run
    folders go), SIGINT at its default disposition as a terminal's foreground command has
    it (a shell's background job would ignore it, and so would the command), and the
    signals in ``ignore`` ignored, as ``nohup`` ignores SIGHUP."""

    def dispositions() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for signum in ignore:
            signal.signal(signum, signal.SIG_IGN)

    return subprocess.Popen(
        [str(BIN / "proctor"), "run", name, *args],
        cwd=repo,
        env={**os.environ, **IDENTITY, **env, "TMPDIR": str(tmp)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=dispositions,
    )


def interrupt_a_run(
    repo: Path, tmp: Path, env: dict[str, str], signum: int = signal.SIGINT
) -> tuple[int, str, float]:
    """``proctor run slow`` (a procedure that sleeps a minute) interrupted by ``signum`` once
    its sandbox is up; (exit status, stderr, seconds from the signal to the exit). The
    run's folders live in ``tmp`` (TMPDIR), so the caller can see they were cleaned up."""
    proc = start_run(repo, "slow", env, tmp, "--timeout", "120")
    deadline = time.monotonic() + 30
    while not list(tmp.glob("proctor-run-*/runner")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the procedure is asleep in its sandbox by now
    proc.send_signal(signum)
    sent = time.monotonic()
    _out, err = proc.communicate(timeout=90)
    return proc.returncode, err, time.monotonic() - sent
