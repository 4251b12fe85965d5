"""The check runner and the validator contract: findings, rules, select/ignore, file
walking, noqa, the ``[check]`` settings, output formats, and the name resolver
validators share.

Modules: ``validation`` (the contract), ``selection``, ``files``, ``noqa``, ``settings``,
``formats`` (the format contract and the built-in formats), ``runner`` (applies all of
them, for the CLI, the hooks and the action pipeline alike), ``values``, ``resolve`` and
``decoding`` (the name resolver, its value model and the decoders it folds).

This package sits on the pre-commit hot path: it imports the standard library and
``core`` only, never pydantic or the store. It knows no check (safety and log lint are
plugins registered through ``proctor_register_validators``), no output format by name
beyond the built-ins it defines (they are registered through
``proctor_register_formats``), and no procedure layout (a caller that knows where
capabilities are declared passes ``capabilities_for``).
"""
