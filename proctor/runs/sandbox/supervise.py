"""Starting the sandboxed process and watching it: pipes, caps, the clock, the kill.

One thread, one selector: stdout and stderr are read as they come (the first
``Limits.output`` bytes kept, the run killed past ``output_max``), the header is written
as the runner reads it, result lines are parsed as they arrive, and a pidfd (or a short
poll where there is none) says when the process ended. Whatever way the run ends, every
process it started is killed before ``supervise`` returns: the cgroup's members where
there is a cgroup, the namespace's init under bubblewrap (its death takes the whole pid
namespace), else the tree below the in-sandbox supervisor, which is the subreaper of
everything the procedure starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from .cgroups import RunCgroup
from .model import Limits

KILL_WAIT = 5.0


class Stop:
    """A way to end a run from another thread (the caller was interrupted): ``set`` wakes
    the supervising loop, which kills the run as it would at its timeout. A pipe, so
    the loop's one ``select`` waits on it with the run's own pipes."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)

    def fileno(self) -> int:
        return self._r

    def set(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._w, b"x")

    def close(self) -> None:
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass
class Spawn:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    header: bytes
    in_fd: int  # the runner's end of the header pipe
    out_fd: int  # the runner's end of the result pipe
    header_w: int  # our end of the header pipe
    result_r: int  # our end of the result pipe
    extra_fds: tuple[int, ...] = ()
    cgroup: RunCgroup | None = None
    namespaced: bool = False  # argv starts bubblewrap
    info_r: int = -1  # bubblewrap's --info-fd, read end: the namespace init's host pid
    join_cgroup: bool = False  # move the started process into ``cgroup`` before the header


@dataclass
class Outcome:
    records: list[dict[str, Any]] = field(default_factory=list)
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_total: int = 0
    stderr_total: int = 0
    returncode: int | None = None
    timed_out: bool = False
    killed_for: str | None = None
    duration: float = 0.0
    left_behind: int = 0  # processes still alive after the kill (should be 0)

    def first(self, *kinds: str) -> dict[str, Any] | None:
        return next((r for r in self.records if r.get("kind") in kinds), None)


def children(pid: int) -> list[int]:
    """Live (not zombie) children of ``pid``, from /proc/PID/task/*/children."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return [p for p in out if not _zombie(p)]


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def kill_run(proc: subprocess.Popen[bytes], spawn: Spawn) -> int:
    """Kill everything the run started; return how many processes survived (0 normally)."""
    deadline = time.monotonic() + KILL_WAIT
    if spawn.namespaced:
        # bubblewrap's child is the pid namespace's init: killing it kills the namespace,
        # and bubblewrap exits only once that init is reaped (which waits for every task
        # of the namespace), so proc.wait() below means they are all gone. Its pid comes
        # from --info-fd: an unprivileged bubblewrap is not dumpable, so /proc will not
        # list its children to us.
        init = _namespace_init(spawn.info_r)
        if init is not None and proc.poll() is None and _ppid(init) == proc.pid:
            _kill(init)
            try:
                proc.wait(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                pass
    elif proc.poll() is None:
        for _ in range(200):  # a fork bomb refills the tree: go round until it is empty
            below = descendants(proc.pid)
            if not below or time.monotonic() > deadline:
                break
            for pid in below:
                _kill(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    _kill(proc.pid)
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    if spawn.cgroup is not None:
        spawn.cgroup.kill_all(deadline)
        return len(spawn.cgroup.pids())
    return 0 if proc.poll() is not None else 1


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _namespace_init(info_r: int) -> int | None:
    if info_r < 0:
        return None
    os.set_blocking(info_r, False)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(info_r, 4096):
            data += chunk
    try:
        pid = json.loads(data)["child-pid"]
    except (ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) and pid > 1 else None


class _Stream:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep - len(self.data)
        if room > 0:
            self.data += chunk[:room]


def supervise(spawn: Spawn, *, timeout: float, limits: Limits, stop: Stop | None = None) -> Outcome:
    """Run ``spawn`` to its end under the clock and the output caps (or until ``stop``)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        spawn.argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=spawn.env,
        cwd=spawn.cwd,
        pass_fds=(spawn.in_fd, spawn.out_fd, *spawn.extra_fds),
        start_new_session=True,
    )
    for fd in (spawn.in_fd, spawn.out_fd, *spawn.extra_fds):
        os.close(fd)
    if spawn.join_cgroup and spawn.cgroup is not None:
        # The runner forks the procedure only once it has the whole header, which is
        # written after this move: everything the procedure starts is in the cgroup. A
        # v1 move can wait for an RCU grace period; here it overlaps the interpreter's
        # start-up instead of adding to it.
        try:
            spawn.cgroup.add(proc.pid)
        except OSError:
            _kill(proc.pid)
            proc.wait()
            for fd in (spawn.header_w, spawn.result_r, spawn.info_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
    outcome = Outcome()
    try:
        _loop(proc, spawn, outcome, start + timeout, limits, stop)
    finally:
        outcome.left_behind = kill_run(proc, spawn)
        outcome.returncode = proc.poll()
        if spawn.info_r >= 0:
            os.close(spawn.info_r)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        outcome.duration = time.monotonic() - start
    return outcome


def _loop(
    proc: subprocess.Popen[bytes],
    spawn: Spawn,
    outcome: Outcome,
    deadline: float,
    limits: Limits,
    stop: Stop | None = None,
) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    out, err = _Stream(limits.output), _Stream(limits.output)
    streams = {proc.stdout.fileno(): (out, "stdout"), proc.stderr.fileno(): (err, "stderr")}
    result_r, header_w = spawn.result_r, spawn.header_w
    pending = memoryview(spawn.header)
    results = bytearray()
    result_cap = limits.result + 1024 * 1024
    pidfd = -1
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(proc.pid)
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    sel.register(result_r, selectors.EVENT_READ)
    os.set_blocking(header_w, False)
    sel.register(header_w, selectors.EVENT_WRITE)
    if pidfd >= 0:
        sel.register(pidfd, selectors.EVENT_READ)
    stop_fd = stop.fileno() if stop is not None else -1
    if stop_fd >= 0:
        sel.register(stop_fd, selectors.EVENT_READ)
    exited = False
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                outcome.timed_out = not exited
                return
            if exited and not streams and result_r < 0:
                return
            wait = deadline - now if pidfd >= 0 and not exited else min(deadline - now, 0.02)
            for key, _ in sel.select(timeout=wait):
                fd = int(key.fd)
                if fd == header_w:
                    try:
                        pending = pending[os.write(fd, pending) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(fd)
                        os.close(fd)
                        header_w = -1
                elif fd == stop_fd:
                    outcome.killed_for = "interrupted: the caller stopped the run"
                    return
                elif fd == pidfd:
                    sel.unregister(fd)
                    exited = True
                    # Whatever still holds the pipes open is left over: give them a moment.
                    deadline = min(deadline, time.monotonic() + 0.2)
                elif fd == result_r:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        sel.unregister(fd)
                        os.close(fd)
                        result_r = -1
                        continue
                    results += chunk
                    if len(results) > result_cap:
                        outcome.killed_for = f"result channel over {result_cap} bytes"
                        return
                    *lines, rest = results.split(b"\n")
                    results = bytearray(rest)
                    for line in lines:
                        with contextlib.suppress(ValueError):
                            outcome.records.append(json.loads(line))
                    if outcome.first("exit", "fatal"):
                        return  # the procedure has ended: what is left gets killed
                else:
                    stream, name = streams[fd]
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        sel.unregister(fd)
                        del streams[fd]
                        continue
                    stream.add(chunk)
                    if stream.total > limits.output_max:
                        outcome.killed_for = f"{name} over {limits.output_max} bytes"
                        return
            if pidfd < 0 and not exited and proc.poll() is not None:
                exited = True
                deadline = min(deadline, time.monotonic() + 0.2)
    finally:
        _drain(streams)
        outcome.stdout, outcome.stdout_total = bytes(out.data), out.total
        outcome.stderr, outcome.stderr_total = bytes(err.data), err.total
        for fd in (result_r, header_w, pidfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        sel.close()


def _drain(streams: dict[int, tuple[_Stream, str]]) -> None:
    """Take what is already in the pipes, without waiting for writers that may linger."""
    for fd, (stream, _name) in streams.items():
        os.set_blocking(fd, False)
        with contextlib.suppress(OSError):
            for _ in range(64):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                stream.add(chunk)
