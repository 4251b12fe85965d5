"""Where a pipeline write spends what ``GitStore.write`` alone does not, phase by phase.

    python bench/bench_pipeline_phases.py [--n 200]

The throughput benchmark (``bench_store.py``) compares ``Workspace.execute`` and a bare
``GitStore.write`` of the same two files against GitPython. This one times, on the same
repository shape and the two writers taking turns, each phase of the action pipeline
with ``time.perf_counter`` around it (no profiler, whose cost falls on Python code and
not on the file system), so the gap between the two writers can be read off by phase.
"""

from __future__ import annotations

import argparse
import collections
import functools
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_store  # the repository shape and the writers of the throughput bench

WORK = Path(__file__).parent / "_work" / "phases"

# (owner, attribute, label): what is timed. The engine's phases, then the parts of an
# update's apply() and of the events, each inside one of the phases above it.
PHASES: list[tuple[str, str, str]] = [
    ("proctor.engine.pipeline:ActionEngine", "plan", "plan (params, criteria)"),
    ("proctor.engine.pipeline:ActionEngine", "decide", "decide (policy)"),
    ("proctor.engine.pipeline:ActionEngine", "before_commit", "before-commit hooks"),
    ("proctor.engine.pipeline:ActionEngine", "apply", "apply + checks (inside the write)"),
    ("proctor.engine.pipeline:ActionEngine", "check_code", "  of which: code checks"),
    ("proctor.procedures.actions", "_signature", "  of which: parse + signature of run()"),
    ("proctor.procedures.actions", "parse_spec", "  of which: metadata.json parsed"),
    ("proctor.engine.pipeline:ActionEngine", "emit", "emit (side effects, event)"),
    ("proctor.plugins.metrics", "record", "  of which: metrics appended"),
]


def _owner(spec: str) -> Any:
    import importlib

    module, _, cls = spec.partition(":")
    owner: Any = importlib.import_module(module)
    return getattr(owner, cls) if cls else owner


def instrument(acc: collections.Counter[str]) -> None:
    for spec, name, label in PHASES:
        owner = _owner(spec)
        original = getattr(owner, name)

        def timed(*args: Any, _original: Any = original, _label: str = label, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                acc[_label] += time.perf_counter() - start

        setattr(owner, name, functools.wraps(original)(timed))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="writes per writer")
    opts = ap.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    acc: collections.Counter[str] = collections.Counter()
    instrument(acc)
    pipeline_repo, store_repo = WORK / "pipeline", WORK / "store"
    ref = bench_store.build_repo(pipeline_repo, 100, checked_out=True)
    bench_store.build_repo(store_repo, 100, checked_out=True)
    update, close, names = bench_store.proctor_updater(pipeline_repo)
    write, close_store = bench_store.store_writer(store_repo, ref, names)
    update(999_999)
    write(999_999)
    acc.clear()
    spent = {"pipeline": 0.0, "store": 0.0}
    try:
        for i in range(opts.n):
            start = time.perf_counter()
            update(i)
            spent["pipeline"] += time.perf_counter() - start
            start = time.perf_counter()
            write(i)
            spent["store"] += time.perf_counter() - start
    finally:
        close()
        close_store()
    per = {k: v / opts.n * 1000 for k, v in spent.items()}
    print(f"{opts.n} updates each, taking turns, 100 procedures, branch checked out")
    print(f'Workspace.execute("procedure.update"): {per["pipeline"]:.2f} ms a write')
    print(f"GitStore.write of the same two files:  {per['store']:.2f} ms a write")
    print(f"ratio: {per['pipeline'] / per['store']:.2f}")
    print("phases of the pipeline write (ms a write):")
    for _spec, _name, label in PHASES:
        print(f"  {label:40s} {acc[label] / opts.n * 1000:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
