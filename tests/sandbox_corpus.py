"""The escape corpus: hostile procedures, the host they attack, and the verdicts.

Shared by ``tests/test_sandbox_corpus.py`` (which asserts every claimed cell is blocked)
and ``bench/sandbox_corpus_table.py`` (which prints the table in docs/runs.md). The
procedures run with no static checks at all: they go straight to ``run_in_sandbox``.

A *profile* is a way to run (a level, and the layers switched off to reach a fallback).
Each escape says which profiles claim to stop it; an unclaimed cell is never run (several
would hurt the host: ``kill(-1)`` at level 0 as root signals every process there is).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from proctor.runs.sandbox import Limits, SandboxResult, probe, run_in_sandbox
from proctor.runs.sandbox.cgroups import hierarchies

ROOT = os.geteuid() == 0
PROFILES: dict[str, dict[str, Any]] = {
    "L0": {"level": 0},
    "L0-nocgroup": {"level": 0, "disable": {"cgroups"}},
    "L1": {"level": 1},
    "L2": {"level": 2},
    "L2-fallback": {"level": 2, "disable": {"namespaces"}},
}
ISOLATING = ("L1", "L2", "L2-fallback")
LIMITS = Limits(memory=256 * 1024 * 1024, processes=32, output=4096, output_max=256 * 1024, cpu=10)


def cgroups_writable() -> bool:
    return any("pids" in h.controllers for h in hierarchies()[0])


def profile_missing(name: str) -> str | None:
    """Why a profile cannot run here, or None."""
    kw = PROFILES[name]
    found = probe(namespaces="namespaces" not in kw.get("disable", ()))
    if not found.available(kw["level"]):
        return f"level {kw['level']} unavailable: {found.missing[kw['level']]}"
    if name == "L2" and found.namespaces is not None:
        return f"level 2 with namespaces unavailable: {found.namespaces}"
    return None


class Listener:
    """TCP, UDP and abstract unix sockets on the host, recording whatever reaches them."""

    def __init__(self, token: str) -> None:
        self.received: list[str] = []
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.abstract_name = f"\0proctor-corpus-{token}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.abstract_name)
        self.unix.listen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        for s in (self.tcp, self.udp, self.unix):
            sel.register(s, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with contextlib.suppress(OSError):
                    if sock is self.udp:
                        data, _addr = sock.recvfrom(4096)
                        self.received.append(f"udp {data[:40]!r}")
                    else:
                        conn, _addr = sock.accept()
                        self.received.append("tcp" if sock is self.tcp else "abstract unix")
                        conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in (self.tcp, self.udp, self.unix):
            s.close()


@dataclass
class Host:
    """What the corpus attacks: a secret, a repository, a neighbour process, sockets."""

    root: str
    token: str
    secret: str
    repo: str
    outside: str
    granted: str
    sentinel: subprocess.Popen[bytes]
    stopped: subprocess.Popen[bytes]
    listener: Listener
    marker: str
    params: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for base in (self.repo, self.outside, os.path.dirname(self.secret)):
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                for name in sorted(filenames) + [
                    d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
                ]:
                    path = os.path.join(dirpath, name)
                    out[path] = os.readlink(path).encode() if os.path.islink(path) else _read(path)
        return out

    def _ours(self, pid: str) -> bool:
        """Whether a runner process belongs to this harness's runs (they carry the marker in
        their environment): other tests' sandboxes may be running beside this one."""
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                return f"PROCTOR_CORPUS_MARKER={self.marker}".encode() in f.read()
        except OSError:
            return False

    def leftovers(self) -> list[int]:
        """Processes of the run still alive on the host (marked, or running our runner)."""
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmd = f.read()
                with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                    state = f.read().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if state in ("Z", "X"):
                continue
            if self.marker.encode() in cmd or (b"runner.pyc\0" in cmd and self._ours(name)):
                found.append(int(name))
        return found


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        return f.read().rpartition(")")[2].split()[0]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@contextlib.contextmanager
def host() -> Iterator[Host]:
    token = secrets.token_hex(8)  # the secret's content, and nothing else
    tag = secrets.token_hex(8)  # names of host things the procedures are told about
    root = tempfile.mkdtemp(prefix="proctor-corpus-")
    try:
        secret_dir = os.path.join(root, "secret")
        os.mkdir(secret_dir, 0o700)
        secret = os.path.join(secret_dir, "key")
        with open(secret, "w") as f:
            f.write(f"SECRET-{token}")
        os.chmod(secret, 0o600)
        repo = os.path.join(root, "repo")
        os.makedirs(os.path.join(repo, "procedures", "victim"))
        subprocess.run(["git", "init", "-q", repo], check=True)
        with open(os.path.join(repo, "procedures", "victim", "main.py"), "w") as f:
            f.write("def run():\n    return 1\n")
        outside = os.path.join(root, "outside")
        os.mkdir(outside)
        granted = os.path.join(root, "granted")
        os.mkdir(granted)
        os.symlink(outside, os.path.join(granted, "escape"))
        os.symlink(secret, os.path.join(granted, "secret-link"))
        env = {"PATH": "/usr/bin:/bin", "SENTINEL_SECRET": f"SECRET-{token}"}
        sentinel = subprocess.Popen(["sleep", "300"], env=env)
        stopped = subprocess.Popen(["sleep", "300"])
        os.kill(stopped.pid, signal.SIGSTOP)
        listener = Listener(tag)
        marker = f"proctor-orphan-{tag}"
        h = Host(root, token, secret, repo, outside, granted, sentinel, stopped, listener, marker)
        h.params = {
            "secret": secret,
            "repo": repo,
            "outside": outside,
            "granted": granted,
            "sentinel": sentinel.pid,
            "stopped": stopped.pid,
            "host_pid": os.getpid(),
            "tcp": listener.tcp.getsockname()[1],
            "udp": listener.udp.getsockname()[1],
            "abstract": listener.abstract_name,
            "marker": marker,
            "python": sys.executable,
            "tmp_drop": f"/tmp/proctor-corpus-dropped-{tag}",
        }
        os.environ["PROCTOR_CORPUS_SECRET"] = f"SECRET-{token}"
        try:
            yield h
        finally:
            os.environ.pop("PROCTOR_CORPUS_SECRET", None)
            listener.close()
            for p in (sentinel, stopped):
                p.kill()
                p.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# Procedures. Each receives the host's params and returns what it managed; ATTEMPT runs
# one try and says "open" (it worked) or "blocked" (with the error).
ATTEMPT = """
def attempt(fn):
    try:
        return ["open", repr(fn())[:300]]
    except BaseException as exc:
        return ["blocked", f"{type(exc).__name__}: {exc}"[:300]]

def rd(path):
    with open(path, "rb") as f:
        return f.read()

def wr(path, data=b"pwned"):
    with open(path, "ab") as f:
        f.write(data)
    return path
"""


@dataclass(frozen=True)
class Escape:
    name: str
    title: str
    body: str
    claims: Callable[[str], bool] = lambda profile: profile in ISOLATING
    statuses: tuple[str, ...] = ("ok",)  # the right statuses for this escape
    capabilities: dict[str, Any] = field(default_factory=dict)
    timeout: float = 10.0
    attempts: bool = True  # the value is a dict of ATTEMPT results that must all be blocked
    started: str | None = None  # printed once the attack is under way: proves it ran

    def code(self) -> str:
        return ATTEMPT + textwrap.dedent(self.body)


def _l0_too(profile: str) -> bool:
    return True


def _contained_fork(profile: str) -> bool:
    # Root is exempt from RLIMIT_NPROC: without a pids cgroup nothing bounds a fork bomb.
    if profile == "L0-nocgroup":
        return not ROOT
    return not ROOT or cgroups_writable() or profile in ("L1", "L2")


def _orphan_tracked(profile: str) -> bool:
    return True


ESCAPES: tuple[Escape, ...] = (
    Escape("secret_file", "read a secret file of the host", """
        def run(secret, **_):
            return {"secret": attempt(lambda: rd(secret)), "shadow": attempt(lambda: rd("/etc/shadow"))}
    """),
    Escape("proc_environ", "read another process's /proc/PID/environ", """
        def run(sentinel, host_pid, **_):
            return {"sentinel": attempt(lambda: rd(f"/proc/{sentinel}/environ")),
                    "parent": attempt(lambda: rd(f"/proc/{host_pid}/environ"))}
    """),
    Escape("env_secret", "inherit a secret environment variable", """
        import os
        def run(**_):
            return {"environ": attempt(lambda: os.environ["PROCTOR_CORPUS_SECRET"])}
    """, claims=_l0_too),
    Escape("write_outside", "write outside the work dir", """
        def run(outside, tmp_drop, **_):
            # /tmp may be the sandbox's own: that write is judged by the host's /tmp.
            return {"outside": attempt(lambda: wr(outside + "/dropped")),
                    "~tmp": attempt(lambda: wr(tmp_drop))}
    """),
    Escape("write_git", "write into a repository's .git", """
        def run(repo, **_):
            return {"hook": attempt(lambda: wr(repo + "/.git/hooks/pre-commit", b"#!/bin/sh\\n")),
                    "config": attempt(lambda: wr(repo + "/.git/config", b"[core]\\n"))}
    """),
    Escape("write_source", "write into the procedure's own source", """
        def run(repo, **_):
            return {"own file": attempt(lambda: wr(__file__)),
                    "in the repository": attempt(lambda: wr(repo + "/procedures/victim/main.py"))}
    """),
    Escape("symlink_out", "follow symlinks out (made inside, and planted in a granted path)", """
        import os
        def run(secret, granted, outside, **_):
            def own():
                os.symlink(secret, "link")
                return rd("link")
            return {"own link": attempt(own),
                    "planted read": attempt(lambda: rd(granted + "/secret-link")),
                    "planted write": attempt(lambda: wr(granted + "/escape/dropped"))}
    """, capabilities={"filesystem_write": ["<granted>"]}),
    Escape("hardlink_out", "hardlink a host file into the work dir", """
        import os
        def run(secret, **_):
            def link():
                os.link(secret, "hard")
                return rd("hard")
            return {"hardlink": attempt(link)}
    """),
    Escape("tcp", "TCP to a listener on 127.0.0.1", """
        import socket
        def run(tcp, **_):
            return {"connect": attempt(lambda: socket.create_connection(("127.0.0.1", tcp), timeout=1).close())}
    """),
    Escape("udp", "UDP to a listener on 127.0.0.1", """
        import socket
        def run(udp, **_):
            def send():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                return s.sendto(b"escape", ("127.0.0.1", udp))
            return {"sendto": attempt(send)}
    """),
    Escape("abstract_unix", "connect to an abstract unix socket of the host", """
        import socket
        def run(abstract, **_):
            def connect():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(abstract)
            return {"connect": attempt(connect)}
    """),
    Escape("dns", "resolve a name through DNS", """
        import socket
        def run(**_):
            return {"getaddrinfo": attempt(lambda: socket.getaddrinfo("example.com", 443))}
    """),
    Escape("signal", "signal the parent, a neighbour, or kill(-1)", """
        import os, signal
        def run(sentinel, host_pid, stopped, **_):
            # kill(-1) reports success even when every target refused, so it is judged by
            # its witness: a stopped host process that SIGCONT would wake.
            return {"kill neighbour": attempt(lambda: os.kill(sentinel, signal.SIGKILL)),
                    "signal parent": attempt(lambda: os.kill(host_pid, 0)),
                    "wake the stopped one": attempt(lambda: os.kill(stopped, signal.SIGCONT)),
                    "~kill(-1)": attempt(lambda: os.kill(-1, signal.SIGCONT))}
    """),
    Escape("ptrace", "ptrace the parent or a neighbour", """
        import ctypes, os
        def run(sentinel, host_pid, **_):
            libc = ctypes.CDLL(None, use_errno=True)
            def attach(pid):
                if libc.ptrace(16, pid, None, None) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            return {"neighbour": attempt(lambda: attach(sentinel)), "parent": attempt(lambda: attach(host_pid))}
    """),
    Escape("spawn", "start a process without the subprocess capability", """
        import os, subprocess
        def run(**_):
            def fork():
                pid = os.fork()
                if pid == 0:
                    os._exit(0)
                return os.waitpid(pid, 0)
            return {"subprocess": attempt(lambda: subprocess.run(["/bin/true"], check=True)),
                    "fork": attempt(fork),
                    "posix_spawn": attempt(lambda: os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0))}
    """),
    Escape("fork_bomb", "fork bomb (with the subprocess capability)", """
        import os
        def run(**_):
            print("bombing", flush=True)
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """, claims=_contained_fork, statuses=("timeout", "killed", "error"), capabilities={"subprocess": True}, timeout=0.8, attempts=False, started="bombing"),
    Escape("memory_bomb", "memory bomb", """
        def run(**_):
            hog = []
            while True:
                hog.append(bytearray(16 * 1024 * 1024))
    """, claims=_l0_too, statuses=("error", "killed"), attempts=False),
    Escape("infinite_loop", "infinite loop", """
        def run(**_):
            while True:
                pass
    """, claims=_l0_too, statuses=("timeout",), timeout=0.5, attempts=False),
    Escape("setsid_orphan", "a setsid orphan outliving the timeout", """
        import os, subprocess
        def run(python, marker, **_):
            subprocess.Popen([python, "-c", "import time; time.sleep(60)", marker], start_new_session=True)
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(python, [python, "-c", "import time; time.sleep(60)", marker])
                os._exit(0)
            print("orphans started", flush=True)
            while True:
                pass
    """, claims=_orphan_tracked, statuses=("timeout",), capabilities={"subprocess": True}, timeout=1.0, attempts=False, started="orphans started"),
    Escape("exit_orphan", "a setsid orphan left behind by os._exit", """
        import os, subprocess, time
        def run(python, marker, **_):
            subprocess.Popen([python, "-c", "import time; time.sleep(60)", marker], start_new_session=True)
            print("orphan started", flush=True)
            time.sleep(0.2)
            os._exit(0)
    """, claims=_orphan_tracked, statuses=("error",), capabilities={"subprocess": True}, attempts=False, started="orphan started"),
    Escape("flood", "flood stdout", """
        import sys
        def run(**_):
            while True:
                sys.stdout.write("x" * 65536)
    """, claims=_l0_too, statuses=("killed",), attempts=False),
    Escape("ctypes", "ctypes calls: unshare, mount, a new user namespace", """
        import ctypes, os
        def run(**_):
            libc = ctypes.CDLL(None, use_errno=True)
            def call(fn, *args):
                if fn(*args) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            return {"unshare(NEWUSER)": attempt(lambda: call(libc.unshare, 0x10000000)),
                    "unshare(NEWNS)": attempt(lambda: call(libc.unshare, 0x00020000)),
                    "mount tmpfs": attempt(lambda: call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None))}
    """),
)  # fmt: skip


@dataclass
class Verdict:
    blocked: bool
    status: str
    detail: str
    result: SandboxResult | None = None


Runner = Callable[[Escape, str, Host, dict[str, Any]], SandboxResult]


def sandboxed(escape: Escape, profile: str, h: Host, caps: dict[str, Any]) -> SandboxResult:
    """A cell run straight through ``run_in_sandbox``, with no checks and no record."""
    return run_in_sandbox(
        escape.code(),
        h.params,
        capabilities=caps,
        limits=LIMITS,
        timeout=escape.timeout,
        env={"PROCTOR_CORPUS_MARKER": h.marker},
        **PROFILES[profile],
    )


def run_escape(escape: Escape, profile: str, h: Host, runner: Runner = sandboxed) -> Verdict:
    """Run one cell: the escape under the profile, then judge the result and the host.

    ``runner`` starts the escape; the default is the sandbox alone, and
    tests/test_sandbox_corpus.py also sends a subset through ``Workspace.run``."""
    caps = {k: [h.granted] if v == ["<granted>"] else v for k, v in escape.capabilities.items()}
    before = h.snapshot()
    received = len(h.listener.received)
    res = runner(escape, profile, h, caps)
    time.sleep(0.05)  # let the listener see a late packet
    problems: list[str] = []
    if res.status not in escape.statuses:
        problems.append(
            f"status {res.status} ({res.reason or res.error_type}: {res.error_message}), wanted {'/'.join(escape.statuses)}"
        )
    if escape.attempts and res.status == "ok":
        value = res.value if isinstance(res.value, dict) else {}
        problems += [
            f"{k}: {v[1]}" for k, v in value.items() if v[0] != "blocked" and not k.startswith("~")
        ]
    if os.path.exists(h.params["tmp_drop"]):
        os.unlink(h.params["tmp_drop"])
        problems.append("a file was written to the host's /tmp")
    if escape.started and escape.started not in res.stdout:
        problems.append(f"the attack never got under way (no {escape.started!r} on stdout)")
    seen = f"{res.value} {res.stdout} {res.stderr}"
    if h.token in seen:
        problems.append("the secret reached the result")
    if h.snapshot() != before:
        problems.append("host files changed")
    if len(h.listener.received) > received:
        problems.append(f"a host socket was reached: {h.listener.received[received:]}")
    if h.sentinel.poll() is not None:
        problems.append("the neighbour process was killed")
    if _state(h.stopped.pid) != "T":
        problems.append("the stopped host process was woken")
        os.kill(h.stopped.pid, signal.SIGSTOP)
    left = h.leftovers()
    if left:
        problems.append(f"{len(left)} process(es) outlived the run")
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    detail = "; ".join(problems) or _blocked_detail(res)
    return Verdict(not problems, res.status, detail, res)


def _blocked_detail(res: SandboxResult) -> str:
    if res.status == "ok" and isinstance(res.value, dict):
        reasons = {
            v[1].split(":")[0]
            for k, v in res.value.items()
            if isinstance(v, list) and v[0] == "blocked" and not k.startswith("~")
        }
        return ", ".join(sorted(reasons))
    if res.status == "error":
        return f"{res.error_type}"
    return res.reason or res.status
