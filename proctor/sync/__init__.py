"""Sync between machines: publish local proctor commits to a git remote, fetch and replay
them on the remote's tip when it moved, create-only release tags across clones.

Empty until the governance work lands. Builds on ``store`` and ``engine``.
"""
