"""Proposals: changes that policy holds for approval (``proposals/<id>.json``), their state
machine and the actions that move them. Builds on ``engine`` and ``store``.

``model`` is the file (its model, ids, strict parsing, the content hash approvals are
bound to); ``service`` the engine's proposal handler and ``settle`` (the proposed action
re-run on the current tip); ``actions`` the transitions as action types (registered by
the built-in plugin ``proposals``); ``views`` the typed results the faces show.
See docs/governance.md.
"""
