"""pre-commit hook ``proctor-procedures``: procedure code under ``procedures/`` checked as
the action pipeline checks it.

Procedure mode applies the import allowlist and the capabilities declared in each
procedure's ``metadata.json`` (read by :mod:`proctor.procedures.capabilities`, the
parser the pipeline uses too), and reads no suppressions: code that may come from an LLM
does not get to silence its own findings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from proctor.precommit._common import run_hook
from proctor.procedures.capabilities import capabilities_for


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``proctor-hook-procedures``: syntax, safety and log lint."""
    return run_hook(
        argv,
        prog="proctor-hook-procedures",
        description="Check procedure code: syntax, safety and log lint, no suppressions.",
        checks=("safety", "log-lint"),
        mode="procedure",
        capabilities_for=capabilities_for,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
