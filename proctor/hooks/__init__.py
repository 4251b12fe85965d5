"""pre-commit entry points: one module per hook, each with ``main(argv=None) -> int``."""
