"""Runs: executing a procedure version in a sandbox, the run log and its statistics.

Empty until the runs work lands. Builds on ``procedures`` and ``store``; reports runs
through ``proctor_on_event``.
"""
