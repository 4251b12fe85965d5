"""The action engine: action types, submission criteria, and the pipeline every change to
the store goes through (plan, decide, apply, publish, emit).

It knows the store and the check runner (to validate code an action writes) but no
particular action: those come from plugins through ``proctor_register_actions``.
"""
