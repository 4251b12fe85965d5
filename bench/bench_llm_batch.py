"""Benchmark: ``proctor generate --all`` over metadata-only procedures answered by
replay cassettes, at concurrency 1 and N, in the same run.

What it measures is proctor's own cost per item with the model taken out (a replay
answer costs microseconds): the skeleton and prompt, parsing, the checks, the sandboxed
examples (every ``--examples-every``-th procedure has one) and the commit. Each setting
runs on a fresh store; the median of ``--repeat`` runs is kept and printed with the
ratio to concurrency 1.

Run: ``.venv/bin/python bench/bench_llm_batch.py [--items 60] [--concurrency 4]``.
Prints markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proctor import Workspace
from proctor.llm.backends import Reply, Request, Usage
from proctor.llm.cassettes import RecordBackend
from proctor.llm.fake import FakeBackend
from proctor.llm.generate import GenerationSettings, build_messages
from proctor.procedures.spec import ProcedureSpec

MODEL = "bench-replay"


def items(count: int, every: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        item: dict[str, Any] = {
            "name": f"p{i:04d}",
            "description": f"Add {i}.",
            "parameters": [{"name": "x", "type": "int"}],
            "returns": "int",
        }
        if every and i % every == 0:
            item["examples"] = [{"params": {"x": 1}, "expected": 1 + i}]
        out.append(item)
    return out


def record(directory: Path, metas: list[dict[str, Any]]) -> None:
    recorder = RecordBackend(FakeBackend(), directory)
    for meta in metas:
        spec = ProcedureSpec.model_validate(meta)
        i = int(spec.name[1:])
        code = f"def run(x: int) -> int:\n    return x + {i}\n"
        text = json.dumps({"code": code, "confidence": 0.95, "explanation": ""})
        request = Request.build(MODEL, build_messages(spec), {})
        recorder.write(request, Reply(text, "stop", Usage(1, 1, 2), request_id=spec.name))


def one_run(metas: list[dict[str, Any]], cassettes: Path, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        ws, _ = Workspace.init(repo, actor="bench@proctor")
        with ws:
            ws.import_procedures(metas)
        settings = GenerationSettings("replay", MODEL, options={"cassettes": str(cassettes)})
        with Workspace.open(repo, actor="bench@proctor") as ws:
            started = time.perf_counter()
            report = ws.generate_all(settings, concurrency=concurrency)
            seconds = time.perf_counter() - started
        assert report.applied == len(metas), report.to_json()
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--examples-every", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for key, value in {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@proctor.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@proctor.invalid",
    }.items():
        os.environ.setdefault(key, value)
    metas = items(args.items, args.examples_every)
    with tempfile.TemporaryDirectory() as tmp:
        cassettes = Path(tmp) / "cassettes"
        record(cassettes, metas)
        results: dict[int, float] = {}
        for concurrency in (1, args.concurrency):
            runs = [one_run(metas, cassettes, concurrency) for _ in range(args.repeat)]
            results[concurrency] = statistics.median(runs)
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"{args.items} procedures, one example every {args.examples_every}; "
        f"median of {args.repeat}; Python {platform.python_version()}, {git}, "
        f"{os.cpu_count()} CPUs"
    )
    print()
    print("| concurrency | seconds | per item | ratio to 1 |")
    print("|---|---|---|---|")
    base = results[1]
    for concurrency, seconds in results.items():
        print(
            f"| {concurrency} | {seconds:.2f} | {seconds / args.items * 1000:.0f} ms | "
            f"{seconds / base:.2f} |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
