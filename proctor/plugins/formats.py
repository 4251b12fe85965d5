"""Built-in plugin: the ``text``, ``json`` and ``sarif`` output formats of ``proctor check``.

Registered through ``proctor_register_formats`` exactly as a third party's format is, so
disabling it (``PROCTOR_DISABLE_PLUGINS=formats``) leaves ``--format`` with whatever other
plugins register. The pre-commit hooks print text without loading this plugin.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_register_formats(register: Any) -> None:
    from proctor.checks.formats import JSON, SARIF, TEXT

    for fmt in (TEXT, JSON, SARIF):
        register(fmt)
