"""The contracts every other package builds on: the hook specifications, the plugin
manager, events, typed errors, governance decisions, name rules and generic configuration.

Nothing here imports any other part of proctor. If code in ``core`` seems to need a
domain (the store, procedures, checks), the design wants a hook or an event instead.
"""
