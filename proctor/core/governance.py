"""Governance decisions: every ``proctor_policy`` answer is combined, the strictest wins.

A plugin that abstains returns None. With no answer at all an action is allowed
immediately, so a fresh store works without configuration; teams tighten it with
``[policy]`` in proctor.toml or a policy plugin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Decision(str, Enum):
    ALLOW_IMMEDIATE = "ALLOW_IMMEDIATE"
    REQUIRE_PROPOSAL = "REQUIRE_PROPOSAL"
    DENY = "DENY"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Decision.ALLOW_IMMEDIATE: 0, Decision.REQUIRE_PROPOSAL: 1, Decision.DENY: 2}


def coerce(value: object) -> Decision | None:
    """Accept a Decision, its name in any case, a ruling carrying one
    (:class:`proctor.core.policy.Ruling`), or None (abstain)."""
    if value is None or isinstance(value, Decision):
        return value
    inner = getattr(value, "decision", None)
    if isinstance(inner, Decision):
        return inner
    if isinstance(value, str):
        try:
            return Decision(value.strip().upper())
        except ValueError:
            pass
    raise ValueError(f"not a governance decision: {value!r}")


def strictest(answers: Iterable[object]) -> Decision:
    decision = Decision.ALLOW_IMMEDIATE
    for answer in answers:
        d = coerce(answer)
        if d is not None and d.rank > decision.rank:
            decision = d
    return decision


@dataclass(frozen=True)
class Veto:
    """A ``proctor_before_commit`` answer that stops an action before it commits.

    ``reason`` is shown to the user (the action is denied, exit code 1, nothing written);
    a plain string answer means the same thing. ``plugin`` is filled in by the plugin
    manager with the name of the plugin that answered.
    """

    reason: str
    plugin: str = ""


def coerce_veto(value: object) -> Veto | None:
    """Accept a Veto, a non-empty reason string, or None (no objection)."""
    if value is None or isinstance(value, Veto):
        return value
    if isinstance(value, str) and value.strip():
        return Veto(value.strip())
    raise ValueError(f"not a veto: {value!r}")
