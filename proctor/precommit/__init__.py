"""pre-commit entry points: one module per hook, each with ``main(argv=None) -> int``.

A face, like the CLI: thin calls into the check runner. Start-up time is what a user
waits for on every commit, so nothing heavy is imported here.
"""
