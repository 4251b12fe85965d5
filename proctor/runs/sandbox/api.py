"""``run_in_sandbox``: plan the layers for a level, start the run, read its outcome.

The plan is decided here, before anything starts, from what the probe measured: a level
the machine cannot reach, or one below the caller's minimum, is ``denied`` with what is
missing, and nothing runs. Once running, a layer the runner cannot apply is also a
denial (the runner writes ``fatal`` and never imports the procedure).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping
from typing import Any

from . import bwrap, cgroups, machine, seccomp
from .model import Capabilities, Limits, SandboxResult, SandboxUsageError
from .supervise import Spawn, Stop, supervise

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
ENV_PASSED = ("LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")
DISABLE = frozenset({"cgroups", "namespaces"})
LEVELS = (0, 1, 2)


def _denied(
    reason: str, layers: dict[str, str] | None = None, started: float | None = None
) -> SandboxResult:
    duration = time.monotonic() - started if started is not None else 0.0
    return SandboxResult("denied", reason=reason, layers=layers or {}, duration=duration)


def _user_tasks(uid: int) -> int:
    """Tasks (threads count) the user runs now: RLIMIT_NPROC is checked against this."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += max(os.stat(f"/proc/{name}/task").st_nlink - 2, 1)
            except OSError:
                continue
    return count


def _rlimits(
    limits: Limits, layers: dict[str, str], namespaced: bool
) -> list[tuple[int, int, int]]:
    import resource

    out = [
        (resource.RLIMIT_AS, limits.memory, limits.memory),
        # SIGXCPU at the soft limit says why; SIGKILL a second later if it is caught.
        (resource.RLIMIT_CPU, limits.cpu, limits.cpu + 1),
        (resource.RLIMIT_FSIZE, limits.file_size, limits.file_size),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    mib = 1024 * 1024
    text = f"as={limits.memory // mib}MiB cpu={limits.cpu}s fsize={limits.file_size // mib}MiB nofile={limits.open_files} core=0"
    if os.geteuid() == 0:
        text += " nproc=not set (root is exempt)"
    elif namespaced:  # counted in the sandbox's own user namespace: its tasks alone
        nproc = limits.processes + 2  # bubblewrap's init and the supervisor
        out.append((resource.RLIMIT_NPROC, nproc, nproc))
        text += f" nproc={nproc} (in the sandbox's user namespace)"
    elif sys.platform.startswith("linux"):
        nproc = _user_tasks(os.getuid()) + limits.processes
        out.append((resource.RLIMIT_NPROC, nproc, nproc))
        text += f" nproc={nproc} (the user's tasks + {limits.processes})"
    layers["rlimits"] = text
    return out


def _environment(work: str, tmp: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": tmp}
    env.update({k: os.environ[k] for k in ENV_PASSED if k in os.environ})
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str) or "=" in key or not key:
            raise SandboxUsageError(f"env entry {key!r} must map a name to a string")
        env[key] = value
    return env


_BYTECODE: list[bytes] = []


def _runner_bytecode() -> bytes:
    """runner.py compiled once per process, as a .pyc file's bytes (Python runs those)."""
    if not _BYTECODE:
        import py_compile

        with tempfile.TemporaryDirectory(prefix="proctor-runner-") as tmp:
            out = os.path.join(tmp, "runner.pyc")
            py_compile.compile(RUNNER, cfile=out, doraise=True)
            with open(out, "rb") as f:
                _BYTECODE.append(f.read())
    return _BYTECODE[0]


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o444)


def _join_then_exec(procs_files: list[str], argv: list[str]) -> list[str]:
    """``argv`` behind a shell that first moves itself into the run's cgroup(s)."""
    import shlex

    joins = " && ".join(f"echo 0 > {shlex.quote(path)}" for path in procs_files)
    return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]


def _remove_tree(path: str) -> None:
    def onerror(_func: Any, failed: str, _exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(failed), stat.S_IRWXU)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, stat.S_IRWXU)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass

    os.chmod(os.path.join(path, "code"), stat.S_IRWXU)
    shutil.rmtree(path, onerror=onerror)


def _choose_level(
    found: machine.Probe, level: int | None, min_level: int, unsandboxed: bool
) -> tuple[int | None, str | None]:
    """(level to run at, None) or (None, why the run is denied)."""
    if not found.available(0):
        if unsandboxed and sys.platform != "win32" and min_level == 0 and level in (None, 0):
            return 0, None
        return None, f"{found.missing[0]}; pass unsandboxed=True to run without isolation"
    target = found.best if level is None else level
    assert target is not None
    if not found.available(target):
        return None, f"level {target} unavailable: {found.missing[target]}"
    if target < min_level:
        missing = found.missing.get(min_level, f"level {target} was asked for")
        return None, f"level {min_level} required, the run would reach {target}: {missing}"
    return target, None


def landlock_spec(caps: Capabilities, *, code: str, work: str, namespaced: bool) -> dict[str, Any]:
    """What the runner restricts itself to at level 2 (``runner.apply_landlock``'s spec).

    Its own function so a test can hand the runner this exact spec with no other layer
    around it: each Landlock rule is then shown to be what blocks.
    """
    write = [work, *caps.filesystem_write] + (["/tmp"] if namespaced else [])
    return {
        "read": [*bwrap.read_paths(caps), code],
        "write": write,
        "devices": list(bwrap.DEVICES),
        "execute": caps.subprocess,
        "tcp": not caps.network,
        "scope": True,
        "min_abi": 1 if namespaced else machine.FALLBACK_MIN_ABI,
    }


def run_in_sandbox(
    code: bytes | str,
    params: Mapping[str, Any] | None = None,
    *,
    entry: str = "run",
    capabilities: object = None,
    limits: Limits | None = None,
    min_level: int = 0,
    level: int | None = None,
    timeout: float = 30.0,
    unsandboxed: bool = False,
    disable: Collection[str] = (),
    env: Mapping[str, str] | None = None,
    module: str = "procedure",
    filename: str = "main.py",
    audit: bool = True,
    stop: Stop | None = None,
) -> SandboxResult:
    """Run ``entry(**params)`` of ``code`` in a fresh sandboxed interpreter.

    ``level`` None runs at the best level the machine offers, an int runs at exactly that
    level; either way a level below ``min_level`` is denied. ``disable`` turns layers off
    for the machines where they misbehave: ``"cgroups"``, and ``"namespaces"``, which
    makes level 2 the Landlock + seccomp fallback. ``unsandboxed`` is the explicit consent
    needed where no isolation exists (macOS, other POSIX systems). Bad arguments raise
    SandboxUsageError; everything that happens to the run is in the result. ``stop``, set
    from another thread, kills the run at once (status ``killed``).
    """
    started = time.monotonic()
    caps = Capabilities.coerce(capabilities)
    limits = limits or Limits()
    if min_level not in LEVELS or (level is not None and level not in LEVELS):
        raise SandboxUsageError(
            f"levels are 0, 1 and 2 (got min_level={min_level!r}, level={level!r})"
        )
    if not timeout or timeout <= 0:
        raise SandboxUsageError("timeout must be a positive number of seconds")
    if set(disable) - DISABLE:
        raise SandboxUsageError(f"only {', '.join(sorted(DISABLE))} can be disabled")
    if (
        not entry.isidentifier()
        or not module.isidentifier()
        or os.path.basename(filename) != filename
    ):
        raise SandboxUsageError("entry and module must be identifiers, filename a bare file name")
    try:
        header_params = json.loads(json.dumps(dict(params or {})))
    except (TypeError, ValueError) as exc:
        raise SandboxUsageError(f"params must be JSON: {exc}") from None
    source = code.encode() if isinstance(code, str) else bytes(code)

    use_ns = "namespaces" not in disable
    found = machine.probe(use_ns)
    target, why = _choose_level(found, level, min_level, unsandboxed)
    if target is None:
        return _denied(why or "denied", started=started)
    namespaced = target >= 1 and found.namespaces is None
    layers: dict[str, str] = {}

    run_dir = tempfile.mkdtemp(prefix="proctor-run-")
    cgroup = None
    try:
        code_dir, work = os.path.join(run_dir, "code"), os.path.join(run_dir, "work")
        os.mkdir(code_dir)
        os.mkdir(work, 0o700)
        _write_file(os.path.join(code_dir, filename), source)
        os.chmod(code_dir, 0o555)

        inner_code = bwrap.CODE if namespaced else code_dir
        inner_work = bwrap.WORK if namespaced else work
        inner_tmp = "/tmp" if namespaced else work
        header: dict[str, Any] = {
            "module": module,
            "entry": entry,
            "params": header_params,
            "code_path": os.path.join(inner_code, filename),
            "result_limit": limits.result,
            "audit": audit,
            "drop_privileges": sys.platform.startswith("linux"),
        }
        layers["process"] = f"python -I -B in its own session; work dir {inner_work}"
        child_env = _environment(inner_work, inner_tmp, env)
        layers["environment"] = f"allowlist: {', '.join(sorted(child_env))}"
        header["rlimits"] = _rlimits(limits, layers, namespaced)
        if "cgroups" in disable:
            layers["cgroup"] = "disabled by the caller"
        else:
            cgroup, layers["cgroup"] = cgroups.create(limits.memory, limits.processes)
        layers["tracking"] = "in-sandbox supervisor is the subreaper of the procedure's processes"
        if cgroup is not None:
            layers["tracking"] += "; the run's cgroup lists every process"
        if namespaced:
            layers["tracking"] += "; the pid namespace dies with its init"

        extra_fds: list[int] = []
        in_r, header_w = os.pipe()
        result_r, out_w = os.pipe()
        if target >= 1:
            # Landlock scopes abstract unix sockets at level 2 from ABI 6; elsewhere, with the
            # host network namespace shared, the filter refuses unix sockets instead.
            unix_scoped = target == 2 and found.landlock_abi >= 6
            base, runner_prog, what = seccomp.build(
                caps, namespaces=namespaced, unix_scoped=unix_scoped
            )
            layers["seccomp"] = what
            if runner_prog:
                import base64

                header["seccomp"] = [base64.b64encode(runner_prog).decode()]
        else:
            layers["seccomp"] = "not used at level 0"
        info_r = -1
        # The runner goes in as bytecode, fresh in every run dir: a script is compiled on
        # each start (-B or not), a third of level 0's overhead for a file this size.
        runner_dir = os.path.join(run_dir, "runner")
        os.mkdir(runner_dir)
        _write_file(os.path.join(runner_dir, "runner.pyc"), _runner_bytecode())
        if namespaced:
            assert base is not None
            seccomp_fd = seccomp.pipe_with(base)
            info_r, info_w = os.pipe()
            extra_fds += [seccomp_fd, info_w]
            runner_path = os.path.join(bwrap.RUNNER_DIR, "runner.pyc")
            command = [sys.executable, "-I", "-B", runner_path, str(in_r), str(out_w)]
            argv = bwrap.argv(
                caps=caps,
                code_dir=code_dir,
                runner_dir=runner_dir,
                tmpfs_size=limits.file_size,
                seccomp_fd=seccomp_fd,
                info_fd=info_w,
                command=command,
            )
            if cgroup is not None:  # /sys is not in the sandbox: join before bubblewrap starts
                argv = _join_then_exec(cgroup.procs_files, argv)
            layers["namespaces"] = "bubblewrap: user, mount, pid, ipc, uts, cgroup" + (
                " namespaces, host network shared (network capability)"
                if caps.network
                else ", network namespaces"
            )
            layers["namespaces"] += (
                "; nested user namespaces disabled; read-only binds, tmpfs work dir"
            )
        else:
            runner_path = os.path.join(runner_dir, "runner.pyc")
            argv = [sys.executable, "-I", "-B", runner_path, str(in_r), str(out_w)]
            layers["namespaces"] = (
                f"not used at level {target}" if target == 0 else f"fallback: {found.namespaces}"
            )
        if target == 2:
            header["landlock"] = landlock_spec(
                caps, code=inner_code, work=inner_work, namespaced=namespaced
            )
        else:
            layers["landlock"] = f"not used at level {target}"

        spawn = Spawn(
            argv=argv,
            env=child_env,
            cwd=work,
            header=json.dumps(header).encode(),
            in_fd=in_r,
            out_fd=out_w,
            header_w=header_w,
            result_r=result_r,
            extra_fds=tuple(extra_fds),
            cgroup=cgroup,
            namespaced=namespaced,
            info_r=info_r,
            join_cgroup=not namespaced,
        )
        try:
            outcome = supervise(spawn, timeout=timeout, limits=limits, stop=stop)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            # the interpreter or bubblewrap could not start, or the cgroup refused it
            for fd in (header_w, result_r, info_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            return _denied(f"the sandbox could not start: {exc}", layers, started)
        from .outcome import to_result

        return to_result(
            outcome, layers=layers, level=target, limits=limits, cgroup=cgroup, timeout=timeout
        )
    finally:
        if cgroup is not None:
            cgroup.remove()
        _remove_tree(run_dir)


async def run_in_sandbox_async(
    code: bytes | str, params: Mapping[str, Any] | None = None, **kwargs: Any
) -> SandboxResult:
    """``run_in_sandbox`` on a worker thread, so an event loop keeps running meanwhile.

    Cancelled (Ctrl-C in the CLI cancels the task that awaits this), it stops the run
    and waits for the kill and the clean-up before it lets the cancellation go on: a
    thread cannot be cancelled, and without the stop the run would go on to its
    timeout, holding the caller's exit until then.
    """
    import asyncio

    stop = Stop()
    work = asyncio.ensure_future(
        asyncio.to_thread(run_in_sandbox, code, params, stop=stop, **kwargs)
    )
    work.add_done_callback(lambda _done: stop.close())  # once the thread is done with it
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):  # its result is dropped: cancelled
            await work
        raise
