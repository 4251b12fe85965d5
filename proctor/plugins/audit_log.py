"""Built-in plugin: one ``proctor.audit`` log line per outcome, for every action.

A long-running service embedding proctor gets an audit stream without reading git log:
applied, proposed, denied and failed actions alike, whichever plugin registered them.
It observes through ``proctor_on_event``, so no action has to ask for it.
"""

from __future__ import annotations

import logging
from typing import Any

from proctor.core.hookspecs import hookimpl

audit = logging.getLogger("proctor.audit")


@hookimpl
def proctor_on_event(event: Any) -> None:
    if not event.kind.startswith("action."):
        return
    audit.info(
        "%s %s by %s commit=%s tags=%s correlation=%s errors=%s",
        event.action,
        event.status,
        event.actor,
        event.commit,
        ",".join(event.tags) or "-",
        event.correlation_id,
        " | ".join(event.errors) or "-",
    )
