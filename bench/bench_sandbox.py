"""Benchmark: the overhead of a sandboxed trivial run at each level over ``python -I -c pass``.

A trivial run is ``run_in_sandbox("def run():\\n    return 1\\n")``: the whole path a
caller waits for (plan, cgroup, bubblewrap, interpreter start-up, runner, Landlock,
seccomp, result, kill and clean-up). The baseline, an empty isolated interpreter, runs in
the same loop, each contender taking its turn in every round, so a busy machine slows
them alike; medians are compared. Targets: level 0 at most +50 ms, the full stack (level
2) at most +100 ms.

Run: ``.venv/bin/python bench/bench_sandbox.py [--repeat N]``. Prints a markdown block
for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from proctor.runs.sandbox import probe, run_in_sandbox

TRIVIAL = "def run():\n    return 1\n"
TARGETS = {"level 0": 0.050, "level 2": 0.100}


def baseline() -> None:
    subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)


def sandboxed(**kwargs: Any) -> Callable[[], None]:
    def one() -> None:
        res = run_in_sandbox(TRIVIAL, **kwargs)
        if res.status != "ok":
            raise SystemExit(f"benchmark run failed: {res.status} {res.reason} {res.error_message}")

    return one


def contenders() -> dict[str, Callable[[], None]]:
    out: dict[str, Callable[[], None]] = {"python -I -c pass": baseline}
    found, bare = probe(), probe(namespaces=False)
    out["level 0"] = sandboxed(level=0)
    if "not writable" not in found.cgroups and found.cgroups != "none":
        out["level 0 (cgroups disabled)"] = sandboxed(level=0, disable={"cgroups"})
    if found.available(1):
        out["level 1"] = sandboxed(level=1)
    if found.available(2) and found.namespaces is None:
        out["level 2"] = sandboxed(level=2)
    if bare.available(2):
        out["level 2 (fallback, no namespaces)"] = sandboxed(level=2, disable={"namespaces"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args(argv)
    runs = contenders()
    for fn in runs.values():  # warm caches: the probe, seccomp programs, the file cache
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    started = time.perf_counter()
    for _ in range(args.repeat):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    took = time.perf_counter() - started
    med = {name: statistics.median(v) for name, v in times.items()}
    p90 = {name: statistics.quantiles(v, n=10)[-1] for name, v in times.items()}
    base = med["python -I -c pass"]
    found = probe()
    print("```")
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"uid {os.geteuid()}, Landlock ABI {found.landlock_abi}, cgroups: {found.cgroups}; "
        f"{args.repeat} rounds, contenders taking turns, medians; {took:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("```")
    print()
    print("| run | median | p90 | over `python -I -c pass` | ratio | target |")
    print("|---|---:|---:|---:|---:|---|")
    for name in runs:
        delta = med[name] - base
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"≤ +{target * 1000:.0f} ms: {'met' if delta <= target else '**missed**'}"
        extra = "" if name == "python -I -c pass" else f"+{delta * 1000:.1f} ms"
        print(
            f"| {name} | {med[name] * 1000:.1f} ms | {p90[name] * 1000:.1f} ms | {extra} "
            f"| {med[name] / base:.2f}× | {verdict} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
