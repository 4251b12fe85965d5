"""What the client and the server of the command server share: where the socket lives,
which interpreter a server stands in for, and the wire format.

Imported by the console script on every command, so it imports only what a bare
interpreter has already loaded or what costs next to nothing (``socket``, ``json``).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import sys
import zlib
from typing import Any

#: Bumped when a message changes shape: a client and a server of two versions never talk.
PROTOCOL = 1
#: Seconds a server with nothing to do waits before it exits.
DEFAULT_IDLE = 600
#: A message larger than this is not one of ours.
MAX_MESSAGE = 16 * 1024 * 1024
#: The longest path ``bind``/``connect`` accept for a Unix socket on Linux, less the NUL.
MAX_SOCKET_PATH = 107

_LENGTH = struct.Struct(">I")
_NOT_FLAGS = ("safe_path", "count", "index", "n_fields", "n_sequence_fields", "n_unnamed_fields")


class Unusable(Exception):
    """The command server cannot be used for this command; the message says why."""


def folder() -> str:
    """The private folder the sockets live in: ``$PROCTOR_SERVER_DIR``, else
    ``$XDG_RUNTIME_DIR/proctor``, else ``$TMPDIR/proctor-<uid>`` (``/tmp`` by default)."""
    chosen = os.environ.get("PROCTOR_SERVER_DIR")
    if chosen:
        return os.path.abspath(chosen)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "proctor")
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"proctor-{os.getuid()}")


def private_folder(create: bool) -> str:
    """:func:`folder`, made (mode 0700) if ``create``; :class:`Unusable` unless it is a
    real folder of this user that nobody else may enter (a socket there is trusted)."""
    path = folder()
    if create:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise Unusable(f"cannot make {path}: {exc.strerror}") from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Unusable(f"{path} does not exist") from None
    except OSError as exc:
        raise Unusable(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise Unusable(f"{path} is not a folder (a symbolic link is not followed)")
    if st.st_uid != os.geteuid():
        raise Unusable(f"{path} belongs to uid {st.st_uid}, not to this user")
    if st.st_mode & 0o077:
        raise Unusable(
            f"{path} may be entered by other users (mode {stat.S_IMODE(st.st_mode):04o});"
            f" `chmod 700 {path}` makes it private"
        )
    return path


def flavour() -> str:
    """What makes two interpreters run the same code the same way: the executable, its
    version and flags, where proctor is, the import path, and the variables read at
    start-up (``PYTHON*``, the locale). A server only serves a caller of its flavour."""
    import proctor

    env = sorted(
        f"{k}={v}" for k, v in os.environ.items() if k.startswith(("PYTHON", "LC_")) or k == "LANG"
    )
    parts = [
        f"protocol={PROTOCOL}",
        sys.executable,
        sys.version,
        # -P (``safe_path``) is how the server starts, and only shapes sys.path, below.
        repr(
            [
                (k, getattr(sys.flags, k))
                for k in dir(sys.flags)
                if k[0] != "_" and k not in _NOT_FLAGS
            ]
        ),
        os.path.dirname(os.path.abspath(proctor.__file__)),
        *sys.path,
        *env,
    ]
    return "\n".join(parts)


def socket_path(base: str, flavour_text: str) -> str:
    """The socket of the server of this flavour in ``base``."""
    key = f"{zlib.crc32(flavour_text.encode()):08x}"
    path = os.path.join(base, f"server-{key}.sock")
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise Unusable(
            f"{path} is longer than a Unix socket path may be; set PROCTOR_SERVER_DIR to a "
            "shorter folder"
        )
    return path


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One message: its length, then its JSON; ``fds`` ride with its first byte."""
    data = json.dumps(message).encode()
    frame = _LENGTH.pack(len(data)) + data
    if fds:
        import array

        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        sent = sock.sendmsg([frame], ancillary)
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors that came with it; ``(None, [])`` at the end.

    Reads exactly one message's bytes: the next one (a command's status right after its
    pid, when the command is quick) stays in the socket for the next call.
    """
    fds: list[int] = []
    if max_fds:
        import array

        data, ancillary, _flags, _addr = sock.recvmsg(
            _LENGTH.size, socket.CMSG_SPACE(max_fds * array.array("i").itemsize)
        )
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                fds.extend(got)
    else:
        data = sock.recv(_LENGTH.size)
    try:
        if not data:
            return None, fds
        head = _exactly(sock, _LENGTH.size, bytearray(data))
        (length,) = _LENGTH.unpack(head)
        if length > MAX_MESSAGE:
            raise Unusable(f"a message of {length} bytes is not one of ours")
        message = json.loads(bytes(_exactly(sock, length, bytearray())))
        if not isinstance(message, dict):
            raise Unusable("a message is not a JSON object")
        return message, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _exactly(sock: socket.socket, size: int, buffer: bytearray) -> bytearray:
    """``buffer`` filled up to ``size`` bytes from ``sock``, and not one byte more."""
    while len(buffer) < size:
        more = sock.recv(min(size - len(buffer), 1 << 20))
        if not more:
            raise Unusable("the message ended early")
        buffer += more
    return buffer


def peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end (None where the system cannot say)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("iII"))
    _pid, uid, _gid = struct.unpack("iII", creds)
    return int(uid)


def connect(path: str, timeout: float | None = None) -> socket.socket:
    """A connection to the server at ``path``; OSError if none answers there, and
    :class:`Unusable` if the one answering is not this user's (the environment a
    command sends holds its secrets)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        uid = peer_uid(sock)
        if uid is not None and uid != os.geteuid():
            raise Unusable(f"the server at {path} runs as uid {uid}, not as this user")
    except BaseException:
        sock.close()
        raise
    return sock


def ask(path: str, op: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send ``op`` (``status``, ``stop``) to the server at ``path`` and return its answer."""
    with connect(path, timeout) as sock:
        send(sock, {"protocol": PROTOCOL, "op": op})
        try:
            answer, _ = receive(sock)
        except ValueError as exc:
            raise Unusable(f"the server's answer is not one of ours: {exc}") from None
    if answer is None:
        raise Unusable("the server closed the connection without answering")
    return answer


def spawn(path: str, idle: int) -> int:
    """Start a server for ``path`` in the background, in a session of its own; its pid.

    ``-P``: the server's import path is the caller's, with nothing of the folder it was
    started from in front (:func:`flavour` compares the two).
    """
    import subprocess

    log = path[: -len(".sock")] + ".log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "proctor.cmdserver.server",
                "--socket",
                path,
                "--idle",
                str(idle),
                "--path0",
                sys.path[0] if sys.path else "",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fd,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)
    return proc.pid
