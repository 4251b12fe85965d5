"""Sync between machines: the store branch and its releases exchanged with any git
remote, by git itself (fetch, push), with proctor's rules on top.

* ``remote``: the private ref namespace fetches land in, and the fetch and push.
* ``replay``: local proctor commits re-applied on the remote's tip as the same action,
  through the engine (criteria, checks and policy of the new base), file by file under
  the store's rule for a lost race; proposal files settled by their version.
* ``tags``: release tags create-only across machines; a provisional local release that
  lost its version to the remote is renumbered, adopted or withdrawn.
* ``service``: the bounded loop (fetch, replay, settle, move the branch with the work
  tree, push) and ``sync_status``, the distance to the remote as last fetched.
* ``model``: the typed results, and ``SyncEvent`` (``sync.<status>``) for
  ``proctor_on_event``.

Layer 4: builds on ``core``, ``store``, ``engine`` and ``procedures``; knows nothing of
``proposals`` (a proposal is a JSON file with a ``version`` to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proctor.sync.model import (
    Conflict,
    Replayed,
    SyncEvent,
    SyncResult,
    SyncStatus,
    TagOutcome,
)

if TYPE_CHECKING:
    from proctor.core.config import ProctorConfig

__all__ = [
    "Conflict",
    "Replayed",
    "SyncEvent",
    "SyncResult",
    "SyncStatus",
    "TagOutcome",
    "sync_settings",
]

DEFAULT_REMOTE = "origin"


def sync_settings(config: ProctorConfig) -> tuple[str, int]:
    """``[sync]``: ``remote`` (default ``origin``) and ``attempts`` (rounds before giving
    up when the remote keeps moving; default 6). ConfigError for anything else."""
    from proctor.core.errors import ConfigError
    from proctor.sync.service import DEFAULT_ATTEMPTS

    table = config.table("sync")
    table.check_keys({"remote", "attempts"})
    remote = table.values.get("remote", DEFAULT_REMOTE)
    attempts = table.values.get("attempts", DEFAULT_ATTEMPTS)
    if not isinstance(remote, str) or not remote:
        raise ConfigError(f"{table.where('remote')}: expected a remote's name, got {remote!r}")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise ConfigError(f"{table.where('attempts')}: expected 1..100, got {attempts!r}")
    return remote, attempts
