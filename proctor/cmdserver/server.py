"""The command server: imports the CLI once, then forks a child per command.

    python -P -m proctor.cmdserver.server --socket PATH [--idle SECONDS] [--path0 DIR]

Started by the client (or ``proctor server start``) in a session of its own. One loop
accepts connections and reaps children; nothing else runs in this process, and it never
starts a thread, so a fork copies a process that is only its imports. A child takes
over the caller's standard streams, working folder, environment, umask and resource
limits, runs :func:`proctor.cli.main` and exits; its status goes back to the caller.

The server exits when it has been idle for ``--idle`` seconds, when it is told to
(``proctor server stop``), when another server took its socket's name, and when
proctor's files or the import path changed since it started (the command that found
out runs on its own and starts a fresh server).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

from proctor.cmdserver import common

#: What a command imports, imported once here: the CLI with every command group, the
#: workspace, the action pipeline with its models, the built-in plugins.
PRELOAD = (
    "proctor.cli",
    "proctor.cmdserver.commands",
    "proctor.cmdserver.client",
    "proctor.workspace",
    "proctor.engine.pipeline",
    "proctor.engine.actions",
    "proctor.procedures.actions",
    "proctor.procedures.repository",
    "proctor.store.gitstore",
    "proctor.core.plugins",
    "proctor.core.policy",
    "proctor.checks.runner",
    "proctor.procedures.migration",
    "proctor.proposals.actions",
    "proctor.proposals.service",
    "proctor.plugins.side_effects.settings",
    "pluggy",
    "tomllib",
)


def preload() -> None:
    """Import what a command would import first thing (models built, plugins imported)."""
    import importlib

    from proctor.core.entrypoints import spare_pydantic_plugin_scan

    spare_pydantic_plugin_scan()
    for name in PRELOAD:
        importlib.import_module(name)
    from proctor.plugins import BUILTIN_PLUGINS

    for module in BUILTIN_PLUGINS.values():
        importlib.import_module(module)
    _complete_models()


def _complete_models() -> None:
    """Build the pydantic models whose build waits for their first use (a forward
    reference resolved then): each child would build them again, ~3 ms a model."""
    from pydantic import BaseModel

    todo: list[type[BaseModel]] = [BaseModel]
    while todo:
        for model in todo.pop().__subclasses__():
            todo.append(model)
            if model.__module__.startswith("proctor.") and not model.__pydantic_complete__:
                with contextlib.suppress(Exception):  # left to be built as it would be
                    model.model_rebuild()


def stamp() -> tuple[tuple[str, int, int], ...]:
    """What changes when what a child would import changes: every file of proctor (an
    editable install is edited in place) and every folder on the import path (a package
    installed, upgraded or removed changes its site-packages folder)."""
    import proctor

    seen: list[tuple[str, int, int]] = []
    root = os.path.dirname(os.path.abspath(proctor.__file__))
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json", ".toml", ".txt")):
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                seen.append((path, st.st_mtime_ns, st.st_size))
    for entry in sys.path:
        try:
            st = os.stat(entry or ".")
        except OSError:
            continue
        seen.append((entry, st.st_mtime_ns, st.st_size))
    return tuple(seen)


class Server:
    """The accept-and-reap loop; see the module docstring."""

    def __init__(self, path: str, idle: float, taken: tuple[tuple[str, int, int], ...]) -> None:
        self.path = path
        self.idle = idle
        self.flavour = common.flavour()
        self.stamp = taken  # before the preload: an edit made during it is a change
        self.started = time.time()
        self.served = 0
        self.children: dict[int, socket.socket | None] = {}
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.listener = self._bind()
        self.inode = os.stat(path).st_ino
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        """Listen at a private name, then rename it into place: a client never meets a
        socket with the wrong mode, and a server that lost the name notices (``_ours``)."""
        # Shorter than the final name, which the client checked against the length limit.
        tmp = os.path.join(os.path.dirname(self.path), f".{os.getpid()}.new")
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(tmp)
        finally:
            os.umask(old)
        sock.listen(64)
        os.rename(tmp, self.path)
        return sock

    def _ours(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def stop(self) -> None:
        """Take no new command; exit once the running ones are done."""
        if not self.stopping:
            self.stopping = True
            if self._ours():
                with contextlib.suppress(OSError):
                    os.unlink(self.path)

    def serve(self) -> None:
        last = time.monotonic()
        while not (self.stopping and not self.children):
            for key, _mask in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(OSError):
                        while os.read(self._wake_r, 512):
                            pass
                else:
                    self._caller_gone(key.data)
            self._reap()
            now = time.monotonic()
            if self.children:
                last = now
            elif now - last > self.idle or not self._ours():
                self.stop()
        self.selector.close()
        self.listener.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            # A client sends its request with its first write: one that sends nothing
            # holds up the others for at most this long.
            conn.settimeout(1.0)
            if not self._same_user(conn):
                conn.close()
                return
            request, fds = common.receive(conn, max_fds=3)
            if request is None:
                conn.close()
                return
            op = request.get("op")
            if request.get("protocol") != common.PROTOCOL:
                common.send(conn, {"fallback": "another version of proctor", "restart": True})
                self.stop()
            elif op == "status":
                common.send(conn, self.status())
            elif op == "stop":
                self.stop()
                common.send(conn, {"stopping": True, "pid": os.getpid()})
            elif op == "run":
                self._run(conn, request, fds)
                return
            else:
                common.send(conn, {"error": f"unknown op {op!r}"})
            conn.close()
        except (OSError, common.Unusable, ValueError, KeyError, TypeError):
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _same_user(self, conn: socket.socket) -> bool:
        """Whether the peer is this user. Where the system cannot say (no
        ``SO_PEERCRED``), the private folder is what keeps other users out."""
        uid = common.peer_uid(conn)
        return uid is None or uid == os.geteuid()

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "socket": self.path,
            "started": self.started,
            "served": self.served,
            "busy": len(self.children),
            "idle_timeout": self.idle,
            "stopping": self.stopping,
        }

    def _fallback(self, request: dict[str, Any]) -> tuple[str, bool] | None:
        """Why this server may not run ``request`` (and whether to start a new one)."""
        if self.stopping:
            return "the server is stopping", False
        if request.get("flavour") != self.flavour:
            return "another interpreter or import path", False
        if request.get("groups") != [os.getegid(), *sorted(os.getgroups())]:
            return "the caller's groups are not the server's", False
        if stamp() != self.stamp:
            self.stop()
            return "proctor or its libraries changed since the server started", True
        import resource

        for which, soft, hard in request.get("limits", []):
            try:
                _, mine = resource.getrlimit(which)
            except (OSError, ValueError):
                continue
            if mine != resource.RLIM_INFINITY and (
                hard == resource.RLIM_INFINITY or hard > mine or soft > mine
            ):
                return f"resource limit {which} is above the server's", False
        return None

    def _run(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        why = self._fallback(request)
        if why is None and len(fds) != 3:
            why = ("the standard streams did not arrive", False)
        if why is not None:
            common.send(conn, {"fallback": why[0], "restart": why[1]})
            conn.close()
            return
        # No signal is handled between the fork and the child's own dispositions: the
        # server's handlers (SIGTERM stops the server) must never run in a child.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _RESET)
        pid = os.fork()
        if pid == 0:
            try:
                self._forget()
                conn.settimeout(None)
            except BaseException:  # noqa: BLE001  (a child never unwinds into the server)
                os._exit(1)
            _child(request, fds, conn, blocked)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.served += 1
        # The child tells the caller its pid and, at the end, its status itself, so the
        # caller hears both even if this server dies meanwhile. The server speaks on
        # this connection only once the child is gone, so the two never write at the
        # same time: the status again (the caller keeps the first it reads), or the
        # signal that killed a child which could not send it.
        conn.settimeout(None)
        self.children[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def _forget(self) -> None:
        """In a child: close everything of the server's, through the objects that hold
        it (a descriptor closed behind an object's back would be closed again later,
        by then maybe reused for one of the command's files)."""
        signal.set_wakeup_fd(-1)
        self.selector.close()
        self.listener.close()
        for other in self.children.values():
            if other is not None:
                other.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _caller_gone(self, pid: int) -> None:
        """The caller's connection became readable: it closed (it was killed). The
        command is ended as if it had been the caller's own process."""
        conn = self.children.get(pid)
        if conn is None:
            return
        try:
            data = conn.recv(1)
        except OSError:
            data = b""
        if data:
            return
        self.selector.unregister(conn)
        conn.close()
        self.children[pid] = None
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGHUP)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left to wait for: their callers hear the end
                for conn in self.children.values():
                    if conn is not None:
                        with contextlib.suppress(KeyError, ValueError):
                            self.selector.unregister(conn)
                        conn.close()
                self.children.clear()
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            self.selector.unregister(conn)
            if os.WIFSIGNALED(status):
                answer = {"signal": os.WTERMSIG(status)}
            else:
                answer = {"exit": os.waitstatus_to_exitcode(status)}
            try:
                common.send(conn, answer)
            except OSError:
                pass
            conn.close()


#: The signals a child sets as the caller has them (ignored, or as a fresh interpreter
#: sets them); blocked from the fork until then. SIGPIPE and SIGXFSZ stay ignored, as
#: the interpreter ignores them in every process.
_RESET = {
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGTERM,
    signal.SIGCHLD,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
}


def _signals(ignored: list[int]) -> None:
    """The caller's dispositions: what it ignores stays ignored (``nohup``, a shell's
    background job), the rest as a fresh interpreter has them."""
    for signum in _RESET:
        if signum in ignored:
            signal.signal(signum, signal.SIG_IGN)
        elif signum == signal.SIGINT:
            signal.signal(signum, signal.default_int_handler)
        else:
            signal.signal(signum, signal.SIG_DFL)


def _streams(request: dict[str, Any]) -> None:
    """Standard streams over the caller's descriptors, as the interpreter makes them:
    the caller's encodings, no newline translation, line buffering on a terminal
    (stderr always), written through with ``PYTHONUNBUFFERED``, named ``<stdout>``..."""
    import io

    unbuffered = bool(request["env"].get("PYTHONUNBUFFERED"))
    made = []
    for fd, (encoding, errors) in enumerate(request["streams"]):
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]
        buffered: Any = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        made.append(
            io.TextIOWrapper(
                buffered,
                encoding=encoding or "utf-8",
                errors=errors or "strict",
                newline="\n",
                line_buffering=fd == 2 or (fd == 1 and os.isatty(fd)),
                write_through=unbuffered and fd != 0,
            )
        )
    sys.stdin, sys.stdout, sys.stderr = made
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = made  # type: ignore[misc]


def _child(
    request: dict[str, Any], fds: list[int], conn: socket.socket, blocked: set[int | signal.Signals]
) -> None:
    """Become the caller's command, run it, exit with its status. Never returns.

    The child tells the caller its pid first and its status last, on its own copy of
    the connection: both reach the caller even if the server dies meanwhile.
    """
    code = 1
    die_by = 0
    try:
        _signals(request.get("ignored", []))
        os.setpgid(0, 0)  # the caller's signals go to the command and what it started
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        common.send(conn, {"pid": os.getpid()})
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        _streams(request)
        import resource

        for which, soft, hard in request["limits"]:
            try:
                resource.setrlimit(which, (soft, hard))
            except (OSError, ValueError):
                pass
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()  # the caller's TZ, for the dates of its commits
        os.chdir(request["cwd"])
        tempfile = sys.modules.get("tempfile")
        if tempfile is not None:  # its folder is found again from the caller's TMPDIR
            tempfile.tempdir = None  # type: ignore[attr-defined]
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["proctor", *argv]
        from proctor.cmdserver.client import run_cli

        code = run_cli(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        # As the interpreter ends on an uncaught Ctrl-C: the traceback, the exit
        # handlers, then killed by SIGINT itself, which the caller passes on.
        import traceback

        traceback.print_exc()
        die_by = signal.SIGINT
    except BaseException:  # noqa: BLE001  (reported as the interpreter would, exit 1)
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        _exit(code, conn, die_by)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _exit(code: int, conn: socket.socket, die_by: int = 0) -> None:
    """What the interpreter does at exit, in a fork: join threads, run exit handlers,
    flush; tell the caller; then leave without unwinding into the server's frames (or
    die of ``die_by``, which the server then reports)."""
    try:
        import atexit
        import threading

        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
        _flush()
        if die_by:
            signal.signal(die_by, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {die_by})
            os.kill(os.getpid(), die_by)
        with contextlib.suppress(OSError):
            common.send(conn, {"exit": code & 0xFF})
    finally:
        os._exit(code & 0xFF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="proctor-server", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True, help="where to listen")
    parser.add_argument("--idle", type=float, default=common.DEFAULT_IDLE, help="idle seconds")
    parser.add_argument("--path0", default=None, help="the caller's sys.path[0]")
    opts = parser.parse_args(argv)
    if opts.path0 is not None:
        sys.path.insert(0, opts.path0)
    taken = stamp()
    preload()
    server = Server(opts.socket, opts.idle, taken)
    print(f"proctor command server {os.getpid()} listening at {opts.socket}", file=sys.stderr)
    sys.stderr.flush()
    server.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
