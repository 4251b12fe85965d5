"""Runs: executing a procedure version in a sandbox, the run log and its statistics.

What belongs here: ``sandbox`` (the isolation levels, the in-sandbox runner and the
probe of what a machine offers; it imports only ``core``); the way from ``NAME@VERSION``
to a sandboxed call (``resolve`` reads the version from git objects, ``params`` converts
and checks the call, ``checked`` runs the procedure-mode checks, cached by blob id,
``service`` ties them together); the record of runs (``log``: the run log over
SQLAlchemy's async engine, SQLite or PostgreSQL, with its migrations and statistics);
what is judged from it (``examples`` for ``proctor test``, ``rollback`` for
auto-rollback); ``settings`` (``[runs]``), ``model`` (records, exit codes), ``report``
(their text) and ``bridge`` (``run_async``, sync code calling async code). Runs are
announced through ``proctor_on_event``. Nothing here imports the workspace: it hands in
the plugin manager and ``execute`` as callables.
"""
