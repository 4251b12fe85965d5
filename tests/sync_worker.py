"""A writer process for the sync stress test: proctor creates, updates and releases in one
clone for a number of rounds, and (with --sync) a sync after each round. Every outcome is
appended to a JSON-lines log, so the test can check that nothing applied was lost."""

from __future__ import annotations

import argparse
import json
import random
import time

from proctor import Workspace
from proctor.core.errors import ProctorError


def code(n: int, extra: bool) -> str:
    params = "name: str, times: int = 1" if extra else "name: str"
    return f"def run({params}) -> str:\n    return 'v{n} ' + name\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("repo")
    parser.add_argument("prefix")
    parser.add_argument("log")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    mine: list[str] = []
    n = 0
    with open(args.log, "a", encoding="utf-8") as log:

        def record(**data: object) -> None:
            log.write(json.dumps({"worker": args.prefix, **data}) + "\n")
            log.flush()

        while n < args.rounds and time.monotonic() < deadline:
            n += 1
            with Workspace.open(args.repo, actor=f"{args.prefix}@example.com") as ws:
                roll = rng.random()
                try:
                    if n == 1 and args.sync:
                        # Every syncing worker releases the shared procedure at once: the
                        # same code released as the same version in three clones.
                        result = ws.execute("procedure.release", {"name": "common"})
                    elif not mine or roll < 0.3:
                        name = f"{args.prefix}_{n}"
                        result = ws.execute(
                            "procedure.create", {"name": name, "code": code(n, False)}
                        )
                        mine.append(name)
                    elif roll < 0.6:
                        name = rng.choice(mine)
                        result = ws.execute(
                            "procedure.update", {"name": name, "code": code(n, rng.random() < 0.5)}
                        )
                    elif roll < 0.85:
                        result = ws.execute("procedure.release", {"name": rng.choice(mine)})
                    else:
                        result = ws.execute("procedure.release", {"name": "common"})
                    if result.status == "applied":
                        record(
                            kind="action",
                            action=result.action,
                            corr=result.correlation_id,
                            commit=result.commit,
                            tags=result.tags,
                        )
                except ProctorError as exc:
                    record(kind="refused", error=exc.message, code=exc.exit_code)
                if args.sync:
                    synced = ws.sync()
                    record(
                        kind="sync",
                        code=synced.exit_code,
                        retries=synced.retries,
                        tags=[[t.name, t.status, t.final] for t in synced.tags],
                        conflicts=[[c.kind, c.message] for c in synced.conflicts],
                    )


if __name__ == "__main__":
    main()
