"""A read-only view of the store at one commit, handed to actions and readers.

Separate from the facade so that code which only reads (criteria, the procedure
repository) holds something that cannot write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proctor.store.objects import MODE_TREE, Entry, Tree

if TYPE_CHECKING:
    from proctor.store.gitstore import GitStore


class Snapshot:
    """A read-only view of the store at one commit (None: the branch has no commit yet)."""

    def __init__(self, store: GitStore, commit: str | None) -> None:
        self.store = store
        self.commit = commit
        self.tree = store.commit_tree(commit) if commit else None

    def read(self, path: str) -> bytes | None:
        """The bytes of file ``path``, or None if there is none."""
        return self.store.read_blob(self.tree, path)

    def read_many(self, paths: list[str]) -> list[bytes | None]:
        """The bytes of each file in ``paths`` (None where there is none), the blobs not
        yet cached read in one round trip to git rather than one each."""
        shas: list[str | None] = []
        for path in paths:
            entry = self.entry(path)
            shas.append(None if entry is None or entry[0] == MODE_TREE else entry[1])
        wanted = [sha for sha in shas if sha is not None]
        found = dict(zip(wanted, self.store.read_blobs(wanted))) if wanted else {}
        return [None if sha is None else found[sha] for sha in shas]

    def read_text(self, path: str) -> str | None:
        """The file ``path`` decoded as UTF-8, or None if there is none."""
        data = self.read(path)
        return None if data is None else data.decode("utf-8")

    def entry(self, path: str) -> Entry | None:
        """The (mode, sha) of ``path``, or None."""
        return self.store.entry_at(self.tree, path)

    def listdir(self, path: str) -> Tree:
        """The entries of directory ``path`` (empty if absent)."""
        return self.store.tree_at(self.tree, path)

    def exists(self, path: str) -> bool:
        """Whether anything (file or directory) stands at ``path``."""
        return self.entry(path) is not None
