"""Proposal round trip: what review costs against a direct write, in the same run.

Run from the repository root::

    .venv/bin/python bench/bench_proposal.py           # prints the markdown block
    .venv/bin/python bench/bench_proposal.py --write   # also replaces "## Proposal round trip"
                                                       # in docs/benchmarks.md

One store, one open Workspace per actor (as a long-lived service would hold them), the
same change (a procedure's description) made two ways, interleaved so load on a shared
machine hits both alike:

* direct: ``procedure.update`` under a policy that allows it (one commit);
* round trip: ``procedure.update`` under REQUIRE_PROPOSAL (one commit adding the
  proposal, the validators run on the change), then ``proposal.approve`` by another actor,
  which re-runs criteria, policy and validators on the tip and commits the change with the
  proposal's new status (two commits in all).

The ratio is the number to read: a round trip does two pipeline runs and builds the
change three times (propose, approve's settle, and the publish build), so about 2-3x a
direct write is what the design costs. Everything lives under bench/_work/ (gitignored).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work" / "proposal"
SECTION = "## Proposal round trip"
CODE = 'def run(name: str) -> str:\n    return "hello " + name\n'


def store(path: Path, config: str) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "proctor.toml").write_text(config)
    subprocess.run(["git", "-C", str(path), "add", "proctor.toml"], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "config"], check=True)
    return path


def measure(rounds: int) -> dict[str, float]:
    from proctor import Workspace

    shutil.rmtree(WORK, ignore_errors=True)
    direct_repo = store(WORK / "direct", "")
    gated_repo = store(WORK / "gated", '[policy]\n"procedure.update" = "REQUIRE_PROPOSAL"\n')
    direct_ws = Workspace.open(direct_repo, actor="ana@example.com")
    gated_ws = Workspace.open(gated_repo, actor="ana@example.com")
    reviewer = Workspace.open(gated_repo, actor="bob@example.com")
    for ws in (direct_ws, gated_ws):
        ws.execute("procedure.create", {"name": "greet", "code": CODE, "description": "x"})
    direct: list[float] = []
    trip: list[float] = []
    propose: list[float] = []
    try:
        for i in range(rounds + 2):  # the first two warm caches and imports
            text = f"Greets, take {i}"
            t0 = time.perf_counter()
            r = direct_ws.execute("procedure.update", {"name": "greet", "description": text})
            t1 = time.perf_counter()
            assert r.status == "applied", r
            p = gated_ws.execute("procedure.update", {"name": "greet", "description": text})
            t2 = time.perf_counter()
            outcome = reviewer.approve(p.proposal or "")
            t3 = time.perf_counter()
            assert outcome.status == "applied", outcome.proposal
            if i >= 2:
                direct.append(t1 - t0)
                propose.append(t2 - t1)
                trip.append(t3 - t1)
    finally:
        for ws in (direct_ws, gated_ws, reviewer):
            ws.close()
    return {
        "rounds": rounds,
        "direct": statistics.median(direct),
        "propose": statistics.median(propose),
        "trip": statistics.median(trip),
    }


def render(m: dict[str, float]) -> str:
    ratio = m["trip"] / m["direct"]
    return "\n".join(
        [
            SECTION,
            "",
            "`.venv/bin/python bench/bench_proposal.py --write` (median of "
            f"{int(m['rounds'])} interleaved rounds, one process, Workspaces held open):",
            "",
            "| path | median | vs direct write |",
            "|---|---|---|",
            f"| direct write (`procedure.update`, allowed) | {m['direct'] * 1000:.1f} ms | 1.00x |",
            f"| propose (`procedure.update` under REQUIRE_PROPOSAL) | {m['propose'] * 1000:.1f} ms "
            f"| {m['propose'] / m['direct']:.2f}x |",
            f"| round trip (propose + approve, applied) | {m['trip'] * 1000:.1f} ms "
            f"| **{ratio:.2f}x** |",
            "",
            "A round trip is two pipeline runs and two commits, and builds the change three "
            "times (the proposal's hash, the approval's re-check on the tip, the publish): "
            "the price of binding approvals to content and re-checking on the tip.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    block = render(measure(args.rounds))
    print(block)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
        text = (
            pattern.sub(block + "\n", text)
            if pattern.search(text)
            else text.rstrip() + "\n\n" + block
        )
        doc.write_text(text)
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
