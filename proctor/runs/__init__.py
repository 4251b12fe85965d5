"""Runs: executing a procedure version in a sandbox, the run log and its statistics.

``runs.sandbox`` holds the isolation levels, the in-sandbox runner and the probe of what a
machine offers; it imports only ``core``. The run log, statistics and the glue from a
procedure version to a sandboxed call (resolving the version, reading the code from git,
converting params) build on ``procedures`` and ``store`` and report runs through
``proctor_on_event``.
"""
