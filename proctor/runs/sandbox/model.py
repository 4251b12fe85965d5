"""The values a sandboxed run takes and gives back.

Plain frozen dataclasses, so the run log, the CLI and MCP can build and serialise them
without pydantic; ``Capabilities.coerce`` accepts the metadata's own object or a mapping so
the layers above never have to hand their models down here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from proctor.core.errors import UsageError

Status = Literal["ok", "error", "timeout", "killed", "denied"]
STATUSES: tuple[Status, ...] = ("ok", "error", "timeout", "killed", "denied")

MiB = 1024 * 1024


class SandboxUsageError(UsageError):
    """The caller asked the sandbox for something malformed (a bad limit or path)."""


@dataclass(frozen=True)
class Capabilities:
    """What a procedure declared it needs; each opens exactly what it names.

    ``filesystem_write`` holds absolute host paths that must exist; a run may write
    beneath each of them and nowhere else outside its own work directory.
    """

    network: bool = False
    subprocess: bool = False
    filesystem_write: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, value: object) -> Capabilities:
        """Read capabilities from None, a mapping or any object with the three attributes.

        Unknown keys are refused rather than ignored: a misspelt capability must not
        silently run with less (or more) than its author meant.
        """
        if value is None:
            return cls()
        if isinstance(value, Capabilities):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"network", "subprocess", "filesystem_write"}
            if unknown:
                raise SandboxUsageError(f"unknown capabilities: {', '.join(sorted(unknown))}")
            get = value.get
        else:

            def get(key: str, default: object = None) -> object:
                return getattr(value, key, default)

        network, subprocess, paths = (
            get("network", False),
            get("subprocess", False),
            get("filesystem_write", ()),
        )
        if not isinstance(network, bool) or not isinstance(subprocess, bool):
            raise SandboxUsageError("capabilities network and subprocess must be true or false")
        if isinstance(paths, str | bytes) or not isinstance(paths, Iterable):
            raise SandboxUsageError("capabilities filesystem_write must be a list of paths")
        return cls(network, subprocess, tuple(_write_path(p) for p in paths))


def _write_path(path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise SandboxUsageError(f"filesystem_write path {path!r} is not a path")
    text = os.fspath(path)
    if not isinstance(text, str) or not os.path.isabs(text):
        raise SandboxUsageError(f"filesystem_write path {path!r} must be absolute")
    real = os.path.realpath(text)
    if not os.path.exists(real):
        raise SandboxUsageError(f"filesystem_write path {text} does not exist")
    if real == "/":
        raise SandboxUsageError("filesystem_write cannot name the root directory")
    return real


@dataclass(frozen=True)
class Limits:
    """Resource ceilings of one run; every one applies at every level.

    ``memory`` caps the address space (rlimit) and, where cgroups are writable, the
    resident memory; ``processes`` caps tasks (threads count) through the pids cgroup or
    RLIMIT_NPROC. ``output`` bytes of each stream are kept; past ``output_max`` the run
    is killed, so a flood cannot keep a worker busy until the timeout.
    """

    memory: int = 512 * MiB
    cpu: int = 60
    file_size: int = 64 * MiB
    open_files: int = 256
    processes: int = 64
    output: int = 64 * 1024
    output_max: int = 8 * MiB
    result: int = 4 * MiB

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise SandboxUsageError(f"limit {name} must be a positive integer, not {value!r}")
        if self.output > self.output_max:
            raise SandboxUsageError("limit output must not exceed output_max")


@dataclass
class SandboxResult:
    """One run's outcome, as the run log stores it and the faces print it.

    ``level`` is the isolation level actually reached (None when nothing ran);
    ``layers`` says, layer by layer, what was applied or why it was not. ``messages``
    come from the audit hook and are hints, not evidence: code with ctypes can avoid it.
    """

    status: Status
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    level: int | None = None
    layers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
