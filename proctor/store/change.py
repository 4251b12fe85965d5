"""What a write says and what it returns: plain data shared by the store and its callers.

The store knows nothing of procedures or actions; the layers above speak to it only in
these terms (paths to bytes, tags to create), so they live apart from the machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TagSpec:
    """An annotated tag to create (never move) together with the commit."""

    name: str  # e.g. "procedures/greet/v1.0.0" (without refs/tags/)
    message: str
    target: str | None = None  # a commit sha; None means "the commit this write makes"
    # Trailers of this tag alone, after the write's own (e.g. what marks it as a release).
    trailers: tuple[tuple[str, str], ...] = ()


@dataclass
class Change:
    """What one write does: file edits (bytes to write, None to delete) and tags.

    ``message`` is the commit subject and body; trailers are added by the store.
    A change with no edits makes no commit (a release only creates its tag).
    """

    edits: dict[str, bytes | None] = field(default_factory=dict)
    message: str = ""
    tags: list[TagSpec] = field(default_factory=list)
    executable: set[str] = field(default_factory=set)
    # Explicit modes ("100644" / "100755") for written paths; a path named neither here
    # nor in ``executable`` keeps the mode it has on the tip (100644 for a new file).
    modes: dict[str, str] = field(default_factory=dict)
    # Work-tree files (repo-relative path -> bytes read) whose content this change took
    # as input: if such a file still holds exactly that, committing the change loses
    # nothing of the user's even where the committed form differs (e.g. reformatted JSON).
    consumed: dict[str, bytes] = field(default_factory=dict)
    # Trailers this change adds to the write's own (same rules: one printable line each),
    # for what only the build knows, e.g. which proposed action an approval applied.
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        """The touched paths, sorted: what a lost race is checked against."""
        return sorted(self.edits)


@dataclass(frozen=True)
class WriteResult:
    """What a published write did; ``attempts`` counts the builds it took.

    A result exists only once the refs moved: the write is applied, its work tree and
    index already up to date. ``warnings`` says what did not go as it should around it
    (an earlier interrupted write that could not be wholly undone, a cleanup that
    failed), each with the command that repairs it; never a reason to report the write
    as failed.
    """

    commit: str | None  # the new commit, or None when the change had no edits
    parent: str | None
    tags: list[str]
    attempts: int
    warnings: list[str] = field(default_factory=list)
    backoff: float = 0.0  # seconds slept between the builds after lost races
