"""Benchmark: one small file through the pre-commit entry point against ``python -c pass``.

pre-commit starts the hook's console script as a new process for each batch of files, so
what a user waits for is interpreter start-up plus imports plus one check. Both commands
run alternately in the same loop (so load on a shared machine hits both alike) and the
medians are compared; the target is a hook at most 5× an empty interpreter.

Also shown, to say where the time goes: the hook with third-party entry points not
scanned (``PROCTOR_NO_ENTRY_POINTS=1``) and a bare ``import proctor.checks.runner``.

Run: ``.venv/bin/python bench/bench_hook.py [--repeat N] [--hook proctor-hook-safety]``.
Prints a markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SAMPLE = '''\
"""A small module as a commit touches it."""

import json
import logging
import subprocess

log = logging.getLogger(__name__)


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run(cmd: list[str]) -> str:
    log.info("running %s", cmd[0])
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
'''


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``cmd``.

    CPU time comes from the child's own resource usage (``wait4``), so time spent waiting
    for a core on a busy machine does not count; wall time is what a user sees.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = 0  # reaped by wait4 above
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--hook", default="proctor-hook-safety")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="proctor-bench-hook-") as tmp:
        return measure(args, Path(tmp))


def measure(args: argparse.Namespace, work: Path) -> int:
    (work / ".git").mkdir()  # stops the config search here, as in a repository
    sample = work / "module.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    bindir = Path(sys.executable).parent
    hook = str(bindir / args.hook)
    # Bytecode is written as in an installed environment (pip compiles on install, and
    # pre-commit installs the hook with pip): the warm-up run below creates the .pyc files.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PROCTOR_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    no_ep = {**env, "PROCTOR_NO_ENTRY_POINTS": "1"}
    commands = {
        "python -c pass": ([sys.executable, "-c", "pass"], env),
        f"{args.hook} module.py": ([hook, "module.py"], env),
        f"{args.hook} module.py (PROCTOR_NO_ENTRY_POINTS=1)": ([hook, "module.py"], no_ep),
        "python -c 'import proctor.checks.runner'": (
            [sys.executable, "-c", "import proctor.checks.runner"],
            env,
        ),
    }
    for cmd, cmd_env in commands.values():  # warm the file cache and .pyc files
        timed(cmd, cmd_env, work)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, (cmd, cmd_env) in commands.items():
            wall, cpu = timed(cmd, cmd_env, work)
            walls[name].append(wall)
            cpus[name].append(cpu)

    wall_med = {name: statistics.median(values) for name, values in walls.items()}
    cpu_med = {name: statistics.median(values) for name, values in cpus.items()}
    base_wall, base_cpu = wall_med["python -c pass"], cpu_med["python -c pass"]
    print("```")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.repeat} alternating repetitions, medians"
    )
    print("```")
    print()
    print("| command | wall (ms) | wall ratio | CPU (ms) | CPU ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in commands:
        print(
            f"| `{name}` | {wall_med[name] * 1000:.0f} | {wall_med[name] / base_wall:.2f}× "
            f"| {cpu_med[name] * 1000:.0f} | {cpu_med[name] / base_cpu:.2f}× |"
        )
    print()
    hook = f"{args.hook} module.py"
    print(
        f"- hook / `python -c pass`: **{wall_med[hook] / base_wall:.2f}×** wall, "
        f"**{cpu_med[hook] / base_cpu:.2f}×** CPU (target ≤ 5×)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
