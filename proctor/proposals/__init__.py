"""Proposals: changes that policy holds for approval (``proposals/<id>.json``), their state
machine and the actions that move them. Builds on ``engine`` and ``store``.

Empty until the governance work lands; the engine's REQUIRE_PROPOSAL outcome is the seam.
"""
