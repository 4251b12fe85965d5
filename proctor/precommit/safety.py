"""pre-commit hook ``proctor-safety``: the safety check (PS rules) on the staged files."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from proctor.precommit._common import run_hook


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``proctor-hook-safety``; generic mode, so ``# noqa: PS...`` works."""
    return run_hook(
        argv,
        prog="proctor-hook-safety",
        description="Flag dangerous Python: exec/eval, shells, dynamic imports.",
        checks=("safety",),
        mode="generic",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
