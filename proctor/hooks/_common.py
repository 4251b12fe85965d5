"""What the three pre-commit entry points share: argument parsing and one call into the
check runner.

Hooks print only ``path:line:col: CODE message`` lines on stdout (what pre-commit shows
the user) and exit 0 when clean, 1 on findings, 2 on bad usage or config. They import the
runner and the plugin manager only, so a hook on one file starts in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from proctor.core.validation import Mode


def run_hook(argv: Sequence[str] | None, *, prog: str, description: str,
             checks: Sequence[str], mode: Mode) -> int:
    """Parse ``filenames`` and check them with ``checks`` only.

    The config's ``check.select`` still narrows which of those checks' rules run, and its
    ``ignore``, ``exclude`` and per-file ignores apply as they do for ``proctor check``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("filenames", nargs="*", help="Files to check (pre-commit passes them).")
    args = parser.parse_args(argv)
    if not args.filenames:
        return 0
    from proctor.core.checking import run_cli

    return run_cli(args.filenames, select=None, mode=mode, fmt="text", jobs=1,
                   out=sys.stdout, only=checks, summary=False)
