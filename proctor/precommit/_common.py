"""What the three pre-commit entry points share: argument handling and one call into the
check runner.

Hooks print only ``path:line:col: CODE [severity] message`` lines on stdout (what
pre-commit shows the user) and exit 0 when clean, 1 on any finding (``[check] fail-on =
"error"`` in the config lets warnings pass), 2 on bad usage or config.

pre-commit starts a new process for every batch of files, so start-up is most of what a
user waits for. The hooks therefore load only the built-in plugins of the checks they
run (scanning every installed distribution for third-party entry points costs more than
checking a file), and parse their few arguments by hand instead of importing argparse.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from proctor.checks.validation import Mode, Validator

if TYPE_CHECKING:
    from proctor.checks.runner import CapabilitiesFor


def builtin_validators(checks: Sequence[str]) -> dict[str, Validator]:
    """The validators of the built-in plugins named like ``checks``.

    Only those plugin modules are imported (the policy and event plugins have nothing
    to do in a hook), through a private plugin manager so the process-wide one stays as
    it is, and by the same loader as everywhere else: ``PROCTOR_DISABLE_PLUGINS`` and
    ``PROCTOR_STRICT_PLUGINS`` apply, and a plugin that fails is reported on stderr (its
    check is then not available, which the runner reports as bad usage).
    """
    from proctor.core.plugins import PluginManager, disabled_plugins
    from proctor.plugins import BUILTIN_PLUGINS

    manager = PluginManager()
    table = {name: BUILTIN_PLUGINS[name] for name in checks if name in BUILTIN_PLUGINS}
    manager.load_builtins(disabled_plugins(), table)
    manager.check_pending()
    validators: dict[str, Validator] = manager.validators()
    for info in manager.infos.values():
        if info.error:
            print(f"proctor: plugin {info.name!r} failed: {info.error}", file=sys.stderr)
    return validators


def parse_filenames(argv: Sequence[str], prog: str, description: str) -> list[str] | int:
    """File names from the command line, or an exit status after ``--help`` or an unknown
    option. ``--`` ends options, so a file named ``-x.py`` can still be passed."""
    files: list[str] = []
    options = True
    for arg in argv:
        if options and arg == "--":
            options = False
        elif options and arg in ("-h", "--help"):
            print(
                f"usage: {prog} [-h] [filenames ...]\n\n{description}\n\n"
                "positional arguments:\n"
                "  filenames   Files to check (pre-commit passes them).\n\n"
                "Exit status: 0 clean, 1 findings (any severity, unless [check] fail-on\n"
                "says otherwise), 2 bad usage or configuration."
            )
            return 0
        elif options and arg.startswith("-") and arg != "-":
            print(
                f"usage: {prog} [-h] [filenames ...]\n{prog}: error: unrecognized argument: {arg}",
                file=sys.stderr,
            )
            return 2
        else:
            files.append(arg)
    return files


def run_hook(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    checks: Sequence[str],
    mode: Mode,
    capabilities_for: CapabilitiesFor | None = None,
) -> int:
    """Check the given files with ``checks`` only, printing the text format.

    The config's ``check.select`` still narrows which of those checks' rules run (names
    of checks the hook does not load are accepted there), and its ``ignore``, ``exclude``
    and per-file ignores apply as they do for ``proctor check``. The text format is used
    directly, not looked up through the format plugins: a hook loads only the plugins of
    its own checks. ``capabilities_for`` is handed to the runner for procedure mode.
    """
    parsed = parse_filenames(sys.argv[1:] if argv is None else argv, prog, description)
    if isinstance(parsed, int):
        return parsed
    if not parsed:
        return 0
    from proctor.checks.formats import TEXT
    from proctor.checks.runner import run_cli

    return run_cli(
        parsed,
        select=None,
        mode=mode,
        fmt=TEXT,
        jobs=1,
        out=sys.stdout,
        only=checks,
        summary=False,
        validators=builtin_validators(checks),
        strict_config=False,
        capabilities_for=capabilities_for,
    )
