"""The ``proctor`` console script: the command server's client, else the CLI itself.

Without ``PROCTOR_SERVER=1`` this is :func:`proctor.cli.main` and nothing more. With it,
the command goes to the server of this interpreter's flavour (started in the background
by the first command that finds none, which runs on its own meanwhile), and this process
only passes its streams, waits, forwards signals and exits with the command's status.
Whenever the server cannot stand in faithfully (see :func:`_why_not`) the command runs
here, as it would have without the variable.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

#: The signals a user sends to "the command" that the child must get (unless this
#: process ignores them: then the command ignores them too).
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
#: The signals whose being ignored the child copies.
SIGNALS = (*FORWARDED, "SIGALRM", "SIGCHLD", "SIGTSTP", "SIGTTIN", "SIGTTOU")
#: Exit status when the connection to the server ends before the command's status came:
#: the command may have run, so it is not run again.
EXIT_LOST = 1


def main(argv: list[str] | None = None) -> int:
    """Run ``proctor`` with ``argv`` (default: the command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _enabled() and "server" not in args:  # ``proctor [options] server ...`` runs here
        code = _through_server(args)
        if code is not None:
            return code
    return run_cli(args)


def run_cli(args: list[str]) -> int:
    """The CLI with the console script's own command group, ``proctor server``."""
    from proctor.cli import main as cli_main
    from proctor.cli.base import cli
    from proctor.cmdserver.commands import server

    cli.add_command(server)
    return cli_main(args)


def _enabled() -> bool:
    """``PROCTOR_SERVER`` is on; read here, so that a command without it imports nothing
    of the server's (``proctor.cmdserver.common`` brings ``socket`` and ``json``)."""
    return os.environ.get("PROCTOR_SERVER", "").strip().lower() in ("1", "true", "yes", "on")


def _why_not() -> str | None:
    """Why this process cannot hand its command over, or None.

    A terminal on stdin stays with the command run here: a process outside the terminal's
    foreground group is stopped when it reads from it. Closed standard streams cannot be
    passed.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return f"file descriptor {fd} is closed"
    if os.isatty(0):
        return "stdin is a terminal"
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if stream is None:
            return "a standard stream is missing"
    return None


def _request(args: list[str], flavour: str) -> dict[str, Any]:
    import resource

    from proctor.cmdserver import common

    umask = os.umask(0o022)
    os.umask(umask)
    limits = []
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            which = getattr(resource, name)
            try:
                soft, hard = resource.getrlimit(which)
            except (OSError, ValueError):
                continue
            limits.append([which, soft, hard])
    import signal

    ignored = [
        int(getattr(signal, name))
        for name in SIGNALS
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) == signal.SIG_IGN
    ]
    return {
        "protocol": common.PROTOCOL,
        "ignored": ignored,
        "groups": [os.getegid(), *sorted(os.getgroups())],
        "op": "run",
        "flavour": flavour,
        "argv": args,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "limits": limits,
        "streams": [
            [getattr(s, "encoding", None), getattr(s, "errors", None)]
            for s in (sys.stdin, sys.stdout, sys.stderr)
        ],
    }


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: command server not used: {message}\n")
    sys.stderr.flush()


def _debug(message: str) -> None:
    """Why a command ran here after all, when ``PROCTOR_SERVER_DEBUG`` is set."""
    if os.environ.get("PROCTOR_SERVER_DEBUG"):
        sys.stderr.write(f"proctor server: {message}\n")
        sys.stderr.flush()


def _through_server(args: list[str]) -> int | None:
    """The command's exit status from the server; None to run it here instead."""
    from proctor.cmdserver import common

    why = _why_not()
    if why is not None:
        _debug(f"running here: {why}")
        return None
    try:
        flavour = common.flavour()
        path = common.socket_path(common.private_folder(create=True), flavour)
        request = _request(args, flavour)
    except common.Unusable as exc:
        _warn(str(exc))
        return None
    except OSError:  # no working folder (deleted under us): the CLI says it better
        return None
    try:
        sock = common.connect(path, timeout=5.0)
    except common.Unusable as exc:
        _warn(str(exc))
        return None
    except OSError:
        _debug(f"running here: no server at {path}; starting one")
        _start(path)
        return None
    with sock:
        try:
            common.send(sock, request, [0, 1, 2])
            sock.settimeout(None)
            answer, _ = common.receive(sock)
        except (OSError, ValueError, common.Unusable):
            return None  # nothing was started (the command says its pid first): run here
        if answer is not None and ("exit" in answer or "signal" in answer):
            return _status(answer)  # it ended before it could say its pid
        if answer is None or "pid" not in answer:
            _debug(f"running here: {(answer or {}).get('fallback', 'no answer')}")
            if answer is not None and answer.get("restart"):
                _start(path)
            return None
        return _wait(sock, int(answer["pid"]))


def _start(path: str) -> None:
    """Start a server for the next command (this one runs here meanwhile)."""
    from proctor.cmdserver import common

    try:
        idle = int(os.environ.get("PROCTOR_SERVER_IDLE", common.DEFAULT_IDLE))
        common.spawn(path, idle)
    except (OSError, ValueError) as exc:
        _warn(f"cannot start it: {exc}")


def _status(answer: dict[str, Any]) -> int:
    """The command's exit status, or this process's end by the signal that ended it."""
    if "signal" in answer:
        return _die_by(int(answer["signal"]))
    return int(answer["exit"])


def _die_by(signum: int) -> int:
    """End as the command ended, by signal ``signum``, so the caller sees what it would
    have seen of the command run here; the shell's 128+N if the signal does not kill."""
    import signal

    try:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):
        pass
    return 128 + signum


def _wait(sock: socket.socket, pid: int) -> int:
    """Forward signals to the command (pid ``pid``) until its status arrives."""
    import signal

    from proctor.cmdserver import common

    def forward(signum: int, _frame: object) -> None:
        try:  # the command leads a process group of its own: what it started gets it too
            os.killpg(pid, signum)
        except OSError:
            try:
                os.kill(pid, signum)
            except OSError:
                pass

    before = {
        name: signal.signal(getattr(signal, name), forward)
        for name in FORWARDED
        if signal.getsignal(getattr(signal, name)) != signal.SIG_IGN
    }
    try:
        while True:
            try:
                answer, _ = common.receive(sock)
            except InterruptedError:
                continue
            except (OSError, ValueError, common.Unusable):
                answer = None
            if answer is None:
                sys.stderr.write(
                    "error: the command server ended before the command did; it may have run"
                    " (see `git log`)\n"
                )
                return EXIT_LOST
            if "exit" in answer or "signal" in answer:
                return _status(answer)
    finally:
        for name, handler in before.items():
            signal.signal(getattr(signal, name), handler)
