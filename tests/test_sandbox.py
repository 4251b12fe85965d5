"""The sandbox layer by layer: statuses, limits, environment, cgroups, namespaces, Landlock,
failing closed. Every run is a real sandboxed interpreter; a level this machine cannot
reach is skipped with the probe's reason."""

from __future__ import annotations

import asyncio
import os
import resource

import pytest

from proctor.core.errors import EXIT_USAGE
from proctor.runs.sandbox import (
    Capabilities,
    Limits,
    Probe,
    SandboxUsageError,
    probe,
    run_in_sandbox,
    run_in_sandbox_async,
    runner,
)
from proctor.runs.sandbox import api as sandbox_api
from proctor.runs.sandbox import machine as probe_module
from proctor.runs.sandbox.bwrap import interpreter_prefixes
from proctor.runs.sandbox.cgroups import hierarchies

LEVELS = [0, 1, 2]


def need(level: int, namespaces: bool = True) -> None:
    found = probe(namespaces)
    if not found.available(level):
        pytest.skip(f"level {level} unavailable: {found.missing[level]}")


def run(code: str, params: dict[str, object] | None = None, **kw: object) -> object:
    kw.setdefault("timeout", 10)
    return run_in_sandbox(code, params, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", LEVELS)
def test_a_run_returns_its_value_output_and_level(level: int) -> None:
    need(level)
    res = run_in_sandbox(
        "def run(a, b):\n    print('adding')\n    return {'sum': a + b}\n",
        {"a": 2, "b": 3},
        level=level,
    )
    assert res.status == "ok", res
    assert res.value == {"sum": 5}
    assert res.stdout == "adding\n"
    assert res.level == level
    assert {
        "process",
        "environment",
        "rlimits",
        "cgroup",
        "seccomp",
        "namespaces",
        "landlock",
    } <= set(res.layers)
    assert 0 < res.duration < 10


def test_best_level_is_the_default() -> None:
    res = run_in_sandbox("def run():\n    return 1\n")
    assert res.level == probe().best


@pytest.mark.parametrize("level", LEVELS)
def test_an_exception_is_an_error_with_type_message_and_traceback(level: int) -> None:
    need(level)
    res = run_in_sandbox("def run():\n    raise KeyError('nope')\n", level=level)
    assert (res.status, res.error_type, res.error_message) == ("error", "KeyError", "'nope'")
    assert res.traceback and "main.py" in res.traceback


def test_error_cases_of_the_runner() -> None:
    not_json = run_in_sandbox("def run():\n    return {1, 2}\n", level=0)
    assert (not_json.status, not_json.error_type) == ("error", "TypeError")
    assert "not JSON" in (not_json.error_message or "")
    exits = run_in_sandbox("import sys\ndef run():\n    sys.exit(4)\n", level=0)
    assert (exits.status, exits.error_type) == ("error", "SystemExit")
    hard = run_in_sandbox("import os\ndef run():\n    os._exit(7)\n", level=0)
    assert (hard.status, hard.error_type, hard.exit_code) == ("error", "SandboxExit", 7)
    missing = run_in_sandbox("def other():\n    return 1\n", level=0)
    assert (missing.status, missing.error_type) == ("error", "AttributeError")
    big = run_in_sandbox("def run():\n    return 'x' * 5000\n", level=0, limits=Limits(result=1000))
    assert big.status == "error" and "over the 1000 byte limit" in (big.error_message or "")
    custom = run_in_sandbox("def main(n):\n    return n\n", {"n": 3}, entry="main", level=0)
    assert custom.value == 3


def test_cpu_limit_kills_with_sigxcpu() -> None:
    res = run_in_sandbox(
        "def run():\n    while True:\n        pass\n", level=0, limits=Limits(cpu=1), timeout=10
    )
    assert res.status == "killed"
    assert res.reason and "SIGXCPU" in res.reason
    assert res.duration < 5


def test_output_is_capped_and_marked_truncated() -> None:
    code = "import sys\ndef run():\n    print('o' * 5000)\n    sys.stderr.write('e' * 5000)\n    return 1\n"
    res = run_in_sandbox(code, level=0, limits=Limits(output=1000))
    assert res.status == "ok"
    assert (len(res.stdout), len(res.stderr)) == (1000, 1000)
    assert res.stdout_truncated and res.stderr_truncated


def test_file_size_limit() -> None:
    code = "def run():\n    with open('big', 'wb') as f:\n        f.write(b'x' * 200000)\n"
    res = run_in_sandbox(code, level=0, limits=Limits(file_size=100000))
    assert res.status == "error" and res.error_type == "OSError"
    assert "File too large" in (res.error_message or "")


@pytest.mark.parametrize("level", LEVELS)
def test_environment_is_an_allowlist(level: int, monkeypatch: pytest.MonkeyPatch) -> None:
    need(level)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("LANG", "C.UTF-8")
    res = run_in_sandbox(
        "import os\ndef run():\n    return dict(os.environ)\n", level=level, env={"GREETING": "hi"}
    )
    assert res.status == "ok"
    env = res.value
    assert isinstance(env, dict)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "hunter2" not in str(env)
    assert env["GREETING"] == "hi" and env["LANG"] == "C.UTF-8"
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "GREETING", "LANG", "LC_CTYPE", "PWD"}
    with pytest.raises(SandboxUsageError):
        run_in_sandbox("def run():\n    pass\n", level=0, env={"A=B": "x"})


def test_rlimits_are_set_inside() -> None:
    code = (
        "import resource\ndef run():\n    g = resource.getrlimit\n"
        "    return [g(resource.RLIMIT_AS), g(resource.RLIMIT_FSIZE), g(resource.RLIMIT_NOFILE),"
        " g(resource.RLIMIT_CORE), g(resource.RLIMIT_CPU), g(resource.RLIMIT_NPROC)]\n"
    )
    limits = Limits(memory=300 * 1024 * 1024, file_size=1 << 20, open_files=50, cpu=7)
    res = run_in_sandbox(code, level=0, limits=limits)
    assert res.status == "ok"
    assert isinstance(res.value, list)
    as_, fsize, nofile, core, cpu, nproc = (tuple(x) for x in res.value)
    assert as_ == (limits.memory,) * 2 and fsize == (1 << 20,) * 2 and nofile == (50, 50)
    assert core == (0, 0) and cpu == (7, 8)
    if os.geteuid() == 0:
        assert "root is exempt" in res.layers["rlimits"]
    else:  # the user's current tasks plus the allowance
        assert nproc[0] != resource.RLIM_INFINITY and nproc[0] >= limits.processes


def test_processes_limit_when_not_root() -> None:
    if os.geteuid() == 0 and not any("pids" in h.controllers for h in hierarchies()[0]):
        pytest.skip("root without a writable pids cgroup: nothing counts processes at level 0")
    code = (
        "import os\ndef run():\n    n = 0\n    try:\n        while n < 200:\n"
        "            if os.fork() == 0:\n                import time; time.sleep(30)\n            n += 1\n"
        "    except OSError as exc:\n        return [n, type(exc).__name__]\n    return [n, None]\n"
    )
    res = run_in_sandbox(
        code, level=0, capabilities={"subprocess": True}, limits=Limits(processes=8)
    )
    assert res.status == "ok", res
    assert isinstance(res.value, list)
    forked, error = res.value
    assert forked < 20 and error == "BlockingIOError"


def test_cgroup_holds_the_run_and_is_removed() -> None:
    if not any("pids" in h.controllers for h in hierarchies()[0]):
        pytest.skip(f"no writable pids cgroup here: {hierarchies()[1]}")
    res = run_in_sandbox("def run():\n    return open('/proc/self/cgroup').read()\n", level=0)
    assert res.status == "ok"
    assert isinstance(res.value, str)
    line = next(x for x in res.value.splitlines() if "pids" in x.split(":")[1].split(","))
    name = line.rsplit("/", 1)[1]
    assert name.startswith("proctor-run-")
    assert "pids.max=" in res.layers["cgroup"]
    assert not any(os.path.exists(os.path.join(h.base, name)) for h in hierarchies()[0])
    off = run_in_sandbox(
        "def run():\n    return open('/proc/self/cgroup').read()\n", level=0, disable={"cgroups"}
    )
    assert "proctor-run-" not in str(off.value) and off.layers["cgroup"] == "disabled by the caller"


def need_memory_cgroup() -> None:
    if not any("memory" in h.controllers for h in hierarchies()[0]):
        pytest.skip(f"no writable memory cgroup here (root with cgroups): {hierarchies()[1]}")


MEMORY_HOGS = """
import os, time
def run(children, mib):
    kids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            hog = b"x" * (mib << 20)  # touched: resident, not just reserved
            time.sleep(1)
            os._exit(0)
        kids.append(pid)
    return [os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids]
"""

CGROUP_LIMIT = """
def run():
    for line in open("/proc/self/cgroup"):
        _id, names, path = line.rstrip("\\n").split(":", 2)
        if "memory" in names.split(","):
            for name in ("memory.limit_in_bytes", "memory.max"):
                for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
                    try:
                        return int(open(base + path + "/" + name).read())
                    except OSError:
                        pass
    return None
"""


def test_the_memory_cgroup_bounds_the_run_as_a_whole() -> None:
    """RLIMIT_AS counts one process: five processes of 60 MiB each stay under it, and only
    the run's memory cgroup (200 MiB for all of them) stops them, by killing some."""
    need_memory_cgroup()
    limits = Limits(memory=200 * 1024 * 1024)
    inside = run_in_sandbox(CGROUP_LIMIT, level=0, limits=limits)
    assert (inside.status, inside.value) == ("ok", limits.memory), inside
    assert "memory=200MiB" in inside.layers["cgroup"]
    caps = {"subprocess": True}
    params = {"children": 5, "mib": 60}
    res = run_in_sandbox(MEMORY_HOGS, params, level=0, capabilities=caps, limits=limits)
    assert res.status == "ok", res
    assert isinstance(res.value, list) and -9 in res.value, res.value  # the OOM killer's
    # The same run without the cgroup: every process gets its 60 MiB.
    free = run_in_sandbox(
        MEMORY_HOGS, params, level=0, capabilities=caps, limits=limits, disable={"cgroups"}
    )
    assert (free.status, free.value) == ("ok", [0] * 5), free


TMPFS_FILL = """
def run():
    chunk = b"x" * (1 << 20)
    for path in ("/sandbox/work/fill", "/tmp/fill"):
        with open(path, "wb") as f:
            for _ in range(100):
                f.write(chunk)
    return "filled"
"""


@pytest.mark.parametrize("level", [1, 2])
def test_the_memory_cgroup_bounds_the_tmpfs_work_dir(level: int) -> None:
    """Files in the tmpfs work dir and /tmp are memory no address-space limit sees: 200 MiB
    of them under a 150 MiB cgroup is a run killed for memory."""
    need(level)
    need_memory_cgroup()
    limits = Limits(memory=150 * 1024 * 1024, file_size=110 * 1024 * 1024)
    res = run_in_sandbox(TMPFS_FILL, level=level, limits=limits, timeout=20)
    assert res.status == "killed", res
    assert res.reason and "over the memory limit" in res.reason and "(cgroup)" in res.reason
    free = run_in_sandbox(TMPFS_FILL, level=level, limits=limits, disable={"cgroups"}, timeout=20)
    assert (free.status, free.value) == ("ok", "filled"), free


def test_own_session_and_a_fresh_work_dir_that_goes_away() -> None:
    res = run_in_sandbox(
        "import os\ndef run():\n    open('f', 'w').write('x')\n    return [os.getsid(0), os.getcwd(), os.listdir('.')]\n",
        level=0,
    )
    assert res.status == "ok"
    assert isinstance(res.value, list)
    sid, cwd, listing = res.value
    assert sid != os.getsid(0) and listing == ["f"]
    assert not os.path.exists(cwd)


def test_level_1_sees_a_small_world() -> None:
    need(1)
    code = (
        "import os, socket\ndef run():\n"
        "    return [socket.gethostname(), sorted(os.listdir('/')), os.path.exists('/sys'),"
        " sorted(p for p in os.listdir('/proc') if p.isdigit()), os.getcwd()]\n"
    )
    res = run_in_sandbox(code, level=1)
    assert res.status == "ok", res
    assert isinstance(res.value, list)
    hostname, root, has_sys, pids, cwd = res.value
    assert hostname == "sandbox" and not has_sys and cwd == "/sandbox/work"
    allowed = {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "sbin",
        "proc",
        "sandbox",
        "tmp",
        "usr",
    }
    allowed |= {p.split("/")[1] for p in interpreter_prefixes()}  # the interpreter's own tree
    assert set(root) <= allowed and "sandbox" in root
    assert len(pids) <= 3  # bubblewrap's init, the supervisor, the procedure


def test_level_2_adds_landlock_on_top_of_the_namespaces() -> None:
    need(1)  # the namespaces this adds to (level 2 alone may be the fallback without them)
    need(2)
    code = "def run():\n    return open('/proc/self/status').read()[:10]\n"
    assert run_in_sandbox(code, level=1).status == "ok"
    res = run_in_sandbox(code, level=2)
    assert (res.status, res.error_type) == ("error", "PermissionError")
    assert "ABI" in res.layers["landlock"]


def test_fallback_without_namespaces_still_confines_files(tmp_path: object) -> None:
    need(2, namespaces=False)
    res = run_in_sandbox(
        "def run():\n    return open('/etc/hostname').read()\n", level=2, disable={"namespaces"}
    )
    assert (res.status, res.error_type) == ("error", "PermissionError")
    assert res.layers["namespaces"].startswith("fallback")
    assert "rules loaded by the runner" in res.layers["seccomp"]


@pytest.mark.parametrize("level", LEVELS)
def test_subprocess_capability_opens_process_creation(level: int) -> None:
    need(level)
    code = "import subprocess, sys\ndef run():\n    return subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout\n"
    res = run_in_sandbox(code, level=level, capabilities={"subprocess": True})
    assert (res.status, res.value) == ("ok", "42\n"), res
    assert any(m.startswith("subprocess.Popen") for m in res.messages)  # the audit hook's note
    if level >= 1:
        denied = run_in_sandbox(code, level=level)
        assert (denied.status, denied.error_type) == ("error", "PermissionError")


def test_denied_when_the_level_is_below_the_minimum() -> None:
    res = run_in_sandbox("def run():\n    return 1\n", level=0, min_level=2)
    assert res.status == "denied" and res.level is None
    assert res.reason and "level 2 required" in res.reason


def test_denied_when_the_level_is_unavailable() -> None:
    res = run_in_sandbox("def run():\n    return 1\n", level=1, disable={"namespaces"})
    assert res.status == "denied"
    assert res.reason and "namespaces disabled by the caller" in res.reason


def test_a_layer_the_runner_cannot_apply_denies_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    need(2, namespaces=False)
    monkeypatch.setattr(probe_module, "FALLBACK_MIN_ABI", 999)  # more than any kernel offers
    code = "import os\ndef run():\n    os.mkdir('/tmp/never')\n"
    res = run_in_sandbox(code, level=2, disable={"namespaces"})
    assert res.status == "denied" and res.level is None
    assert res.reason and "landlock" in res.reason and "ABI 999" in res.reason
    with pytest.raises(runner.LayerError):
        runner.apply_landlock({"min_abi": 999})  # refuses before restricting anything


def test_levels_missing_where_layers_are() -> None:
    none = probe_module._missing("linux", 0, "no libseccomp bindings", "bwrap not found")
    assert set(none) == {1, 2}
    fallback = probe_module._missing("linux", 6, None, "user namespaces blocked")
    assert set(fallback) == {1}
    old = probe_module._missing("linux", 3, None, "user namespaces blocked")
    assert set(old) == {1, 2} and "ABI 6" in old[2]
    mac = Probe("darwin", 0, None, "no", "none", probe_module._missing("darwin", 0, None, "no"))
    assert set(mac.missing) == {0, 1, 2}
    level, why = sandbox_api._choose_level(mac, None, 0, unsandboxed=False)
    assert level is None and why and "unsandboxed=True" in why
    assert sandbox_api._choose_level(mac, None, 0, unsandboxed=True) == (0, None)
    assert sandbox_api._choose_level(mac, None, 1, unsandboxed=True)[0] is None


def test_bad_arguments_raise_usage_errors(tmp_path: object) -> None:
    bad: list[dict[str, object]] = [
        {"level": 3},
        {"min_level": -1},
        {"timeout": 0},
        {"disable": {"landlock"}},
        {"entry": "not an identifier"},
        {"filename": "../x.py"},
        {"capabilities": {"netwrok": True}},
        {"capabilities": {"filesystem_write": ["relative/path"]}},
        {"capabilities": {"filesystem_write": ["/no/such/path/anywhere"]}},
        {"capabilities": {"network": "yes"}},
    ]
    for kwargs in bad:
        with pytest.raises(SandboxUsageError) as info:
            run_in_sandbox("def run():\n    pass\n", **kwargs)  # type: ignore[arg-type]
        assert info.value.exit_code == EXIT_USAGE
    with pytest.raises(SandboxUsageError):
        run_in_sandbox("def run(x):\n    pass\n", {"x": object()})
    with pytest.raises(SandboxUsageError):
        Limits(memory=0)


def test_capabilities_from_a_mapping_or_an_object(tmp_path: object) -> None:
    class Meta:
        network = True
        subprocess = False
        filesystem_write = (str(tmp_path),)

    caps = Capabilities.coerce(Meta())
    assert caps == Capabilities(True, False, (os.path.realpath(str(tmp_path)),))
    assert Capabilities.coerce({"subprocess": True}) == Capabilities(subprocess=True)
    assert Capabilities.coerce(None) == Capabilities()


def test_async_variant_leaves_the_loop_running() -> None:
    async def main() -> tuple[object, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        res = await run_in_sandbox_async(
            "import time\ndef run():\n    time.sleep(0.3)\n    return 'done'\n", level=0
        )
        ticker.cancel()
        return res.value, ticks

    value, ticks = asyncio.run(main())
    assert value == "done" and ticks > 10


def test_the_runs_doc_example_runs_as_written() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "runs.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0]
    exec(compile(block, "docs/runs.md", "exec"), {})
