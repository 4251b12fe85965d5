"""pre-commit hook ``proctor-log-lint``: disallowed wording in logging messages (PL rules)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from proctor.precommit._common import run_hook


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``proctor-hook-log-lint``; the phrases come from ``[log-lint]``."""
    return run_hook(
        argv,
        prog="proctor-hook-log-lint",
        description="Flag configured phrases (retry language by default) in log messages.",
        checks=("log-lint",),
        mode="generic",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
