"""The in-sandbox runner: the first and only trusted code of a sandboxed interpreter.

Started as ``python -I -B runner.py IN_FD OUT_FD``. It reads one JSON header from IN_FD,
locks itself down (no new privileges, capabilities dropped, Landlock, extra seccomp
filters) *before* the procedure is imported, runs the entry point and writes JSON lines on
OUT_FD: a ``ready`` line saying what each layer did, one ``result`` line, and an ``exit`` line
with the procedure process's exit code. OUT_FD is not stdout because the procedure owns
stdout and may flood it.

Stdlib only and importable (the parent reads ``landlock_abi`` from it): nothing runs at
import time.
"""

from __future__ import annotations

import ctypes
import os
import sys

TYPE_CHECKING = False  # typing itself is a noticeable part of a trivial run's start-up
if TYPE_CHECKING:
    from typing import Any

# Landlock (include/uapi/linux/landlock.h). The syscall numbers are the same on every arch.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

_PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _PR_SET_SECCOMP = 38, 24, 22
_PR_SET_CHILD_SUBREAPER, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 36, 47, 4
_PR_SET_PDEATHSIG = 1
_SECCOMP_MODE_FILTER = 2
_O_PATH = 0o10000000

_AUDIT_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.fork",
        "os.kill",
        "os.killpg",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.getaddrinfo",
        "ctypes.dlopen",
    }
)


class LayerError(Exception):
    """A layer the parent asked for could not be applied: the run must not go on."""

    def __init__(self, layer: str, message: str) -> None:
        super().__init__(message)
        self.layer = layer


class _JsonContext:
    """What the C scanner of ``_json`` reads its options from (json.JSONDecoder's fields)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "NaN": float("nan"),
        "Infinity": float("inf"),
        "-Infinity": float("-inf"),
    }.__getitem__
    memo: dict[str, str] = {}  # noqa: RUF012 - the scanner's own memo, as in JSONDecoder


def _no_default(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_loads(text: str) -> Any:
    """``json.loads`` through the C scanner: the json package would import re and enum,
    a third of a trivial run's start-up."""
    try:
        import _json
    except ImportError:
        import json

        return json.loads(text)
    value, end = _json.make_scanner(_JsonContext())(text, 0)  # type: ignore[arg-type]
    if text[end:].strip():
        raise ValueError("extra data after the JSON document")
    return value


def json_dumps(value: object) -> str:
    """``json.dumps(value)`` (compact separators aside) through the C encoder."""
    try:
        import _json
    except ImportError:
        import json

        return json.dumps(value, separators=(",", ":"))
    encode = _json.make_encoder(
        {}, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return "".join(encode(value, 0))


_LIBC: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _LIBC:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        libc.prctl.restype = ctypes.c_int
        _LIBC.append(libc)
    return _LIBC[0]


def _fail(layer: str, what: str) -> LayerError:
    err = ctypes.get_errno()
    return LayerError(layer, f"{what}: {os.strerror(err)} (errno {err})")


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers, 0 when it offers none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
    except OSError:
        return 0
    version = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET),
        None,
        ctypes.c_long(0),
        ctypes.c_long(_CREATE_RULESET_VERSION),
    )
    return max(int(version), 0)


def fs_rights(abi: int) -> int:
    """Every file-system right the ABI knows: all of them are handled, so all are denied
    unless a rule grants them."""
    rights = _FS_ABI1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def apply_landlock(spec: dict[str, Any]) -> str:
    """Restrict this process (and everything it starts) to the paths in ``spec``.

    ``read``/``write`` are path lists; ``execute`` grants execve under the read paths;
    ``tcp`` denies TCP bind and connect (ABI 4); ``scope`` isolates signals and abstract
    unix sockets (ABI 6). ``min_abi`` below what the kernel offers is a LayerError.
    """
    abi = landlock_abi()
    if abi < int(spec.get("min_abi", 1)):
        raise LayerError(
            "landlock",
            f"needs Landlock ABI {spec.get('min_abi', 1)}, kernel offers {abi or 'none'}",
        )
    libc = _libc()
    handled = fs_rights(abi)
    execute = FS_EXECUTE if spec.get("execute") else 0
    handled_net = NET_BIND_TCP | NET_CONNECT_TCP if spec.get("tcp") and abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if spec.get("scope") and abi >= 6 else 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled, handled_net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET),
        ctypes.byref(attr),
        ctypes.c_long(size),
        ctypes.c_long(0),
    )
    if ruleset < 0:
        raise _fail("landlock", "landlock_create_ruleset")
    granted = []
    try:
        read = FS_READ_FILE | FS_READ_DIR | execute
        rules = [(p, read) for p in spec.get("read", ())]
        rules += [(p, handled & ~FS_EXECUTE | execute) for p in spec.get("write", ())]
        rules += [(p, FS_READ_FILE | FS_WRITE_FILE) for p in spec.get("devices", ())]
        for path, allowed in rules:
            try:
                fd = os.open(path, _O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this machine lacks grants nothing
            try:
                if not os.path.isdir(path):
                    allowed &= _FILE_RIGHTS
                rule = PathBeneath(allowed & handled, fd)
                if (
                    libc.syscall(
                        ctypes.c_long(_SYS_ADD_RULE),
                        ctypes.c_long(ruleset),
                        ctypes.c_long(_RULE_PATH_BENEATH),
                        ctypes.byref(rule),
                        ctypes.c_long(0),
                    )
                    < 0
                ):
                    raise _fail("landlock", f"landlock_add_rule {path}")
                granted.append(path)
            finally:
                os.close(fd)
        _no_new_privs(libc)
        if (
            libc.syscall(
                ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_long(ruleset), ctypes.c_long(0)
            )
            < 0
        ):
            raise _fail("landlock", "landlock_restrict_self")
    finally:
        os.close(ruleset)
    parts = [f"ABI {abi}: file system ({len(granted)} paths)"]
    parts.append("TCP bind/connect denied" if handled_net else "TCP not restricted")
    parts.append("signals and abstract unix sockets scoped" if scoped else "no scoping")
    return ", ".join(parts)


def _no_new_privs(libc: ctypes.CDLL) -> None:
    if (
        libc.prctl(
            ctypes.c_int(_PR_SET_NO_NEW_PRIVS),
            ctypes.c_ulong(1),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
        != 0
    ):
        raise _fail("privileges", "PR_SET_NO_NEW_PRIVS")


def drop_privileges() -> str:
    """No new privileges, an empty bounding set and no capabilities.

    Root outside a user namespace keeps uid 0 but loses what makes it root: reading
    another root process's /proc files, overriding permissions, gaining anything back
    through a setuid binary.
    """
    libc = _libc()
    _no_new_privs(libc)
    dropped = 0
    for cap in range(64):
        if (
            libc.prctl(
                ctypes.c_int(_PR_CAPBSET_DROP),
                ctypes.c_ulong(cap),
                ctypes.c_ulong(0),
                ctypes.c_ulong(0),
                ctypes.c_ulong(0),
            )
            != 0
        ):
            break  # EINVAL past the last cap, EPERM when there is nothing to drop
        dropped += 1
    libc.prctl(
        ctypes.c_int(_PR_CAP_AMBIENT),
        ctypes.c_ulong(_PR_CAP_AMBIENT_CLEAR_ALL),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    data = (Data * 2)()
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
        raise _fail("privileges", "capset")
    return f"no new privileges; capabilities cleared ({dropped} dropped from the bounding set)"


def load_seccomp(programs: list[str]) -> str:
    """Load classic BPF programs (base64) built by the parent, in order."""
    import base64

    libc = _libc()
    _no_new_privs(libc)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    for text in programs:
        code = base64.b64decode(text)
        buf = ctypes.create_string_buffer(code, len(code))
        prog = Fprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
        if (
            libc.prctl(
                ctypes.c_int(_PR_SET_SECCOMP),
                ctypes.c_ulong(_SECCOMP_MODE_FILTER),
                ctypes.byref(prog),
                ctypes.c_ulong(0),
                ctypes.c_ulong(0),
            )
            != 0
        ):
            raise _fail("seccomp", "PR_SET_SECCOMP")
    return f"{len(programs)} filter(s) loaded by the runner"


def _write(fd: int, record: dict[str, Any]) -> None:
    data = (json_dumps(record) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _prctl(option: int, arg: int, layer: str) -> None:
    libc = _libc()
    if (
        libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
        != 0
    ):
        raise _fail(layer, f"prctl({option})")


def _prepare(header: dict[str, Any]) -> dict[str, str]:
    """Lock the procedure's process down as the header asks; each step fails closed."""
    layers: dict[str, str] = {}
    if sys.platform.startswith("linux") and header.get("drop_privileges"):
        layers["privileges"] = drop_privileges()
    if header.get("landlock") is not None:
        layers["landlock"] = apply_landlock(header["landlock"])
    if header.get("seccomp"):
        layers["seccomp_runner"] = load_seccomp(header["seccomp"])
    return layers


def _audit_hook(messages: list[str]) -> Any:
    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _AUDIT_EVENTS and len(messages) < 50:
            messages.append(f"{event} {repr(args)[:200]}")

    return hook


def _run(header: dict[str, Any], messages: list[str]) -> dict[str, Any]:
    from importlib.machinery import ModuleSpec, SourceFileLoader

    name, path = header["module"], header["code_path"]
    loader = SourceFileLoader(name, path)
    module = type(sys)(name)  # importlib.util would cost more start-up than the rest
    module.__file__ = path
    module.__loader__ = loader
    module.__spec__ = ModuleSpec(name, loader, origin=path)
    module.__spec__.has_location = True
    sys.modules[name] = module
    loader.exec_module(module)
    entry = getattr(module, header["entry"], None)
    if not callable(entry):
        raise AttributeError(f"the procedure has no callable {header['entry']!r}")
    value = entry(**header["params"])
    try:
        text = json_dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the return value is not JSON: {exc}") from None
    if len(text) > int(header["result_limit"]):
        raise ValueError(
            f"the return value is {len(text)} bytes of JSON, over the {header['result_limit']} byte limit"
        )
    return {"kind": "result", "status": "ok", "value_json": text, "messages": messages}


def _error(exc: BaseException, messages: list[str]) -> dict[str, Any]:
    import traceback

    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ in ("builtins", "__main__")
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    tb = "".join(traceback.format_exception(exc))
    return {
        "kind": "result",
        "status": "error",
        "type": name,
        "message": str(exc)[:4000],
        "traceback": tb[-8000:],
        "messages": messages,
    }


def _procedure(header: dict[str, Any], out_fd: int) -> int:
    """The forked child: lock down, run the procedure, write the result."""
    try:
        layers = _prepare(header)
    except LayerError as exc:
        _write(out_fd, {"kind": "fatal", "layer": exc.layer, "message": str(exc)})
        return 3
    _write(out_fd, {"kind": "ready", "layers": layers})
    messages: list[str] = []
    if header.get("audit"):
        sys.addaudithook(_audit_hook(messages))
    try:
        record = _run(header, messages)
    except BaseException as exc:  # noqa: BLE001 - the procedure's failures, SystemExit included, are results
        record = _error(exc, messages)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a procedure may have replaced or closed them
            pass
    try:
        _write(out_fd, record)
    except (TypeError, ValueError) as exc:
        _write(out_fd, _error(exc, []))
    return 0


def _limit(header: dict[str, Any]) -> None:
    """Set the rlimits, before any procedure code exists.

    Done here rather than between fork and exec in the parent, which would cost the
    parent a full fork (no vfork) on every run. The cgroup was joined before the header
    was sent (by the parent, or under bubblewrap by the command that started it).
    """
    import resource

    for which, soft, hard in header.get("rlimits", ()):
        resource.setrlimit(which, (soft, hard))


def main(argv: list[str]) -> int:
    """Fork the procedure and stay behind as its supervisor.

    The supervisor runs no procedure code and takes no lock-down, so the procedure can
    neither clear its subreaper flag nor (under Landlock scoping) signal it: every process
    the procedure starts, a ``setsid`` double fork included, stays its descendant until
    the parent kills the tree. It exits once the procedure and every descendant are gone.
    """
    in_fd, out_fd = int(argv[1]), int(argv[2])
    os.set_inheritable(out_fd, False)  # processes the procedure starts must not write results
    header = json_loads(_read_all(in_fd).decode())
    linux = sys.platform.startswith("linux")
    try:
        _limit(header)
    except (OSError, ValueError) as exc:
        _write(out_fd, {"kind": "fatal", "layer": "limits", "message": str(exc)})
        return 3
    if linux:
        try:
            _prctl(_PR_SET_PDEATHSIG, 9, "tracking")  # the caller died: so does the run
            _prctl(_PR_SET_CHILD_SUBREAPER, 1, "tracking")
        except LayerError as exc:
            _write(out_fd, {"kind": "fatal", "layer": exc.layer, "message": str(exc)})
            return 3
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        if linux:
            _prctl(_PR_SET_PDEATHSIG, 9, "tracking")
        os._exit(_procedure(header, out_fd))
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            _write(out_fd, {"kind": "exit", "code": code})
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv))
