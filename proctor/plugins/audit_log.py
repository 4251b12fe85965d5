"""Built-in plugin: side effects that run after an action's commit is published.

``log`` writes one line per applied action to the ``proctor.audit`` logger, so a
long-running service embedding proctor gets an audit stream without reading git log.
"""

from __future__ import annotations

import logging
from typing import Any

from proctor.core.hookspecs import hookimpl

audit = logging.getLogger("proctor.audit")


class LogSideEffect:
    name = "log"

    def run(self, result: Any, context: Any) -> None:
        audit.info(
            "%s %s by %s commit=%s tags=%s correlation=%s",
            result.action,
            result.status,
            context.actor,
            result.commit,
            ",".join(result.tags) or "-",
            result.correlation_id,
        )


@hookimpl
def proctor_register_side_effects(register: Any) -> None:
    register(LogSideEffect())
