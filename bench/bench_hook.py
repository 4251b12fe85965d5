"""Benchmark: one small file through the pre-commit entry point against ``python -c pass``.

pre-commit starts the hook's console script as a new process for each batch of files, so
what a user waits for is interpreter start-up plus imports plus one check. Both commands
run alternately in the same loop (so load on a shared machine hits both alike) and the
medians are compared; the target is a hook at most 5× an empty interpreter.

Also shown, to say where the time goes: the hook with third-party entry points not
scanned (``PROCTOR_NO_ENTRY_POINTS=1``) and a bare ``import proctor.core.checking``.

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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "hook"

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


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--hook", default="proctor-hook-safety")
    args = parser.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / ".git").mkdir(exist_ok=True)  # stops the config search here, as in a repository
    sample = WORK / "module.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    bindir = Path(sys.executable).parent
    hook = str(bindir / args.hook)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    no_ep = {**env, "PROCTOR_NO_ENTRY_POINTS": "1"}
    commands = {
        "python -c pass": ([sys.executable, "-c", "pass"], env),
        f"{args.hook} module.py": ([hook, "module.py"], env),
        f"{args.hook} module.py (PROCTOR_NO_ENTRY_POINTS=1)": ([hook, "module.py"], no_ep),
        "python -c 'import proctor.core.checking'": (
            [sys.executable, "-c", "import proctor.core.checking"], env),
    }
    for cmd, cmd_env in commands.values():  # warm the file cache and .pyc files
        timed(cmd, cmd_env, WORK)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, (cmd, cmd_env) in commands.items():
            times[name].append(timed(cmd, cmd_env, WORK))

    med = {name: statistics.median(values) for name, values in times.items()}
    base = med["python -c pass"]
    print("```")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.repeat} alternating repetitions, medians of wall time")
    print("```")
    print()
    print("| command | median (ms) | ratio to python -c pass |")
    print("|---|---:|---:|")
    for name, value in med.items():
        print(f"| `{name}` | {value * 1000:.0f} | {value / base:.2f}× |")
    print()
    hook_ratio = med[f"{args.hook} module.py"] / base
    print(f"- hook / `python -c pass`: **{hook_ratio:.2f}×** (target ≤ 5×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
