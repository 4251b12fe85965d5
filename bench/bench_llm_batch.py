"""Benchmark: ``proctor generate --all`` over metadata-only procedures answered by
replay cassettes, at concurrency 1 and N, in the same run.

What it measures is proctor's own cost per item with the model taken out (a replay
answer costs microseconds): the skeleton and prompt, parsing, the checks, the sandboxed
examples (every ``--examples-every``-th procedure has one) and the commit. With
``--latency S`` the model is an OpenAI-compatible server on 127.0.0.1 (the ``openai-http``
backend, real HTTP) that answers each request after S seconds, as a model does: what
concurrency is for. Each setting runs on a fresh store; the median of ``--repeat`` runs
is kept and printed with the ratio to concurrency 1.

Run: ``.venv/bin/python bench/bench_llm_batch.py [--items 60] [--concurrency 4]
[--latency 0.25]``. Prints markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def answer(i: int) -> str:
    code = f"def run(x: int) -> int:\n    return x + {i}\n"
    return json.dumps({"code": code, "confidence": 0.95, "explanation": ""})


def record(directory: Path, metas: list[dict[str, Any]]) -> None:
    recorder = RecordBackend(FakeBackend(), directory)
    for meta in metas:
        spec = ProcedureSpec.model_validate(meta)
        request = Request.build(MODEL, build_messages(spec), {})
        text = answer(int(spec.name[1:]))
        recorder.write(request, Reply(text, "stop", Usage(1, 1, 2), request_id=spec.name))


@contextmanager
def slow_model(latency: float) -> Iterator[str]:
    """An OpenAI-compatible server on 127.0.0.1 that answers after ``latency`` seconds,
    with the code for the procedure the prompt names; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            i = int(re.search(r'"name": "p(\d+)"', prompt)[1])  # type: ignore[index]
            time.sleep(latency)
            reply = {
                "id": f"bench-{i}",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer(i)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def one_run(metas: list[dict[str, Any]], settings: GenerationSettings, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        ws, _ = Workspace.init(repo, actor="bench@proctor")
        with ws:
            ws.import_procedures(metas)
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
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds the model takes (0: replay)"
    )
    args = parser.parse_args()
    for key, value in {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@proctor.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@proctor.invalid",
    }.items():
        os.environ.setdefault(key, value)
    metas = items(args.items, args.examples_every)
    results: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp, slow_model(args.latency) as url:
        if args.latency > 0:
            settings = GenerationSettings("openai-http", MODEL, options={"base_url": url})
        else:
            cassettes = Path(tmp) / "cassettes"
            record(cassettes, metas)
            settings = GenerationSettings("replay", MODEL, options={"cassettes": str(cassettes)})
        for concurrency in (1, args.concurrency):
            runs = [one_run(metas, settings, concurrency) for _ in range(args.repeat)]
            results[concurrency] = statistics.median(runs)
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"{args.items} procedures, one example every {args.examples_every}; "
        + (
            f"the model: a server on 127.0.0.1 answering after {args.latency:g} s; "
            if args.latency > 0
            else "the model: replay cassettes; "
        )
        + f"median of {args.repeat}; Python {platform.python_version()}, {git}, "
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
