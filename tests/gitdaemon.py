"""A real ``git daemon`` on 127.0.0.1 for the sync tests: a bare store and its clones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@dataclass
class GitServer:
    """A running daemon serving every bare repository under ``base``."""

    base: Path
    port: int
    proc: subprocess.Popen[bytes]

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def bare(self, name: str = "store.git") -> Path:
        path = self.base / name
        run_git(self.base, "init", "-q", "--bare", "-b", "main", str(path))
        return path

    def clone(self, name: str, into: Path) -> Path:
        run_git(into.parent, "clone", "-q", self.url(name), str(into))
        run_git(into, "config", "user.name", into.name)
        run_git(into, "config", "user.email", f"{into.name}@example.com")
        return into


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    """``git daemon`` with push enabled on a free port; up once it accepts connections,
    its whole process group killed on teardown."""
    base = tmp_path / "srv"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            f"--port={port}",
            "--listen=127.0.0.1",
            f"--base-path={base}",
            "--export-all",
            "--enable=receive-pack",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("git daemon did not start") from None
            time.sleep(0.02)
    try:
        yield GitServer(base, port, proc)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
