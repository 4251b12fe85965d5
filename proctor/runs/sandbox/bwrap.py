"""Level 1: the bubblewrap command line around the interpreter.

Every namespace is unshared (user, mount, pid, network, ipc, uts, cgroup) and the new
user namespace may not make another. The new root holds only read-only binds of the
system libraries and the interpreter's prefixes, the code and the runner at fixed paths,
a size-capped tmpfs as the work directory and ``/tmp``, a private ``/proc`` and a minimal
``/dev``; the ``filesystem_write`` paths are bound read-write at their own paths, and the
host network is shared only with the ``network`` capability.

bubblewrap is the distribution's package (``apt-get install bubblewrap``). It must be
started from a process that is not itself under seccomp or Landlock (both break its
setup), which is why the runner applies Landlock inside.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable

from .model import Capabilities

SANDBOX_ROOT = "/sandbox"
WORK = f"{SANDBOX_ROOT}/work"
CODE = f"{SANDBOX_ROOT}/code"
RUNNER_DIR = f"{SANDBOX_ROOT}/runner"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
NETWORK_FILES = (
    "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
    "/etc/host.conf", "/etc/services", "/etc/protocols", "/etc/ssl", "/etc/ca-certificates",
    "/etc/pki",
)  # fmt: skip
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def executable() -> str | None:
    return shutil.which("bwrap")


def interpreter_prefixes() -> list[str]:
    """The directories the interpreter reads at start-up, outermost first, deduplicated."""
    real_exe = os.path.realpath(sys.executable)
    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    candidates.append(os.path.dirname(os.path.dirname(real_exe)))
    out: list[str] = []
    for path in sorted({os.path.realpath(p) for p in candidates} | set(candidates), key=len):
        if os.path.isdir(path) and not any(_under(path, p) for p in out) and path != "/":
            out.append(path)
    return out


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def read_paths(caps: Capabilities) -> list[str]:
    """Host paths a run may read (the same paths it sees inside bubblewrap)."""
    paths = [p for p in SYSTEM_DIRS if os.path.isdir(p) and not os.path.islink(p)]
    paths += [p for p in interpreter_prefixes() if not any(_under(p, s) for s in paths)]
    paths += [p for p in SYSTEM_FILES if os.path.exists(p)]
    if caps.network:
        paths += [p for p in NETWORK_FILES if os.path.exists(p)]
    return paths


def _root(bw: str, caps: Capabilities, tmpfs_size: int) -> list[str]:
    """The namespaces and the new root, shared by every run and by the probe.

    The tmpfs mounts come first: a prefix or a granted path below /tmp (a virtualenv in
    a temporary checkout, a test's directory) is then bound on top of the tmpfs instead
    of being hidden by it.
    """
    args = [bw, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    args += ["--new-session", "--cap-drop", "ALL", "--hostname", "sandbox"]
    if caps.network:
        args.append("--share-net")
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(tmpfs_size), "--tmpfs", "/tmp"]
    args += ["--size", str(tmpfs_size), "--tmpfs", WORK]
    for path in read_paths(caps):
        args += ["--ro-bind", path, path]
    return args


def argv(
    *,
    caps: Capabilities,
    code_dir: str,
    runner_dir: str,
    tmpfs_size: int,
    seccomp_fd: int,
    info_fd: int,
    command: Iterable[str],
) -> list[str]:
    bw = executable()
    if bw is None:
        raise RuntimeError("bwrap not found")
    args = _root(bw, caps, tmpfs_size)
    args += ["--ro-bind", code_dir, CODE, "--ro-bind", runner_dir, RUNNER_DIR]
    for path in caps.filesystem_write:
        args += ["--bind", path, path]
    args += ["--remount-ro", "/", "--chdir", WORK, "--seccomp", str(seccomp_fd)]
    args += ["--info-fd", str(info_fd), "--"]
    args += list(command)
    return args


@functools.lru_cache(maxsize=1)
def usable() -> str | None:
    """None when bubblewrap can build a sandbox here, else why not (measured, not guessed).

    User namespaces are blocked in many places (AppArmor's restriction on Ubuntu 24.04,
    Docker's default seccomp profile, a parent already under seccomp or Landlock), and
    only trying tells: the probe builds the same root a run gets and starts the same
    interpreter in it.
    """
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux, this is {sys.platform}"
    bw = executable()
    if bw is None:
        return "bwrap not found (install the bubblewrap package: apt-get install bubblewrap)"
    probe = _root(bw, Capabilities(), 1024 * 1024)
    probe += ["--remount-ro", "/", "--chdir", WORK, "--", sys.executable, "-I", "-S", "-c", ""]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot start the interpreter here: {message[-1] if message else done.returncode}"
    return None
