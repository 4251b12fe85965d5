"""The escape corpus as a table: every escape against every profile this machine offers.

Runs exactly what ``tests/test_sandbox_corpus.py`` runs (the corpus lives in
``tests/sandbox_corpus.py``) and prints one markdown table for docs/runs.md. A cell says
what stopped the escape: ``blocked`` with the error the procedure got, ``killed`` or
``timeout`` with the reason, or **OPEN** with what got through. A cell the level does not
claim is ``·`` and is not run (some would hurt the host); an unavailable profile is
``n/a`` with the reason under the table.

Run: ``.venv/bin/python bench/sandbox_corpus_table.py`` (as root, and as an ordinary
user: limits and namespaces differ). Exits 1 if any claimed cell is open.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sandbox_corpus import ESCAPES, PROFILES, host, profile_missing, run_escape

from proctor.runs.sandbox import probe


def cell(blocked: bool, status: str, detail: str) -> str:
    if not blocked:
        return f"**OPEN**: {detail}"
    if status == "ok":
        return f"blocked ({detail})"
    short = detail.split(":")[0] if status != "error" else detail
    return f"{status} ({short})"


def main() -> int:
    started = time.perf_counter()
    missing = {name: profile_missing(name) for name in PROFILES}
    rows: list[str] = []
    failures = 0
    with host() as h:
        for escape in ESCAPES:
            cells = []
            for name in PROFILES:
                if missing[name]:
                    cells.append("n/a")
                elif not escape.claims(name):
                    cells.append("·")
                else:
                    verdict = run_escape(escape, name, h)
                    failures += not verdict.blocked
                    cells.append(cell(verdict.blocked, verdict.status, verdict.detail))
            rows.append(f"| {escape.title} | " + " | ".join(cells) + " |")
    found = probe()
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()} (not root)"
    print("```")
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(
        f"{who}; Linux {platform.release()}; Landlock ABI {found.landlock_abi}; "
        f"cgroups: {found.cgroups}; {time.perf_counter() - started:.0f} s"
    )
    print("```")
    print()
    print("| escape | " + " | ".join(PROFILES) + " |")
    print("|---|" + "---|" * len(PROFILES))
    print("\n".join(rows))
    for name, why in missing.items():
        if why:
            print(f"\n{name}: n/a, {why}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
