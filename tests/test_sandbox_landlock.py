"""Landlock's network rules, each the only layer in the way.

In a real run another layer blocks first: the network namespace and the seccomp socket
rule stop TCP before Landlock's TCP rule is reached, and the fallback's seccomp filter
refuses unix sockets before abstract-socket scoping is. Here the in-sandbox runner is
started on the host with the level 2 Landlock spec (``api.landlock_spec``, the one a run
gets) and nothing else: no namespaces, no seccomp. Each case runs twice, with and
without that spec, so the refusal is Landlock's and the open side is real.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proctor.runs.sandbox import Capabilities, runner
from proctor.runs.sandbox.api import RUNNER, landlock_spec

KERNEL_ABI = runner.landlock_abi()


def need_abi(abi: int, what: str) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip(f"Landlock is Linux only, this is {sys.platform}")
    if runner.landlock_abi() < abi:
        pytest.skip(f"{what} needs Landlock ABI {abi}, this kernel offers {KERNEL_ABI or 'none'}")


def run_runner(
    tmp_path: Path, code: str, params: dict[str, Any], landlock: dict[str, Any] | None
) -> dict[str, Any]:
    """The runner alone: one header in, its ready/result lines out."""
    code_dir, work = tmp_path / "code", tmp_path / "work"
    code_dir.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    (code_dir / "main.py").write_text(code)
    header: dict[str, Any] = {
        "module": "procedure",
        "entry": "run",
        "params": params,
        "code_path": str(code_dir / "main.py"),
        "result_limit": 1 << 20,
        "audit": False,
        "drop_privileges": True,
    }
    if landlock is not None:
        header["landlock"] = landlock
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-B", RUNNER, str(in_r), str(out_w)],
        pass_fds=(in_r, out_w),
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "HOME": str(work)},
    )
    os.close(in_r)
    os.close(out_w)
    with os.fdopen(in_w, "wb") as f:
        f.write(json.dumps(header).encode())
    with os.fdopen(out_r, "rb") as f:
        lines = [json.loads(line) for line in f.read().splitlines()]
    assert proc.wait(timeout=30) == 0
    out = {line["kind"]: line for line in lines}
    assert "fatal" not in out, out["fatal"]
    return out


def spec(tmp_path: Path, caps: Capabilities | None = None) -> dict[str, Any]:
    return landlock_spec(
        caps or Capabilities(),
        code=str(tmp_path / "code"),
        work=str(tmp_path / "work"),
        namespaced=True,
    )


ATTEMPTS = """
import os, socket

def attempt(fn):
    try:
        fn()
        return "open"
    except OSError as exc:
        return type(exc).__name__

def run(port, abstract, neighbour):
    def connect_tcp():
        socket.create_connection(("127.0.0.1", port), timeout=3).close()

    def bind_tcp():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.close()

    def connect_abstract():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(abstract)
        s.close()

    def own_abstract():  # a socket of the run's own: scoping leaves it alone
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("\\0own-" + str(os.getpid()))
        server.listen()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect("\\0own-" + str(os.getpid()))
        client.close()
        server.close()

    return {
        "tcp connect": attempt(connect_tcp),
        "tcp bind": attempt(bind_tcp),
        "abstract connect": attempt(connect_abstract),
        "own abstract": attempt(own_abstract),
        "signal": attempt(lambda: os.kill(neighbour, 0)),
    }
"""


class HostEnds:
    """A TCP listener, an abstract unix socket and a neighbour process on the host."""

    def __init__(self) -> None:
        self.reached: list[str] = []
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract = f"\0proctor-landlock-{os.getpid()}-{id(self)}"
        self.unix.bind(self.abstract)
        self.unix.listen()
        self.neighbour = subprocess.Popen(["sleep", "60"])
        self._threads = [
            threading.Thread(target=self._accept, args=(s, n), daemon=True)
            for s, n in ((self.tcp, "tcp"), (self.unix, "abstract"))
        ]
        for t in self._threads:
            t.start()

    def _accept(self, server: socket.socket, name: str) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            self.reached.append(name)
            conn.close()

    def wait_for(self, *names: str, timeout: float = 10.0) -> list[str]:
        """What has reached the host ends, once each of ``names`` has: the accepting
        thread records a connection a moment after the run's ``connect`` returned."""
        deadline = time.monotonic() + timeout
        while not all(n in self.reached for n in names) and time.monotonic() < deadline:
            time.sleep(0.01)
        return sorted(self.reached)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "port": self.tcp.getsockname()[1],
            "abstract": self.abstract,
            "neighbour": self.neighbour.pid,
        }

    def close(self) -> None:
        for s in (self.tcp, self.unix):
            s.close()
        self.neighbour.kill()
        self.neighbour.wait()


@pytest.fixture
def ends() -> Iterator[HostEnds]:
    h = HostEnds()
    yield h
    h.close()


def test_without_landlock_everything_is_open(tmp_path: Path, ends: HostEnds) -> None:
    """The control: the runner alone, no spec, reaches each host end."""
    need_abi(1, "the control of the Landlock tests")
    out = run_runner(tmp_path, ATTEMPTS, ends.params, None)
    assert out["result"]["status"] == "ok", out
    assert json.loads(out["result"]["value_json"]) == dict.fromkeys(
        ("tcp connect", "tcp bind", "abstract connect", "own abstract", "signal"), "open"
    )
    assert ends.wait_for("abstract", "tcp") == ["abstract", "tcp"]


def test_landlock_tcp_rule_alone_refuses_connect_and_bind(tmp_path: Path, ends: HostEnds) -> None:
    need_abi(4, "the TCP rule")
    out = run_runner(tmp_path, ATTEMPTS, ends.params, spec(tmp_path))
    assert "TCP bind/connect denied" in out["ready"]["layers"]["landlock"]
    value = json.loads(out["result"]["value_json"])
    assert (value["tcp connect"], value["tcp bind"]) == ("PermissionError", "PermissionError")
    assert "tcp" not in ends.reached
    # The network capability lifts exactly this rule.
    opened = run_runner(tmp_path, ATTEMPTS, ends.params, spec(tmp_path, Capabilities(network=True)))
    value = json.loads(opened["result"]["value_json"])
    assert (value["tcp connect"], value["tcp bind"]) == ("open", "open")
    assert "tcp" in ends.wait_for("tcp")


def test_landlock_scoping_alone_refuses_host_abstract_sockets_and_signals(
    tmp_path: Path, ends: HostEnds
) -> None:
    need_abi(6, "abstract unix socket and signal scoping")
    for caps in (Capabilities(), Capabilities(network=True)):  # network does not lift it
        out = run_runner(tmp_path, ATTEMPTS, ends.params, spec(tmp_path, caps))
        assert "abstract unix sockets scoped" in out["ready"]["layers"]["landlock"]
        value = json.loads(out["result"]["value_json"])
        assert value["abstract connect"] == "PermissionError", value
        assert value["signal"] == "PermissionError", value
        assert value["own abstract"] == "open", value  # the run's own sockets still work
    assert "abstract" not in ends.reached
    assert ends.neighbour.poll() is None
