"""Declared capabilities open exactly what they name, at every isolating level.

The corpus shows the closed side (no capability, nothing gets through); these show the
open side and its edges: ``network`` reaches a real listener on 127.0.0.1, and a
``filesystem_write`` path is writable while its sibling, its parent and the host's other
files stay closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_corpus import PROFILES, profile_missing

from proctor.runs.sandbox import run_in_sandbox, runner

ISOLATING = ["L1", "L2", "L2-fallback"]


def need(profile: str) -> dict[str, object]:
    missing = profile_missing(profile)
    if missing:
        pytest.skip(missing)
    return PROFILES[profile]


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"pong")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], got
    # close() alone does not wake a thread blocked in accept() (Linux): shut it down first,
    # or the teardown of every refused run waits out the join.
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(2)


CONNECT = """
import socket
def run(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"ping")
        return s.recv(100).decode()
"""


@pytest.mark.parametrize("profile", ["L0", *ISOLATING])
def test_network_capability_reaches_the_host_loopback(
    profile: str, listener: tuple[int, list[bytes]]
) -> None:
    kw = need(profile)
    port, got = listener
    res = run_in_sandbox(CONNECT, {"port": port}, capabilities={"network": True}, timeout=10, **kw)  # type: ignore[arg-type]
    assert (res.status, res.value) == ("ok", "pong"), res
    assert got == [b"ping"]


@pytest.mark.parametrize("profile", ISOLATING)
def test_without_network_the_same_code_is_refused(
    profile: str, listener: tuple[int, list[bytes]]
) -> None:
    kw = need(profile)
    port, got = listener
    res = run_in_sandbox(CONNECT, {"port": port}, timeout=10, **kw)  # type: ignore[arg-type]
    assert res.status == "error" and res.error_type in ("PermissionError", "ConnectionRefusedError")
    assert got == []


WRITE = """
import os
def run(target, listing=True):
    with open(target, "w") as f:
        f.write("written")
    return os.listdir(os.path.dirname(target)) if listing else None
"""


@pytest.mark.parametrize("profile", ISOLATING)
def test_filesystem_write_opens_exactly_its_path(profile: str, tmp_path: Path) -> None:
    kw = need(profile)
    granted, sibling = tmp_path / "granted", tmp_path / "sibling"
    granted.mkdir()
    sibling.mkdir()
    caps = {"filesystem_write": [str(granted)]}
    ok = run_in_sandbox(WRITE, {"target": str(granted / "out.txt")}, capabilities=caps, **kw)  # type: ignore[arg-type]
    assert (ok.status, ok.value) == ("ok", ["out.txt"]), ok
    assert (granted / "out.txt").read_text() == "written"
    for target in (sibling / "out.txt", tmp_path / "out.txt"):
        res = run_in_sandbox(WRITE, {"target": str(target)}, capabilities=caps, **kw)  # type: ignore[arg-type]
        assert not target.exists()
        # Under bubblewrap the parent of a bound path exists only in the sandbox's private
        # /tmp (writable there, gone after); without namespaces Landlock refuses it.
        if target.parent == sibling or profile == "L2-fallback":
            assert res.status == "error" and res.error_type in (
                "PermissionError",
                "FileNotFoundError",
            ), res


@pytest.mark.parametrize("profile", ISOLATING)
def test_a_granted_file_is_writable_but_its_directory_is_not(profile: str, tmp_path: Path) -> None:
    kw = need(profile)
    single = tmp_path / "log.txt"
    single.write_text("")
    caps = {"filesystem_write": [str(single)]}
    params = {"target": str(single), "listing": False}
    res = run_in_sandbox(WRITE, params, capabilities=caps, **kw)  # type: ignore[arg-type]
    assert res.status == "ok" and single.read_text() == "written", res
    params = {"target": str(tmp_path / "new.txt"), "listing": False}
    other = run_in_sandbox(WRITE, params, capabilities=caps, **kw)  # type: ignore[arg-type]
    assert not (tmp_path / "new.txt").exists()
    if profile == "L2-fallback":
        assert (other.status, other.error_type) == ("error", "PermissionError"), other


ABSTRACT = """
import socket
def run(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(name)
    s.close()
    return "reached"
"""


@pytest.mark.parametrize("profile", ISOLATING)
def test_network_does_not_open_the_hosts_abstract_unix_sockets(profile: str) -> None:
    """``network`` names IP networking: under bubblewrap it shares the host's network
    namespace, which holds the abstract unix sockets too, and those stay closed."""
    kw = need(profile)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"\0proctor-caps-{profile}-{id(server)}"
    server.bind(name)
    server.listen()
    server.settimeout(0.2)
    try:
        res = run_in_sandbox(
            ABSTRACT, {"name": name}, capabilities={"network": True}, timeout=10, **kw
        )  # type: ignore[arg-type]
        try:
            conn, _ = server.accept()
            conn.close()
            reached = True
        except TimeoutError:
            reached = False
    finally:
        server.close()
    assert not reached
    assert (res.status, res.error_type) == ("error", "PermissionError"), res
    # Which layer refuses: under bubblewrap, Landlock's scoping where level 2 has ABI 6,
    # else the filter's unix rule (the fallback's socket rule refuses unix sockets anyway).
    if profile != "L2-fallback":
        scoped = profile == "L2" and runner.landlock_abi() >= 6
        assert ("unix sockets refused" in res.layers["seccomp"]) == (not scoped), res.layers
        if scoped:
            assert "abstract unix sockets scoped" in res.layers["landlock"]


CONFINED = """
import os
def run(secret, outside):
    out = {}
    try:
        out["read secret"] = open(secret).read()
    except OSError as exc:
        out["read secret"] = type(exc).__name__
    try:
        with open(os.path.join(outside, "dropped"), "w") as f:
            f.write("x")
        out["write outside"] = "written"
    except OSError as exc:
        out["write outside"] = type(exc).__name__
    return out
"""


@pytest.mark.parametrize("capability", ["network", "subprocess"])
@pytest.mark.parametrize("profile", ISOLATING)
def test_network_or_subprocess_leaves_the_file_system_closed(
    profile: str, capability: str, tmp_path: Path
) -> None:
    kw = need(profile)
    secret_dir, outside = tmp_path / "secret", tmp_path / "outside"
    secret_dir.mkdir(mode=0o700)
    outside.mkdir()
    secret = secret_dir / "key"
    secret.write_text("SECRET-caps")
    secret.chmod(0o600)
    params = {"secret": str(secret), "outside": str(outside)}
    res = run_in_sandbox(CONFINED, params, capabilities={capability: True}, timeout=10, **kw)  # type: ignore[arg-type]
    assert res.status == "ok", res
    assert isinstance(res.value, dict)
    refused = ("PermissionError", "FileNotFoundError")
    assert res.value["read secret"] in refused, res.value
    assert res.value["write outside"] in refused, res.value
    assert list(outside.iterdir()) == []
    assert "SECRET-caps" not in f"{res.value} {res.stdout} {res.stderr}"
