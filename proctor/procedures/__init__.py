"""The procedure domain: the spec model (``metadata.json``), the entry point's signature
(and its docstring), the metadata derived from it and kept in step with it (``derive``),
versions, releases and rollback, and the actions that change them.

Builds on ``engine`` (actions), ``store`` (reads at any revision) and ``checks`` (the
capabilities a procedure declares). Registered by ``proctor.plugins.procedure_actions``.
"""
