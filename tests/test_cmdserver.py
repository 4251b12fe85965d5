"""The command server (``PROCTOR_SERVER=1``): a command run through it prints, exits and
writes exactly as the same command run alone, with the caller's environment, working
folder, umask and limits; a server that could not stand in faithfully is not used.

Every test runs the installed console script as a real subprocess against a real server
process listening in a private folder of its own, stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import BIN, IDENTITY, git
from runs_helpers import SLOW, interrupt_a_run, start_run

CODE = 'def run(name: str) -> str:\n    """Greet.\n\n    Args:\n        name: Who.\n    """\n    return "hi " + name\n'


class Server:
    """A private server folder and the environment that sends commands to it."""

    def __init__(self, folder: Path, extra: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            **IDENTITY,
            "PROCTOR_SERVER": "1",
            "PROCTOR_SERVER_DIR": str(folder),
            "PROCTOR_SERVER_IDLE": "120",
            **(extra or {}),
        }
        self.env.pop("PROCTOR_SERVER_DEBUG", None)

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        alone: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """``proctor ARGS`` through the server (``alone``: with ``PROCTOR_SERVER=0``)."""
        full = {**self.env, **(env or {})}
        if alone:
            full["PROCTOR_SERVER"] = "0"
        return subprocess.run(
            [str(BIN / "proctor"), *args],
            cwd=cwd,
            env=full,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            preexec_fn=preexec,
            timeout=120,
        )

    def status(self) -> dict[str, object]:
        proc = self.run("server", "status", "--json")
        assert proc.returncode == 0, proc.stderr
        report: dict[str, object] = json.loads(proc.stdout)
        return report

    def served(self) -> int:
        report = self.status()
        assert report["running"], "no server is running"
        return int(str(report["served"]))

    def start(self, *extra: str) -> int:
        proc = self.run("server", "start", "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        return int(json.loads(proc.stdout)["pid"])

    def stop(self) -> None:
        self.run("server", "stop")


@pytest.fixture
def server() -> Iterator[Server]:
    # A short folder of its own: a Unix socket's path has at most 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="ps-", dir="/tmp"))
    made = Server(folder)
    try:
        yield made
    finally:
        made.stop()
        _wait_gone(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_gone(folder: Path, timeout: float = 10.0) -> None:
    """Until no server listens in ``folder`` (each removes its socket as it stops)."""
    deadline = time.monotonic() + timeout
    while any(folder.glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _repo(path: Path) -> Path:
    git(path.parent, "init", "-q", "-b", "main", str(path))
    subprocess.run(
        [str(BIN / "proctor"), "init", str(path)],
        env={**os.environ, **IDENTITY, "PROCTOR_SERVER": "0"},
        check=True,
        capture_output=True,
    )
    (path.parent / f"{path.name}-code.py").write_text(CODE)
    (path.parent / f"{path.name}-code2.py").write_text(CODE.replace("hi ", "hello "))
    return path


def _normalised(text: str, *roots: Path) -> str:
    for root in roots:
        text = text.replace(str(root), "<root>")
    text = re.sub(r"\b[0-9a-f]{7,40}\b", "<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)?", "<time>", text)
    return re.sub(r"-code(2?)\.py", r"-code\1.py", text)


def test_two_messages_sent_at_once_are_read_as_two() -> None:
    """A quick command's status can arrive with its pid, in one read's worth of bytes:
    each is still read as its own message (the second was lost, and the caller said the
    server had ended)."""
    from proctor.cmdserver import common

    left, right = socket.socketpair()
    with left, right:
        common.send(left, {"pid": 7})
        common.send(left, {"exit": 2})
        common.send(left, {"big": "x" * 200_000})
        left.shutdown(socket.SHUT_WR)
        assert common.receive(right) == ({"pid": 7}, [])
        assert common.receive(right) == ({"exit": 2}, [])
        assert common.receive(right) == ({"big": "x" * 200_000}, [])
        assert common.receive(right) == (None, [])


def test_the_standard_streams_travel_with_the_request() -> None:
    from proctor.cmdserver import common

    left, right = socket.socketpair()
    read_end, write_end = os.pipe()
    with left, right:
        common.send(left, {"op": "run"}, [write_end])
        common.send(left, {"then": 1})
        message, fds = common.receive(right, max_fds=3)
        assert message == {"op": "run"} and len(fds) == 1
        os.write(fds[0], b"through the passed descriptor")
        for fd in (fds[0], write_end):
            os.close(fd)
        assert os.read(read_end, 100) == b"through the passed descriptor"
        os.close(read_end)
        assert common.receive(right) == ({"then": 1}, [])


def test_commands_through_the_server_print_and_exit_as_they_do_alone(
    server: Server, tmp_path: Path
) -> None:
    alone_root, served_root = tmp_path / "alone", tmp_path / "served"
    alone_root.mkdir()
    served_root.mkdir()
    alone, served = _repo(alone_root / "r"), _repo(served_root / "r")
    server.start()
    before = server.served()
    commands = [
        ["procedure", "create", "greet", "--code", "../r-code.py", "-d", "Greets"],
        ["procedure", "list"],
        ["procedure", "list", "--json"],
        ["procedure", "update", "greet", "--code", "../r-code2.py"],
        ["procedure", "show", "greet", "--json"],
        ["procedure", "history", "greet"],
        ["procedure", "release", "greet", "--json"],
        ["procedure", "show", "nope"],
        ["procedure", "create", "Bad", "--code", "../r-code.py"],
        ["procedure", "update", "greet", "--code", "/nonexistent/code.py", "--json"],
        ["check", "../r-code.py"],
        ["no-such-command"],
        ["procedure", "--help"],
        ["status"],
    ]
    for args in commands:
        one = server.run(*args, cwd=alone, alone=True)
        two = server.run(*args, cwd=served)
        assert two.returncode == one.returncode, (args, one, two)
        assert _normalised(two.stdout, alone_root, served_root) == _normalised(
            one.stdout, alone_root, served_root
        ), args
        assert _normalised(two.stderr, alone_root, served_root) == _normalised(
            one.stderr, alone_root, served_root
        ), args
    assert server.served() == before + len(commands)
    tree = "HEAD^{tree}"
    assert git(served, "rev-parse", tree) == git(alone, "rev-parse", tree)
    assert git(served, "tag", "-l") == git(alone, "tag", "-l")
    assert git(served, "status", "--porcelain") == ""
    assert git(served, "fsck", "--strict", "--no-dangling", check=False) == ""


def test_a_command_takes_the_callers_environment_folder_umask_and_limits(
    server: Server, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "r")
    server.start()
    before = server.served()

    def actor(n: int) -> str:
        return git(repo, "log", "-1", f"--skip={n}", "--format=%(trailers:key=Proctor-Actor)")

    # The environment of this call, not of the call that started the server.
    one = server.run(
        "procedure", "create", "first", "--code", "../r-code.py", cwd=repo,
        env={"PROCTOR_ACTOR": "agent-one"},
        preexec=lambda: os.umask(0o077),
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    two = server.run(
        "procedure", "create", "second", "--code", str(tmp_path / "r-code2.py"), cwd=tmp_path,
        env={"PROCTOR_ACTOR": "agent-two"},
        preexec=lambda: os.umask(0o022),
    )  # fmt: skip
    # ``cwd=tmp_path`` is not the repository: the second one finds none there.
    assert two.returncode == 2 and "git repository" in two.stderr
    two = server.run(
        "procedure", "create", "second", "--code", "../r-code2.py", cwd=repo,
        env={"PROCTOR_ACTOR": "agent-two"},
        preexec=lambda: os.umask(0o022),
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert "agent-one" in actor(1) and "agent-two" in actor(0)
    assert (repo / "procedures/first/main.py").stat().st_mode & 0o777 == 0o600
    assert (repo / "procedures/second/main.py").stat().st_mode & 0o777 == 0o644

    # A file size limit of the caller holds in the command: the write stops, as alone.
    big = tmp_path / "big.py"
    big.write_text(CODE + "".join(f"# {'x' * 70}\n" for _ in range(3000)))

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    head = git(repo, "rev-parse", "HEAD")
    limited = server.run("procedure", "update", "first", "--code", str(big), cwd=repo,
                         preexec=small_files)  # fmt: skip
    assert limited.returncode != 0
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    alone = server.run("procedure", "update", "first", "--code", str(big), cwd=repo,
                       preexec=small_files, alone=True)  # fmt: skip
    assert (limited.returncode, limited.stderr) == (alone.returncode, alone.stderr)
    assert server.served() == before + 4


def test_a_server_started_before_a_change_is_not_used_and_gives_way(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ps-", dir="/tmp"))
    extra = tmp_path / "on-path"
    extra.mkdir()
    server = Server(folder, {"PYTHONPATH": str(extra)})
    try:
        repo = _repo(tmp_path / "r")
        pid = server.start()
        before = server.served()
        assert server.run("procedure", "list", cwd=repo).returncode == 0
        assert server.served() == before + 1
        # Something on the import path changed (a package installed, say): the running
        # server could import stale code, so the next command runs alone and it exits.
        time.sleep(0.01)
        (extra / "new_module.py").write_text("")
        done = server.run("procedure", "create", "greet", "--code", "../r-code.py", cwd=repo)
        assert done.returncode == 0, done.stderr
        assert "procedure.create applied" in done.stdout
        assert _wait_dead(pid)
        assert git(repo, "show", "HEAD:procedures/greet/main.py") == CODE
    finally:
        server.stop()
        _wait_gone(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("kind", ["open-to-others", "symlink"])
def test_a_server_folder_others_could_enter_is_not_used(tmp_path: Path, kind: str) -> None:
    repo = _repo(tmp_path / "r")
    if kind == "open-to-others":
        folder = tmp_path / "srv"
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
    else:
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        folder = tmp_path / "srv"
        folder.symlink_to(real)
    server = Server(folder)
    done = server.run("procedure", "list", cwd=repo)
    assert done.returncode == 0
    assert "greet" not in done.stdout and done.stdout.startswith("name")
    assert done.stderr.startswith("warning: command server not used: ")
    assert str(folder) in done.stderr
    time.sleep(0.3)
    assert not list(folder.glob("*.sock")) and not list(folder.glob("*.log"))


def test_writers_through_the_server_lose_no_update(server: Server, tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    server.start()
    before = server.served()
    env = {**server.env, "PROCTOR_ACTOR": "w"}
    procs = [
        subprocess.Popen(
            [
                "bash",
                "-c",
                f"for i in 1 2 3; do {BIN / 'proctor'} procedure create p{w}_$i "
                "--code ../r-code.py || exit 1; done",
            ],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.count("applied") == 3
    names = sorted(p.name for p in (repo / "procedures").iterdir())
    assert names == sorted(f"p{w}_{i}" for w in range(4) for i in (1, 2, 3))
    assert git(repo, "rev-list", "--count", "HEAD").strip() == str(1 + 12)
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "fsck", "--strict", "--no-dangling", check=False) == ""
    assert server.served() == before + 12


def test_an_idle_server_exits_and_takes_its_socket(server: Server) -> None:
    pid = server.start("--idle", "1")
    assert list(server.folder.glob("*.sock"))
    assert _wait_dead(pid, timeout=15)
    assert not list(server.folder.glob("*.sock"))
    assert server.status()["running"] is False


def test_a_signal_to_the_caller_ends_its_command_as_it_would_end_alone(
    server: Server, tmp_path: Path
) -> None:
    """SIGTERM to the caller reaches the command, which dies of it; the caller then dies
    of that signal too, as the command run alone would have."""
    repo = _repo(tmp_path / "r")
    (tmp_path / "slow.py").write_text(SLOW)
    created = server.run("procedure", "create", "slow", "--code", "../slow.py", cwd=repo)
    assert created.returncode == 0, created.stderr
    server.start()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start_run(repo, "slow", server.env, tmp, "--timeout", "120")
    deadline = time.monotonic() + 30
    while server.status().get("busy") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.status()["busy"] == 1
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while server.status().get("busy") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.status()["busy"] == 0


def test_ctrl_c_to_the_caller_stops_a_run_as_it_does_alone(server: Server, tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    (tmp_path / "slow.py").write_text(SLOW)
    created = server.run("procedure", "create", "slow", "--code", "../slow.py", cwd=repo)
    assert created.returncode == 0, created.stderr
    server.start()
    before = server.served()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code, err, seconds = interrupt_a_run(repo, tmp, server.env)
    assert (code, err.strip()) == (1, "Aborted.")
    assert seconds < 15
    assert not list(tmp.glob("proctor-run-*"))
    assert server.served() == before + 1


def test_a_served_command_imports_neither_click_nor_pydantic_in_the_caller(
    server: Server, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "r")
    # ``python -c`` is an interpreter of its own flavour (another executable name, another
    # sys.path[0]): its server is started, and asked, from the same kind of process.
    script = (
        "import json, sys\n"
        "from proctor.cmdserver import common\n"
        "from proctor.cmdserver.client import main\n"
        "path = common.socket_path(common.folder(), common.flavour())\n"
        "before = common.ask(path, 'status')['served']\n"
        "code = main(['procedure', 'list'])\n"
        "after = common.ask(path, 'status')['served']\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('click', 'pydantic', 'pluggy') or m.startswith('proctor.cli'))\n"
        "print(json.dumps({'code': code, 'served': after - before, 'heavy': heavy}))\n"
    )

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "python"), "-c", code],
            cwd=repo,
            env=server.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
        )

    python("from proctor.cmdserver.client import main; main(['server', 'start'])")
    try:
        report = json.loads(python(script).stdout.splitlines()[-1])
    finally:
        python("from proctor.cmdserver.client import main; main(['server', 'stop'])")
    assert report == {"code": 0, "served": 1, "heavy": []}


NAP = 'import time\n\n\ndef run() -> int:\n    """Nap."""\n    time.sleep(3)\n    return 7\n'


def _start_nap(server: Server, tmp_path: Path) -> Path:
    """A repository with ``nap`` (three seconds asleep, then 7), and a server running."""
    repo = _repo(tmp_path / "r")
    (tmp_path / "nap.py").write_text(NAP)
    created = server.run("procedure", "create", "nap", "--code", "../nap.py", cwd=repo, alone=True)
    assert created.returncode == 0, created.stderr
    server.start()
    return repo


def _until_busy(server: Server) -> None:
    deadline = time.monotonic() + 30
    while server.status().get("busy") != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.status()["busy"] == 1
    time.sleep(0.3)


def test_a_signal_the_caller_ignores_is_ignored_by_its_command(
    server: Server, tmp_path: Path
) -> None:
    """``nohup proctor run ...``: a hang-up does not end the command (it used to kill it
    through the server, where the forwarder replaced the caller's SIG_IGN)."""
    repo = _start_nap(server, tmp_path)
    proc = start_run(repo, "nap", server.env, tmp_path, ignore=(signal.SIGHUP,))
    _until_busy(server)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "7"


def test_the_command_reports_to_its_caller_even_if_the_server_dies(
    server: Server, tmp_path: Path
) -> None:
    """The caller used to hear "the server ended" while the command went on and
    succeeded: now the command tells its caller its own status."""
    repo = _start_nap(server, tmp_path)
    pid = int(str(server.status()["pid"]))
    proc = start_run(repo, "nap", server.env, tmp_path)
    _until_busy(server)
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out.strip()) == (0, "7"), err
    assert "server ended" not in err


def test_a_quiet_connection_holds_no_command_up_for_long(server: Server, tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    server.start()
    before = server.served()
    path = next(server.folder.glob("*.sock"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as quiet:
        quiet.connect(str(path))  # and says nothing
        start = time.monotonic()
        done = server.run("procedure", "list", cwd=repo)
        assert done.returncode == 0
        assert time.monotonic() - start < 3.5  # it used to wait 5 s for the quiet one
    assert server.served() == before + 1


def test_commits_through_the_server_carry_the_callers_time_zone(
    server: Server, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "r")
    server.run("server", "start", env={"TZ": "UTC"})
    before = server.served()
    for name, where in (("east", "Asia/Tokyo"), ("west", "America/New_York")):
        done = server.run(
            "procedure", "create", name, "--code", "../r-code.py", cwd=repo, env={"TZ": where}
        )
        assert done.returncode == 0, done.stderr
    assert server.served() == before + 2
    alone = server.run("procedure", "update", "east", "--code", "../r-code2.py", cwd=repo,
                       env={"TZ": "Asia/Tokyo"}, alone=True)  # fmt: skip
    assert alone.returncode == 0
    zones = git(repo, "log", "-3", "--format=%ai").split()[2::3]
    assert zones[0] == zones[2] == "+0900"  # alone, and through the server
    assert zones[1] in ("-0500", "-0400")


def test_a_socket_path_at_the_length_limit_works_and_server_commands_run_alone(
    tmp_path: Path,
) -> None:
    # "/tmp/" + padding + "/server-XXXXXXXX.sock" is exactly 107 bytes.
    padding = "p" * (107 - len("/tmp/") - len("/server-00000000.sock"))
    folder = Path("/tmp") / padding
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    server = Server(folder)
    try:
        repo = _repo(tmp_path / "r")
        server.start()
        assert len(str(next(folder.glob("*.sock")))) == 107
        before = server.served()
        assert server.run("procedure", "list", cwd=repo).returncode == 0
        # proctor's own server commands never go through it, wherever the word stands.
        assert server.run("--json", "server", "status").returncode == 0
        assert server.served() == before + 1
    finally:
        server.stop()
        _wait_gone(folder)
        shutil.rmtree(folder, ignore_errors=True)
