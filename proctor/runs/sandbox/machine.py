"""What this machine offers, level by level, measured once per process.

Level 0 needs a POSIX system with rlimits (Linux here; elsewhere only with an explicit
``unsandboxed``). Level 1 needs bubblewrap able to create namespaces and the seccomp
bindings. Level 2 needs level 1 and Landlock (ABI >= 1); where namespaces are not
available it is reached by the fallback: Landlock with ABI >= 6 (signal and abstract
socket scoping stand in for the pid and ipc namespaces, TCP rules for the network
namespace) plus a stricter seccomp filter loaded by the runner.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field

from . import bwrap, cgroups, runner, seccomp

FALLBACK_MIN_ABI = 6


@dataclass(frozen=True)
class Probe:
    platform: str
    landlock_abi: int
    seccomp: str | None  # None when the bindings load, else why not
    namespaces: str | None  # None when bubblewrap works, else why not
    cgroups: str  # what a run's cgroup would get
    missing: dict[int, str] = field(default_factory=dict)  # level -> why it is unavailable

    def available(self, level: int) -> bool:
        return level not in self.missing

    @property
    def best(self) -> int | None:
        for level in (2, 1, 0):
            if self.available(level):
                return level
        return None

    def fallback(self, namespaces: bool = True) -> bool:
        """Whether level 2 would be the namespace-less fallback."""
        return not namespaces or self.namespaces is not None


def _missing(platform: str, abi: int, sc: str | None, ns: str | None) -> dict[int, str]:
    missing: dict[int, str] = {}
    if not platform.startswith("linux"):
        why = f"no sandbox layers on {platform}: only an explicitly unsandboxed run"
        return {0: why, 1: why, 2: why}
    if ns or sc:
        missing[1] = "; ".join(x for x in (ns, sc) if x)
    if abi < 1:
        missing[2] = "Landlock not available in this kernel"
    elif ns and (abi < FALLBACK_MIN_ABI or sc):
        need = (
            f"Landlock ABI {FALLBACK_MIN_ABI} (kernel has {abi})" if abi < FALLBACK_MIN_ABI else sc
        )
        missing[2] = f"{ns}; the fallback without namespaces needs {need}"
    elif sc:
        missing[2] = sc
    return missing


@functools.lru_cache(maxsize=2)
def probe(namespaces: bool = True) -> Probe:
    """The machine's levels; ``namespaces=False`` asks what it offers without bubblewrap."""
    platform = sys.platform
    abi = runner.landlock_abi()
    sc = None if seccomp.bindings() is not None else seccomp.missing_reason()
    ns = bwrap.usable() if namespaces else "namespaces disabled by the caller"
    usable, note = cgroups.hierarchies()
    cg = (
        ", ".join(f"v{h.version} {'/'.join(h.controllers) or 'tracking'}" for h in usable) or "none"
    )
    if note:
        cg += f" ({note})"
    return Probe(platform, abi, sc, ns, cg, _missing(platform, abi, sc, ns))
