"""The git store: object reads and writes, refs moved by compare-and-swap, locks, the
work-tree sync and read-only snapshots.

It knows git and nothing of procedures, actions or checks: a write is a
:class:`~proctor.store.gitstore.Change` (paths to bytes) and a list of tags. Builds on
``core`` only.
"""
