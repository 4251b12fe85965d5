"""Seccomp filters, built with libseccomp's Python bindings and exported as classic BPF.

Two programs per run. The *base* filter refuses the system calls a procedure never needs
and that reach past a namespace (ptrace, mount, kernel modules, keyrings, io_uring, new
namespaces, file handles, ...); bubblewrap loads it just before it executes the
interpreter. The *runner* filter is loaded by the in-sandbox runner once the interpreter
is up, because it refuses what the interpreter itself needed to start: ``execve`` and new
processes (unless the ``subprocess`` capability is declared). Without namespaces the
runner loads both, with a stricter socket rule and the metadata calls Landlock does not
cover (chmod, chown, xattrs, times).

Bindings: ``pyseccomp`` (PyPI, the ``sandbox`` extra) or the distribution's ``seccomp``
module. Neither present means no seccomp layer, so no level above 0: it fails closed.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from types import ModuleType
from typing import cast

from .model import Capabilities

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_MAX = 1, 2, 10, 16, 46
CLONE_THREAD = 0x00010000
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NAMESPACES = (
    0x80,
    0x20000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C

DENIED = (
    # reach into other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # the kernel itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm",
    "vhangup", "lookup_dcookie", "uselib", "personality", "sysfs", "ustat", "_sysctl",
    "nfsservctl", "vm86", "vm86old", "bpf", "perf_event_open", "userfaultfd",
    "fanotify_init",
    # mounts and namespaces
    "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # keyrings, io_uring (its operations bypass this filter), file handles (bypass paths)
    "add_key", "request_key", "keyctl", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "name_to_handle_at", "open_by_handle_at",
)  # fmt: skip
METADATA = (
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "utime", "utimes", "utimensat", "futimesat",
)  # fmt: skip
PROCESSES = ("execve", "execveat", "fork", "vfork")


def bindings() -> ModuleType | None:
    """The libseccomp bindings this interpreter has, or None."""
    try:
        import pyseccomp

        return cast(ModuleType, pyseccomp)
    except (ImportError, OSError):
        pass
    try:
        import seccomp

        return cast(ModuleType, seccomp)
    except (ImportError, OSError):
        return None


def missing_reason() -> str:
    return "no libseccomp bindings: pip install 'proctor[sandbox]' (pyseccomp) or the distribution's python3-seccomp"


def _deny(f: object, sc: ModuleType, name: str, *args: object, err: int = errno.EPERM) -> int:
    try:
        f.add_rule(sc.ERRNO(err), name, *args)  # type: ignore[attr-defined]
    except (OSError, ValueError, RuntimeError):
        return 0  # not a system call on this architecture
    return 1


def _export(f: object) -> bytes:
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)  # type: ignore[attr-defined]
        out.seek(0)
        return out.read()


def _base_rules(
    f: object, sc: ModuleType, caps: Capabilities, *, strict_sockets: bool, unix_scoped: bool
) -> int:
    count = sum(_deny(f, sc, name) for name in DENIED)
    count += _deny(
        f, sc, "clone3", err=errno.ENOSYS
    )  # flags out of reach: libc falls back to clone
    for flag in CLONE_NAMESPACES:
        count += _deny(f, sc, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for cmd in (TIOCSTI, TIOCLINUX):
        count += _deny(f, sc, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, cmd))
    if strict_sockets:
        # No network namespace: a pathname unix socket may be the host's docker or init
        # socket, so every socket() is refused and only the IP families come back with
        # the network capability. socketpair() stays.
        if caps.network:
            for domain in range(AF_MAX):
                if domain not in (AF_INET, AF_INET6, AF_NETLINK):
                    count += _deny(
                        f,
                        sc,
                        "socket",
                        sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, domain),
                        err=errno.EACCES,
                    )
            count += _deny(f, sc, "socket", sc.Arg(0, sc.GE, AF_MAX), err=errno.EACCES)
        else:
            count += _deny(f, sc, "socket", err=errno.EACCES)
    elif not caps.network:
        count += _deny(f, sc, "socket", sc.Arg(0, sc.NE, AF_UNIX), err=errno.EACCES)
    elif not unix_scoped:
        # The network capability shares the host's network namespace, and with it the
        # host's abstract unix sockets (a desktop bus, a container runtime's socket). A
        # filter cannot read connect()'s address, so without Landlock's scoping every
        # unix socket() is refused; socketpair() stays.
        count += _deny(f, sc, "socket", sc.Arg(0, sc.EQ, AF_UNIX), err=errno.EACCES)
    return count


def _process_rules(f: object, sc: ModuleType) -> int:
    count = sum(_deny(f, sc, name) for name in PROCESSES)
    count += _deny(f, sc, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))  # threads only
    return count


@functools.lru_cache(maxsize=32)
def build(
    caps: Capabilities, *, namespaces: bool, unix_scoped: bool = False
) -> tuple[bytes | None, bytes | None, str]:
    """(base program for bubblewrap, program for the runner, description).

    With ``namespaces`` the base program goes to bubblewrap and the runner adds only the
    process rules; without, the runner's program holds everything. ``unix_scoped`` says
    Landlock will scope abstract unix sockets (level 2, ABI >= 6): only then may a run
    with the network capability, which shares the host's network namespace, open unix
    sockets. Cached: the programs depend only on these arguments.
    """
    sc = bindings()
    if sc is None:
        raise RuntimeError(missing_reason())
    allow = sc.ALLOW
    if namespaces:
        base = sc.SyscallFilter(allow)
        n_base = _base_rules(base, sc, caps, strict_sockets=False, unix_scoped=unix_scoped)
        runner_prog: bytes | None = None
        n_runner = 0
        if not caps.subprocess:
            runner = sc.SyscallFilter(allow)
            n_runner = _process_rules(runner, sc)
            runner_prog = _export(runner)
        what = f"base filter of {n_base} rules loaded by bubblewrap"
        if caps.network and not unix_scoped:
            what += " (unix sockets refused: the host network namespace is shared)"
        if runner_prog:
            what += f"; {n_runner} process rules loaded by the runner"
        return _export(base), runner_prog, what
    f = sc.SyscallFilter(allow)
    n = _base_rules(f, sc, caps, strict_sockets=True, unix_scoped=unix_scoped)
    n += sum(_deny(f, sc, name) for name in METADATA)
    if not caps.subprocess:
        n += _process_rules(f, sc)
    return None, _export(f), f"{n} rules loaded by the runner (no namespaces)"


def pipe_with(data: bytes) -> int:
    """A pipe's read end holding ``data`` (bubblewrap reads its filter from an fd)."""
    r, w = os.pipe()
    try:
        if len(data) > 65536:
            raise ValueError("seccomp program larger than a pipe buffer")
        os.write(w, data)
    finally:
        os.close(w)
    return r
