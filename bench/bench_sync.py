"""Benchmark: ``Workspace.sync`` against the git commands it stands on, over a real
``git daemon`` on 127.0.0.1.

Two clones of one bare store; each repetition, in turns on the same machine and run:

* ``git fetch`` + ``git push`` of one new commit by hand (the floor: what any sync pays
  to the network and to git);
* ``sync`` that pushes one new local commit (the remote did not move);
* ``sync`` that replays one local commit onto a remote that moved (fetch, replay through
  the engine, the work-tree sync, push);
* ``sync`` with nothing to do.

Run: ``.venv/bin/python bench/bench_sync.py [--repeat N]``. Prints a markdown block for
docs/benchmarks.md (medians, and ratios to the by-hand floor).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proctor import Workspace

CODE = "def run(n: int) -> int:\n    return n + {}\n"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        os.environ.setdefault(key, "bench")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        os.environ.setdefault(key, "bench@example.com")
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    git(root, "init", "-q", "--bare", "-b", "main", "store.git")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", f"--port={port}", "--listen=127.0.0.1",
         f"--base-path={root}", "--export-all", "--enable=receive-pack", str(root)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        url = f"git://127.0.0.1:{port}/store.git"
        a, b = root / "a", root / "b"
        git(root, "clone", "-q", url, str(a))
        ws, _ = Workspace.init(a)
        ws.execute("procedure.create", {"name": "p", "code": CODE.format(0)})
        ws.execute("procedure.create", {"name": "q", "code": CODE.format(0)})
        ws.sync()
        git(root, "clone", "-q", url, str(b))
        wb = Workspace.open(b)
        times: dict[str, list[float]] = {"by hand": [], "push": [], "replay": [], "noop": []}
        for i in range(1, args.repeat + 1):
            (a / "notes.txt").write_text(f"{i}\n")
            git(a, "add", "notes.txt")
            git(a, "commit", "-qm", f"note {i}")
            t = time.perf_counter()
            git(a, "fetch", "-q", "origin")
            git(a, "push", "-q", "origin", "main")
            times["by hand"].append(time.perf_counter() - t)
            ws.sync()  # a takes its own push into its private namespace
            ws.execute("procedure.update", {"name": "p", "code": CODE.format(i)})
            t = time.perf_counter()
            ws.sync()
            times["push"].append(time.perf_counter() - t)
            wb.execute("procedure.update", {"name": "q", "code": CODE.format(i)})
            t = time.perf_counter()
            result = wb.sync()
            times["replay"].append(time.perf_counter() - t)
            assert len(result.replayed) == 1 and result.pushed, result.to_json()
            t = time.perf_counter()
            wb.sync()
            times["noop"].append(time.perf_counter() - t)
            ws.sync()
        wb.close()
        ws.close()
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait()
    floor = statistics.median(times["by hand"])
    print(f"`python bench/bench_sync.py --repeat {args.repeat}` (medians of {args.repeat})\n")
    print("| what | median | × fetch + push by hand |")
    print("|---|---|---|")
    for name, label in (
        ("by hand", "`git fetch` + `git push` of one commit, by hand"),
        ("push", "sync: push one local commit"),
        ("replay", "sync: replay one local commit onto a moved remote, push"),
        ("noop", "sync: nothing to do (one fetch)"),
    ):
        m = statistics.median(times[name])
        print(f"| {label} | {m * 1000:.0f} ms | {m / floor:.2f} |")


if __name__ == "__main__":
    main()
