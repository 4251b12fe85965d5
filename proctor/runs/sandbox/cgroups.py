"""A cgroup per run, where this process may create one: limits and a complete kill list.

Rlimits count per process (address space) or per user (processes, and root is exempt);
a cgroup counts the run as a whole, and it is the one list of the run's processes that a
``setsid`` and a double fork cannot leave. Version 1 (one hierarchy per controller) and
version 2 (one unified hierarchy) are both found through ``/proc/self/cgroup`` and the
mount table; the run's cgroup is created below the cgroup this process is in, so the
limits of whoever placed us still hold. Nothing writable means the layer is skipped,
said so in the result, and the level is not lowered: level 0 does not promise cgroups.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass

CONTROLLERS = ("pids", "memory")


@dataclass(frozen=True)
class Hierarchy:
    version: int
    base: str  # the directory of the cgroup this process is in
    controllers: tuple[str, ...]


def _mounts() -> list[tuple[str, str, set[str]]]:
    out = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                out.append((parts[1], parts[2], set(parts[3].split(","))))
    return out


@functools.lru_cache(maxsize=1)
def hierarchies() -> tuple[tuple[Hierarchy, ...], str]:
    """The writable hierarchies that carry pids or memory, and a note on what is missing."""
    if not os.path.exists("/proc/self/cgroup"):
        return (), "no cgroups on this platform"
    try:
        mounts = _mounts()
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError as exc:
        return (), f"cgroups unreadable: {exc}"
    found: list[Hierarchy] = []
    notes: list[str] = []
    v1 = {c for _id, names, _path in lines if names for c in names.split(",")}
    for _id, names, path in lines:
        if names:  # version 1: this line's hierarchy carries the named controllers
            wanted = tuple(c for c in CONTROLLERS if c in names.split(","))
            for point, kind, opts in mounts:
                if wanted and kind == "cgroup" and set(wanted) <= opts:
                    found.append(Hierarchy(1, os.path.join(point, path.lstrip("/")), wanted))
                    break
        else:  # version 2: the controllers not taken by a v1 hierarchy
            for point, kind, _opts in mounts:
                if kind != "cgroup2":
                    continue
                base = os.path.join(point, path.lstrip("/"))
                try:
                    with open(os.path.join(base, "cgroup.controllers"), encoding="utf-8") as f:
                        avail = f.read().split()
                except OSError:
                    continue
                wanted = tuple(c for c in CONTROLLERS if c in avail and c not in v1)
                found.append(Hierarchy(2, base, wanted))
                break
    if any(h.controllers for h in found):
        found = [h for h in found if h.controllers]  # a bare v2 tree adds nothing then
    usable = []
    for h in found:
        if os.access(h.base, os.W_OK):
            usable.append(h)
        elif h.controllers:
            notes.append(f"{'/'.join(h.controllers)} cgroup not writable")
    if not any(h.controllers for h in usable) and not notes:
        notes.append("no pids or memory controller")
    return tuple(usable), "; ".join(notes)


class RunCgroup:
    """The cgroup directories of one run, one per hierarchy used."""

    def __init__(self, dirs: list[tuple[Hierarchy, str]], detail: str) -> None:
        self.dirs = dirs
        self.detail = detail
        # Version 1 keeps the list in every hierarchy; one is enough to kill from.
        self.procs_files = [os.path.join(d, "cgroup.procs") for _h, d in dirs]

    def add(self, pid: int) -> None:
        """Move ``pid`` (not yet running anything untrusted) into every hierarchy."""
        for path in self.procs_files:
            _write(path, str(pid))

    def pids(self) -> set[int]:
        for path in self.procs_files:
            try:
                with open(path, encoding="ascii") as f:
                    return {int(x) for x in f.read().split()}
            except OSError:
                continue
        return set()

    def kill_all(self, deadline: float) -> bool:
        """SIGKILL every member until none is left (or the deadline passes)."""
        while True:
            members = self.pids()
            if not members:
                return True
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)

    def oom_killed(self) -> bool:
        for h, d in self.dirs:
            if "memory" not in h.controllers:
                continue
            name = "memory.events" if h.version == 2 else "memory.oom_control"
            with contextlib.suppress(OSError), open(os.path.join(d, name), encoding="ascii") as f:
                for line in f:
                    key, _, count = line.partition(" ")
                    if key == "oom_kill" and count.strip() not in ("", "0"):
                        return True
        return False

    def remove(self) -> None:
        for _h, d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)  # the last exits are still being accounted


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


def create(memory: int, processes: int) -> tuple[RunCgroup | None, str]:
    """A fresh cgroup with the run's limits, or None and why not."""
    usable, note = hierarchies()
    if not usable:
        return None, f"skipped: {note}"
    name = f"proctor-run-{secrets.token_hex(6)}"
    dirs: list[tuple[Hierarchy, str]] = []
    applied: list[str] = []
    try:
        for h in usable:
            path = os.path.join(h.base, name)
            os.mkdir(path)
            dirs.append((h, path))
            if h.version == 2 and h.controllers:
                with contextlib.suppress(OSError):  # fails when our own cgroup holds processes
                    _write(
                        os.path.join(h.base, "cgroup.subtree_control"),
                        " ".join(f"+{c}" for c in h.controllers),
                    )
            if "pids" in h.controllers:
                with contextlib.suppress(OSError):
                    _write(os.path.join(path, "pids.max"), str(processes))
                    applied.append(f"pids.max={processes}")
            if "memory" in h.controllers:
                limit_file = "memory.max" if h.version == 2 else "memory.limit_in_bytes"
                with contextlib.suppress(OSError):
                    _write(os.path.join(path, limit_file), str(memory))
                    applied.append(f"memory={memory // (1024 * 1024)}MiB")
                if h.version == 2:
                    with contextlib.suppress(OSError):
                        _write(os.path.join(path, "memory.swap.max"), "0")
    except OSError as exc:
        RunCgroup(dirs, "").remove()
        return None, f"skipped: cannot create a cgroup: {exc}"
    versions = "+".join(sorted({f"v{h.version}" for h, _ in dirs}))
    detail = f"{versions} {' '.join(applied) or 'tracking only (no limits writable)'}"
    if note:
        detail += f"; {note}"
    return RunCgroup(dirs, detail), detail
