"""The check runner and the validator contract: findings, rules, file selection, noqa,
output formats, and the name resolver validators share.

This package sits on the pre-commit hot path: it imports the standard library and
``core`` only, never pydantic or the store. The checks themselves (safety, log lint) are
plugins registered through ``proctor_register_validators``.
"""
