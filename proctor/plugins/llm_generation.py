"""Built-in plugin: code generation's action and the policy of its decision bands.

Registers ``procedure.generate`` and ``procedure.import``, and answers
``proctor_policy`` for ``procedure.generate`` from the generation's confidence and
findings (in its params): the apply band is ALLOW_IMMEDIATE, the review and expert bands
REQUIRE_PROPOSAL (one approval, or two or an expert's: ``required_approvals`` in the
params is what a proposal handler reads). Other policy answers combine with this one and
the strictest wins, so ``[policy] "procedure.generate" = "REQUIRE_PROPOSAL"`` sends every
generation to review.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_register_actions(register: Any) -> None:
    from proctor.procedures.migration import MIGRATION_ACTIONS

    for action in MIGRATION_ACTIONS:
        register(action)


@hookimpl
def proctor_policy(action: Any, params: Any) -> Any:
    if getattr(action, "api_name", None) != "procedure.generate":
        return None
    from proctor.core.governance import Decision
    from proctor.core.policy import Ruling
    from proctor.llm.generate import decide_band

    # Recomputed from the numbers rather than read from params.band: the band is what
    # the confidence says, whatever a caller claims.
    band = decide_band(float(params.confidence), int(params.findings))
    if band.decision is not Decision.REQUIRE_PROPOSAL:
        return band.decision
    return Ruling(
        band.decision,
        rule=f"generation band {band.name}",
        approvals=max(1, band.required_approvals),
    )
