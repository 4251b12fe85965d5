"""Benchmark: ``proctor check`` over a large tree against ``ast.parse`` alone and bandit.

The tree is a copy of the running interpreter's standard library (``Lib/``, tests
included, ``site-packages`` left out) in ``bench/_work/stdlib``, and salt's source
distribution (``salt==3007.1``, downloaded and unpacked into ``bench/_work/projects`` by
the helper of ``bench_real_projects.py``; ``--no-salt`` leaves it out). Everything is
measured in one run on the same files, taking turns repetition by repetition, so the
ratios hold on a noisy machine where absolute times do not:

* ``ast.parse`` of every file, in this process (CPU time): the floor any AST checker pays;
* ``check_paths(select=["safety"])`` in this process (CPU time): reading, decoding,
  parsing, the safety validator, suppressions;
* the same with ``jobs=2`` (wall time, as CPU time of this process would miss the workers);
* ``bandit -r -q`` as a subprocess (wall time), for comparison.

Run: ``.venv/bin/python bench/bench_check.py [--repeat N] [--no-bandit] [--checks safety]``.
Prints a markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
TREE = WORK / "stdlib"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_real_projects import PINNED, ensure_project  # noqa: E402

from proctor.checks.files import collect_files  # noqa: E402
from proctor.checks.runner import check_paths  # noqa: E402
from proctor.checks.settings import CheckSettings  # noqa: E402


def copy_stdlib() -> Path:
    """Copy Lib/ once (without site-packages and caches); reused by later runs."""
    marker = TREE / ".complete"
    source = Path(sysconfig.get_paths()["stdlib"])
    if marker.exists() and marker.read_text() == str(source):
        return TREE
    if TREE.exists():
        shutil.rmtree(TREE)
    shutil.copytree(
        source,
        TREE,
        ignore=shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc", "dist-packages"),
    )
    marker.write_text(str(source))
    return TREE


def read_sources(files: list[str]) -> tuple[list[tuple[str, str]], int]:
    """Texts ``ast.parse`` can take (the same decoding the runner uses), and their lines."""
    import tokenize

    out: list[tuple[str, str]] = []
    lines = 0
    for path in files:
        try:
            with tokenize.open(path) as fh:
                text = fh.read()
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        out.append((path, text))
        lines += text.count("\n")
    return out, lines


def parse_all(files: list[str], fewer_collections: bool = False) -> float:
    """CPU seconds to read and ``ast.parse`` every file: the floor for an AST checker.

    ``fewer_collections``: with the garbage collector set as proctor's runner sets it for
    a batch (``_FewerCollections``), so the comparison is like for like: the runner's own
    gain from that setting is not counted as the checks being cheap.
    """
    from proctor.checks.runner import _FewerCollections

    start = time.process_time()
    with _FewerCollections() if fewer_collections else contextlib.nullcontext():
        for path in files:
            with open(path, "rb") as fh:
                data = fh.read()
            try:
                ast.parse(data, filename=path)
            except (SyntaxError, ValueError):
                pass
    return time.process_time() - start


def run_proctor(
    roots: list[Path],
    settings: CheckSettings,
    select: list[str],
    jobs: int,
    validators: dict | None = None,
) -> tuple[float, float, list]:
    wall = time.perf_counter()
    cpu = time.process_time()
    findings = check_paths(
        [str(r) for r in roots], settings=settings, select=select, jobs=jobs, validators=validators
    )
    return time.process_time() - cpu, time.perf_counter() - wall, findings


def run_bandit(roots: list[Path]) -> float | None:
    bandit = shutil.which("bandit", path=str(Path(sys.executable).parent)) or shutil.which("bandit")
    if bandit is None:
        return None
    start = time.perf_counter()
    subprocess.run(
        [bandit, "-r", "-q", "-f", "json", "-o", os.devnull, *(str(r) for r in roots)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Repetitions; medians are reported.")
    parser.add_argument("--checks", default="safety", help="What to --select (default: safety).")
    parser.add_argument("--no-bandit", action="store_true")
    parser.add_argument("--no-salt", action="store_true", help="CPython's Lib/ only.")
    args = parser.parse_args(argv)

    tree = copy_stdlib()
    roots = [tree] if args.no_salt else [tree, ensure_project("salt", PINNED["salt"])]
    # Settings rooted at the copies: the repository's own config excludes bench/_work.
    settings = CheckSettings(root=str(WORK))
    files = collect_files([str(r) for r in roots], settings)
    sources, lines = read_sources(files)
    select = [part for part in args.checks.split(",") if part]

    parse_cpu, serial_cpu, serial_wall, parallel_wall, bandit_wall = [], [], [], [], []
    same_gc_cpu: list[float] = []
    runner_cpu: list[float] = []
    findings: list = []
    for _ in range(args.repeat):
        parse_cpu.append(parse_all(files))
        same_gc_cpu.append(parse_all(files, fewer_collections=True))
        # The runner alone (read, decode, parse, suppressions) with no validator at all.
        runner_cpu.append(run_proctor(roots, settings, [], jobs=1, validators={})[0])
        cpu, wall, findings = run_proctor(roots, settings, select, jobs=1)
        serial_cpu.append(cpu)
        serial_wall.append(wall)
        _, wall2, parallel = run_proctor(roots, settings, select, jobs=2)
        parallel_wall.append(wall2)
        if parallel != findings:
            print("error: -j 2 findings differ from -j 1", file=sys.stderr)
            return 1
        if not args.no_bandit:
            result = run_bandit(roots)
            if result is not None:
                bandit_wall.append(result)

    med = statistics.median
    per_rule = collections.Counter(f.code for f in findings)
    print("```")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; tree: "
        + " + ".join(str(r.relative_to(HERE.parent)) for r in roots)
        + " (CPython Lib/ with tests, without site-packages"
        + ("" if args.no_salt else f"; salt {PINNED['salt']} sdist")
        + ")"
    )
    print(
        f"files: {len(files)} ({len(sources)} decodable), lines: {lines}, "
        f"repetitions: {args.repeat} (medians)"
    )
    print("```")
    print()
    print("| measurement | time (s) | ratio to ast.parse |")
    print("|---|---:|---:|")
    base = med(parse_cpu)
    print(f"| ast.parse only (CPU, in process) | {base:.2f} | 1.00× |")
    fair = med(same_gc_cpu)
    print(
        f"| ast.parse only, garbage collector as the runner sets it (CPU) | {fair:.2f} | "
        f"{fair / base:.2f}× |"
    )
    print(
        f"| proctor runner, no validator (CPU, in process) | {med(runner_cpu):.2f} | "
        f"{med(runner_cpu) / base:.2f}× |"
    )
    print(
        f"| proctor check --select {args.checks} (CPU, in process, -j 1) | "
        f"{med(serial_cpu):.2f} | {med(serial_cpu) / base:.2f}× |"
    )
    print(
        f"| proctor check --select {args.checks} (wall, -j 1) | {med(serial_wall):.2f} | "
        f"{med(serial_wall) / base:.2f}× |"
    )
    print(
        f"| proctor check --select {args.checks} (wall, -j 2) | {med(parallel_wall):.2f} | "
        f"{med(parallel_wall) / base:.2f}× |"
    )
    if bandit_wall:
        print(
            f"| bandit -r (wall, subprocess) | {med(bandit_wall):.2f} | "
            f"{med(bandit_wall) / base:.2f}× |"
        )
    print()
    print(
        f"- proctor / ast.parse with the same garbage-collector setting (CPU, -j 1): "
        f"**{med(serial_cpu) / fair:.2f}×** (target ≤ 1.3×); against the default setting "
        f"{med(serial_cpu) / base:.2f}×"
    )
    if bandit_wall:
        print(
            f"- proctor (wall, -j 1) / bandit: **{med(serial_wall) / med(bandit_wall):.2f}×**; "
            f"proctor -j 2 / bandit: **{med(parallel_wall) / med(bandit_wall):.2f}×**"
        )
    elif not args.no_bandit:
        print("- bandit not found: install it with `pip install -e '.[bench]'`")
    print(
        f"- findings: {len(findings)} in {len({f.path for f in findings})} files; per rule: "
        + ", ".join(f"{code} {count}" for code, count in sorted(per_rule.items()))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
