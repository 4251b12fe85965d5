"""The sandbox: run one procedure's code in a fresh interpreter under layers that fail closed.

Level 0 (everywhere): ``python -I`` in its own session and temp dir, an allowlisted
environment, rlimits, a cgroup where writable, a wall clock that kills every process of
the run, output caps. Level 1 (Linux with user namespaces): bubblewrap with every
namespace unshared and a seccomp filter. Level 2: Landlock, applied inside by the runner
(or, where namespaces are blocked, Landlock + seccomp as the fallback). What belongs
here: the layers, the in-sandbox runner and the probe of what a machine offers; the run
log, parameters and versions belong to the layers above, which call ``run_in_sandbox``.
"""

from __future__ import annotations

from .api import LEVELS, run_in_sandbox, run_in_sandbox_async
from .machine import Probe, probe
from .model import STATUSES, Capabilities, Limits, SandboxResult, SandboxUsageError, Status

__all__ = [
    "LEVELS",
    "STATUSES",
    "Capabilities",
    "Limits",
    "Probe",
    "SandboxResult",
    "SandboxUsageError",
    "Status",
    "probe",
    "run_in_sandbox",
    "run_in_sandbox_async",
]
