"""From what the supervisor saw to a ``SandboxResult``: the status rules in one place.

The runner's own result wins when it arrived (``ok`` or ``error``); otherwise the clock
(``timeout``), an output or result cap, or a signal (``killed``) decide, and an exit with
no result is an ``error``. A ``fatal`` line (a layer the runner could not apply), or a
sandbox that ended before its runner was ready, is a ``denied``: the procedure was never
imported.
"""

from __future__ import annotations

import json
import signal

from .cgroups import RunCgroup
from .model import Limits, SandboxResult
from .supervise import Outcome


def _signal_reason(sig: int, cgroup: RunCgroup | None, limits: Limits) -> str:
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    if sig == signal.SIGXCPU:
        return f"{name}: over the CPU limit of {limits.cpu} s"
    if sig == signal.SIGXFSZ:
        return f"{name}: a file over {limits.file_size} bytes"
    if sig == signal.SIGSYS:
        return f"{name}: a system call the seccomp filter kills for"
    if sig == signal.SIGKILL and cgroup is not None and cgroup.oom_killed():
        return f"{name}: over the memory limit of {limits.memory} bytes (cgroup)"
    return name


def to_result(
    outcome: Outcome,
    *,
    layers: dict[str, str],
    level: int,
    limits: Limits,
    cgroup: RunCgroup | None,
    timeout: float,
) -> SandboxResult:
    ready = outcome.first("ready")
    fatal = outcome.first("fatal")
    result = outcome.first("result")
    done = outcome.first("exit")
    if ready:
        layers.update({str(k): str(v) for k, v in ready.get("layers", {}).items()})
    if outcome.left_behind:
        layers["tracking"] += f"; {outcome.left_behind} process(es) still alive after the kill"
    res = SandboxResult(
        "error",
        stdout=outcome.stdout.decode("utf-8", "replace"),
        stderr=outcome.stderr.decode("utf-8", "replace"),
        stdout_truncated=outcome.stdout_total > len(outcome.stdout),
        stderr_truncated=outcome.stderr_total > len(outcome.stderr),
        duration=outcome.duration,
        level=level if ready else None,
        layers=layers,
    )
    if done is not None:
        code = int(done.get("code", 0))
        res.exit_code, res.signal = (code, None) if code >= 0 else (None, -code)
    if fatal is not None:
        res.status = "denied"
        res.reason = f"layer {fatal.get('layer')} could not be applied: {fatal.get('message')}"
    elif result is not None:
        res.messages = [str(m) for m in result.get("messages", [])][:50]
        if result.get("status") == "ok":
            res.status = "ok"
            res.value = json.loads(result["value_json"])
        else:
            res.error_type = str(result.get("type"))
            res.error_message = str(result.get("message"))
            res.traceback = result.get("traceback")
    elif outcome.timed_out:
        res.status = "timeout"
        res.reason = f"still running after {timeout:g} s: every process of the run was killed"
    elif outcome.killed_for:
        res.status = "killed"
        res.reason = outcome.killed_for
    elif res.signal is not None:
        res.status = "killed"
        res.reason = _signal_reason(res.signal, cgroup, limits)
    elif done is not None:
        res.error_type = "SandboxExit"
        res.error_message = (
            f"the procedure's process exited with code {res.exit_code} before returning"
        )
    elif outcome.returncode is not None and outcome.returncode < 0:
        res.status = "killed"
        res.reason = f"the sandbox's process was killed: {_signal_reason(-outcome.returncode, cgroup, limits)}"
    elif ready:
        res.error_type = "SandboxError"
        res.error_message = f"the run ended without a result (exit code {outcome.returncode})"
    else:  # the sandbox never got as far as the procedure: fail closed
        res.status = "denied"
        tail = res.stderr.strip().splitlines()[-1:] or [f"exit code {outcome.returncode}"]
        res.reason = f"the sandbox could not start: {tail[0]}"
    return res
