"""``NAME[@VERSION]`` to the exact bytes that will run, read from git objects only.

A run never reads the work tree: what runs is what a commit holds, so an uncommitted
edit (or a file swapped in after the checks) cannot slip in. Versions:

- none (or ``latest``): the latest trusted release (see
  :meth:`ProcedureRepository.release_tags`); the store branch's tip if never released;
- ``tip``: the store branch's tip, released or not;
- ``X.Y.Z`` / ``vX.Y.Z``: that release; a foreign tag of that version is refused;
- anything else: a git revision (a sha, ``HEAD~2``, a branch).

A version that is the commit of a release is labelled with the release, so its runs
count towards that release's stats and auto-rollback however it was named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proctor.core.errors import NotFoundError, UsageError, ValidationFailed
from proctor.core.names import check_name
from proctor.procedures.repository import (
    ProcedureRepository,
    Release,
    code_path,
    metadata_path,
    parse_semver,
    parse_spec,
)
from proctor.procedures.signature import Signature, code_signature
from proctor.store.gitstore import Snapshot

if TYPE_CHECKING:
    from proctor.procedures.spec import ProcedureSpec

LATEST = ("", "latest")
TIP = "tip"


@dataclass
class ProcedureVersion:
    """One version of a procedure, as it will run.

    ``commit`` is the procedure's version (the last commit that changed its directory);
    ``release`` is the release it is (``X.Y.Z``) or None; ``label`` is what the run log
    groups by: the release, else the commit's first 12 characters.
    """

    name: str
    commit: str
    release: str | None
    code: bytes
    blob: str
    spec: ProcedureSpec
    signature: Signature | None
    releases: list[Release] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.release or self.commit[:12]

    @property
    def is_current_release(self) -> bool:
        """Whether this is the newest release (the one auto-rollback watches)."""
        return (
            self.release is not None
            and bool(self.releases)
            and (self.releases[-1].label == self.release)
        )

    def previous_release(self) -> Release | None:
        """The release before this one, in version order."""
        labels = [r.label for r in self.releases]
        if self.release not in labels:
            return None
        index = labels.index(self.release)
        return self.releases[index - 1] if index > 0 else None


def valid_name(name: str) -> str:
    """``name`` if it is a procedure name, else a UsageError (exit 2) saying why."""
    try:
        return check_name(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _split(ref: str) -> tuple[str, str | None]:
    name, sep, version = ref.partition("@")
    return name, (version if sep else None)


def resolve_version(
    repo: ProcedureRepository, name: str, version: str | None = None
) -> ProcedureVersion:
    """Resolve and read one version. ``name`` may carry ``@VERSION`` itself.

    Raises UsageError (a bad name), NotFoundError (no such procedure, release or
    revision, or no main.py there), ValidationFailed (metadata.json unreadable).
    """
    if version is None and "@" in name:
        name, version = _split(name)
    valid_name(name)
    store = repo.store
    tags = repo.release_tags(name)
    releases = tags.trusted
    wanted = (version or "").strip()
    release: Release | None = None
    if wanted.lower() in LATEST:
        release = releases[-1] if releases else None
        source = release.commit if release else store.read_ref(repo.ref)
        if source is None:
            raise NotFoundError(f"unknown procedure {name!r}: the store is empty")
    elif wanted.lower() == TIP:
        source = store.read_ref(repo.ref)
        if source is None:
            raise NotFoundError(f"unknown procedure {name!r}: the store is empty")
    elif parse_semver(wanted) is not None:
        semver = parse_semver(wanted)
        assert semver is not None
        release = tags.find(semver)
        if release is None:
            raise tags.unknown(name, wanted)
        source = release.commit
    else:
        source = store.resolve(wanted)

    snap = Snapshot(store, source)
    entry = snap.entry(code_path(name))
    if entry is None:
        where = f" at {wanted}" if wanted else ""
        raise NotFoundError(f"unknown procedure {name!r}{where}: no {code_path(name)}")
    code = snap.read(code_path(name)) or b""
    spec = parse_spec(snap.read(metadata_path(name)) or b"{}", metadata_path(name))
    if release is not None:
        commit = release.commit
    else:
        commit = repo.latest_version(name, source) or source
        release = next((r for r in reversed(releases) if r.commit == commit), None)
    try:
        signature = code_signature(code.decode("utf-8"), repo.entry_point, code_path(name))
    except (UnicodeDecodeError, ValidationFailed):
        signature = None  # the checks say what is wrong with it
    return ProcedureVersion(
        name=name,
        commit=commit,
        release=release.label if release else None,
        code=code,
        blob=entry[1],
        spec=spec,
        signature=signature,
        releases=releases,
    )
