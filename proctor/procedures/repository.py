"""Reads of the procedure store: list, show at any version, history, diff, releases.

Everything comes from git: a version is a commit that changed ``procedures/<name>/``, a
release is the annotated tag ``procedures/<name>/vX.Y.Z``. Nothing is cached on disk, so
what ``git log`` says and what proctor says cannot disagree.

Anyone who can push can make a tag, so a tag is trusted as a release only when it is one
proctor wrote (:meth:`ProcedureRepository.release_tags` holds the whole rule, and every
reader of releases goes through it: history, show, diff, release's bump, rollback, run
resolution and auto-rollback). Any other tag under ``procedures/<name>/`` is *foreign*:
listed, with why, and otherwise ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proctor.core import jsonvalue
from proctor.core.errors import NotFoundError, UsageError, ValidationFailed
from proctor.core.names import check_name
from proctor.procedures.signature import Signature, code_signature, compare
from proctor.store.gitstore import MODE_TREE, GitStore, Snapshot

if TYPE_CHECKING:
    from proctor.procedures.spec import ProcedureSpec

PROCEDURES_DIR = "procedures"
CODE_FILE = "main.py"
METADATA_FILE = "metadata.json"
SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
#: The trailer every release tag proctor writes carries: ``Proctor-Release: <name>@X.Y.Z``.
RELEASE_TRAILER = "Proctor-Release"


def proc_dir(name: str) -> str:
    return f"{PROCEDURES_DIR}/{name}"


def code_path(name: str) -> str:
    return f"{PROCEDURES_DIR}/{name}/{CODE_FILE}"


def metadata_path(name: str) -> str:
    return f"{PROCEDURES_DIR}/{name}/{METADATA_FILE}"


def tag_name(name: str, version: tuple[int, int, int]) -> str:
    return f"{PROCEDURES_DIR}/{name}/v{version[0]}.{version[1]}.{version[2]}"


def release_trailer(name: str, version: tuple[int, int, int]) -> tuple[str, str]:
    """The trailer that marks a tag as a release of ``name`` at ``version`` written by proctor."""
    return RELEASE_TRAILER, f"{name}@{format_semver(version)}"


def parse_semver(text: str) -> tuple[int, int, int] | None:
    m = SEMVER.match(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def format_semver(v: tuple[int, int, int]) -> str:
    return f"{v[0]}.{v[1]}.{v[2]}"


def bump_version(v: tuple[int, int, int] | None, bump: str) -> tuple[int, int, int]:
    if v is None:
        return {"major": (1, 0, 0), "minor": (0, 1, 0), "patch": (0, 0, 1)}[bump]
    if bump == "major":
        return (v[0] + 1, 0, 0)
    if bump == "minor":
        return (v[0], v[1] + 1, 0)
    return (v[0], v[1], v[2] + 1)


def parse_spec(text: str | bytes, path: str = METADATA_FILE) -> ProcedureSpec:
    """Read metadata.json or raise ValidationFailed saying what is wrong and where."""
    from pydantic import ValidationError

    from proctor.procedures.spec import ProcedureSpec

    try:
        data = jsonvalue.loads(text, path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValidationFailed(f"{path}: not valid JSON{where}: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: expected a JSON object, got {type(data).__name__}")
    try:
        return ProcedureSpec.model_validate(data)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(x) for x in e.get('loc', ())) or '(root)'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        raise ValidationFailed(
            f"{path}: invalid metadata: " + "; ".join(errors), findings=errors
        ) from None


def spec_mismatches(spec: ProcedureSpec, signature: Signature | None, entry: str) -> list[str]:
    """Every way metadata and signature disagree; see :mod:`proctor.procedures.derive`."""
    from proctor.procedures.derive import spec_mismatches as mismatches

    return mismatches(spec, signature, entry)


@dataclass
class ProcedureSummary:
    name: str
    description: str
    category: str
    error: str | None = None


@dataclass
class ProcedureView:
    name: str
    commit: str | None
    spec: ProcedureSpec
    code: str
    signature: Signature | None
    releases: list[str] = field(default_factory=list)

    def to_json(self, include_code: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "commit": self.commit,
            "metadata": self.spec.model_dump(mode="json"),
            "releases": self.releases,
        }
        if include_code:
            out["code"] = self.code
        return out


@dataclass
class VersionInfo:
    commit: str
    author: str
    email: str
    date: str
    message: str
    added: int
    removed: int
    breaking: bool
    reasons: list[str]
    tags: list[str]

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class Release:
    version: tuple[int, int, int]
    tag: str
    commit: str

    @property
    def label(self) -> str:
        return format_semver(self.version)


@dataclass
class ForeignTag:
    """A tag under ``procedures/<name>/`` that proctor does not take for a release."""

    tag: str  # without refs/tags/
    target: str  # the object it names (an annotated tag peeled to what it points at)
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "target": self.target, "reason": self.reason}


@dataclass
class ReleaseTags:
    """The tags of one procedure, split into trusted releases (oldest first) and the rest."""

    trusted: list[Release]
    foreign: list[ForeignTag]

    def find(self, version: tuple[int, int, int]) -> Release | None:
        return next((r for r in self.trusted if r.version == version), None)

    def foreign_for(
        self, version: tuple[int, int, int], name: str | None = None
    ) -> ForeignTag | None:
        """A foreign tag spelling ``version`` (``vX.Y.Z`` or ``X.Y.Z``), if any; with
        ``name``, only the tag that holds the very name the release would take."""
        for tag in self.foreign:
            if name is not None and tag.tag != tag_name(name, version):
                continue
            if parse_semver(tag.tag.rsplit("/", 1)[-1]) == version:
                return tag
        return None

    def unknown(self, name: str, version: str) -> NotFoundError | UsageError:
        """The error for a version that is not a trusted release of ``name``."""
        wanted = parse_semver(version)
        tag = self.foreign_for(wanted) if wanted is not None else None
        if tag is not None:
            return UsageError(
                f"{tag.tag} is a foreign tag, not a release of {name} ({tag.reason}); "
                "proctor neither runs nor restores it"
            )
        have = ", ".join(r.label for r in self.trusted) or "none"
        return NotFoundError(f"unknown version {version} of {name} (releases: {have})")


def _tag_object(data: bytes) -> tuple[dict[str, str], str]:
    """The headers and the message of an annotated tag object."""
    head, _, message = data.partition(b"\n\n")
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\n"):
        key, _, value = line.partition(" ")
        headers.setdefault(key, value)
    return headers, message.decode("utf-8", "replace")


def _trailer_values(message: str, key: str) -> list[str]:
    """Values of ``key`` in the message's last paragraph, where git reads trailers."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        k, sep, value = line.partition(":")
        if sep and k.strip().lower() == key.lower():
            out.append(value.strip())
    return out


class ProcedureRepository:
    """Read access to procedures on one store branch."""

    def __init__(self, store: GitStore, ref: str, entry_point: str = "run") -> None:
        self.store = store
        self.ref = ref
        self.entry_point = entry_point

    def snapshot(self, commit: str | None = None) -> Snapshot:
        return Snapshot(self.store, commit if commit is not None else self.store.read_ref(self.ref))

    # -- listing -------------------------------------------------------------------------

    def names(self, snapshot: Snapshot | None = None) -> list[str]:
        snap = snapshot or self.snapshot()
        return sorted(
            n for n, (mode, _) in snap.listdir(PROCEDURES_DIR).items() if mode == MODE_TREE
        )

    def summaries(self, snapshot: Snapshot | None = None) -> list[ProcedureSummary]:
        """Every procedure with its description, reading all metadata in one round trip."""
        snap = snapshot or self.snapshot()
        dirs = snap.listdir(PROCEDURES_DIR)
        names = sorted(n for n, (mode, _) in dirs.items() if mode == MODE_TREE)
        trees = self.store.read_trees([dirs[n][1] for n in names])
        shas = []
        for tree in trees:
            entry = tree.get(METADATA_FILE)
            shas.append(entry[1] if entry else "")
        blobs = self.store.read_blobs([s for s in shas if s])
        it = iter(blobs)
        out = []
        for name, sha in zip(names, shas):
            if not sha:
                out.append(ProcedureSummary(name, "", "", error="no metadata.json"))
                continue
            try:
                data = json.loads(next(it) or b"{}")
                out.append(
                    ProcedureSummary(
                        name, str(data.get("description", "")), str(data.get("category", ""))
                    )
                )
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
                out.append(ProcedureSummary(name, "", "", error=f"metadata.json: {exc}"))
        return out

    # -- versions ------------------------------------------------------------------------

    def release_tags(self, name: str, tip: str | None = None) -> ReleaseTags:
        """The trust rule for releases, in one place.

        A tag ``procedures/<name>/vX.Y.Z`` is a trusted release when all of these hold:
        it is an annotated tag whose object is named as its ref is; its message ends in
        the trailer ``Proctor-Release: <name>@X.Y.Z`` (which proctor writes and nothing
        else needs to); it points at a commit on the history of the store branch (as of
        ``tip``, default its tip); and that commit changed ``procedures/<name>/``. Every
        other tag whose last part reads as a version is foreign, with the first rule it
        breaks as its reason. Three git reads, however many tags there are.
        """
        check_name(name)
        prefix = f"refs/tags/{PROCEDURES_DIR}/{name}/"
        fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
        proc = self.store.git("for-each-ref", f"--format={fmt}", prefix)
        rows = []
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            refname, kind, obj, peeled_kind, peeled = (line.split("\0") + [""] * 5)[:5]
            short_name = refname[len("refs/tags/") :]
            version = parse_semver(refname[len(prefix) :])
            if version is not None:
                rows.append((short_name, version, kind, obj, peeled_kind or kind, peeled or obj))
        trusted: list[Release] = []
        foreign: list[ForeignTag] = []
        annotated = [row for row in rows if row[2] == "tag"]
        bodies = dict(
            zip(
                [row[3] for row in annotated],
                self.store.cat.read_many([row[3] for row in annotated]),
            )
        )
        candidates: list[tuple[str, tuple[int, int, int], str]] = []
        for short_name, version, kind, obj, peeled_kind, peeled in rows:
            reason = self._tag_problem(
                name, short_name, version, kind, peeled_kind, bodies.get(obj)
            )
            if reason:
                foreign.append(ForeignTag(short_name, peeled, reason))
            else:
                candidates.append((short_name, version, peeled))
        if candidates:
            start = tip if tip is not None else self.store.read_ref(self.ref)
            changed = self._commits_changing(name, start)
            for short_name, version, commit in candidates:
                if commit in changed:
                    trusted.append(Release(version, short_name, commit))
                    continue
                where = self.ref or "the store branch"
                if start is not None and self._is_ancestor(commit, start):
                    reason = f"its commit {commit[:12]} did not change {proc_dir(name)}/"
                else:
                    reason = f"its commit {commit[:12]} is not on the history of {where}"
                foreign.append(ForeignTag(short_name, commit, reason))
        trusted.sort(key=lambda r: r.version)
        foreign.sort(key=lambda f: f.tag)
        return ReleaseTags(trusted, foreign)

    @staticmethod
    def _tag_problem(
        name: str,
        short_name: str,
        version: tuple[int, int, int],
        kind: str,
        peeled_kind: str,
        body: tuple[str, str, bytes] | None,
    ) -> str | None:
        """Why the tag is not a release proctor wrote (before its commit is looked at)."""
        if kind != "tag":
            if kind == "commit":
                return "not an annotated tag (a lightweight tag anyone can make)"
            return f"points at a {kind}, not a commit"
        if peeled_kind != "commit" or body is None:
            return f"an annotated tag of a {peeled_kind or 'missing object'}, not of a commit"
        headers, message = _tag_object(body[2])
        if headers.get("type") != "commit":
            return f"an annotated tag of a {headers.get('type')}, not of a commit"
        if headers.get("tag") != short_name:
            return f"its tag object is named {headers.get('tag')!r}, not {short_name!r}"
        if short_name != tag_name(name, version):
            return f"not spelt as proctor names releases ({tag_name(name, version)})"
        values = _trailer_values(message, RELEASE_TRAILER)
        if not values:
            return f"not a release proctor wrote (no {RELEASE_TRAILER} trailer)"
        expected = release_trailer(name, version)[1]
        if values != [expected]:
            return f"its {RELEASE_TRAILER} trailer names {', '.join(values)}, not {expected}"
        return None

    def _commits_changing(self, name: str, start: str | None) -> set[str]:
        """Every commit on ``start``'s history that changed the procedure's directory."""
        if start is None:
            return set()
        proc = self.store.git("rev-list", "--full-history", start, "--", proc_dir(name) + "/")
        return set(proc.stdout.decode().split())

    def _is_ancestor(self, commit: str, start: str) -> bool:
        proc = self.store.git("merge-base", "--is-ancestor", commit, start, check=False)
        return proc.returncode == 0

    def trusted_releases(self, name: str, tip: str | None = None) -> list[Release]:
        """Trusted releases of a procedure, oldest version first (see :meth:`release_tags`)."""
        return self.release_tags(name, tip).trusted

    def releases(self, name: str, tip: str | None = None) -> list[Release]:
        """The same as :meth:`trusted_releases`: there are no other releases."""
        return self.trusted_releases(name, tip)

    def latest_release(self, name: str, tip: str | None = None) -> Release | None:
        releases = self.trusted_releases(name, tip)
        return releases[-1] if releases else None

    def resolve(self, name: str, version: str | None = None, tip: str | None = None) -> str:
        """A commit for ``name@version``: X.Y.Z or vX.Y.Z (a trusted release, as of ``tip``:
        default the store branch's) or any git revision."""
        check_name(name)
        if version in (None, "", "latest"):
            tip = self.store.read_ref(self.ref)
            if tip is None:
                raise NotFoundError(f"unknown procedure {name!r}: the store is empty")
            return tip
        assert version is not None
        semver = parse_semver(version)
        if semver is not None:
            tags = self.release_tags(name, tip)
            release = tags.find(semver)
            if release is None:
                raise tags.unknown(name, version)
            return release.commit
        return self.store.resolve(version)

    def latest_version(self, name: str, commit: str | None = None) -> str | None:
        """The last commit that changed the procedure, as of ``commit`` (default: tip)."""
        start = commit or self.store.read_ref(self.ref)
        if start is None:
            return None
        proc = self.store.git("log", "-1", "--format=%H", start, "--", proc_dir(name) + "/")
        out = proc.stdout.decode().strip()
        return out or None

    def get(self, name: str, version: str | None = None) -> ProcedureView:
        commit = self.resolve(name, version)
        snap = Snapshot(self.store, commit)
        code = snap.read(code_path(name))
        meta = snap.read(metadata_path(name))
        if code is None and meta is None:
            where = f" at {version}" if version else ""
            raise NotFoundError(f"unknown procedure {name!r}{where}")
        spec = parse_spec(meta or b"{}", metadata_path(name))
        text = (code or b"").decode("utf-8", "replace")
        try:
            sig = code_signature(text, self.entry_point, code_path(name))
        except ValidationFailed:
            sig = None
        return ProcedureView(
            name, commit, spec, text, sig, releases=[r.label for r in self.trusted_releases(name)]
        )

    def history(self, name: str) -> list[VersionInfo]:
        """Versions newest first, with line counts and whether ``run``'s signature broke."""
        check_name(name)
        tip = self.store.read_ref(self.ref)
        if tip is None:
            raise NotFoundError(f"unknown procedure {name!r}: the store is empty")
        fmt = "%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%s"
        proc = self.store.git(
            "log", f"--format={fmt}", "--numstat", "--no-renames", tip, "--", proc_dir(name) + "/"
        )
        records = proc.stdout.decode("utf-8", "replace").split("\x1e")[1:]
        if not records:
            raise NotFoundError(f"unknown procedure {name!r}")
        tags_by_commit: dict[str, list[str]] = {}
        for rel in self.trusted_releases(name, tip):
            tags_by_commit.setdefault(rel.commit, []).append("v" + rel.label)
        versions: list[VersionInfo] = []
        for record in records:
            head, _, stats = record.partition("\n")
            sha, author, email, date, subject = head.split("\x1f", 4)
            added = removed = 0
            for line in stats.strip().splitlines():
                parts = line.split("\t")
                if len(parts) == 3:
                    added += int(parts[0]) if parts[0].isdigit() else 0
                    removed += int(parts[1]) if parts[1].isdigit() else 0
            versions.append(
                VersionInfo(
                    sha,
                    author,
                    email,
                    date,
                    subject,
                    added,
                    removed,
                    False,
                    [],
                    tags_by_commit.get(sha, []),
                )
            )
        codes = self.store.cat.read_many([f"{v.commit}:{code_path(name)}" for v in versions])
        sigs: list[Signature | None] = []
        for obj in codes:
            try:
                sigs.append(
                    code_signature(obj[2].decode("utf-8", "replace"), self.entry_point)
                    if obj
                    else None
                )
            except ValidationFailed:
                sigs.append(None)
        for i, v in enumerate(versions):
            older = sigs[i + 1] if i + 1 < len(sigs) else None
            if i + 1 < len(sigs) and older is not None and sigs[i] is not None:
                compat = compare(older, sigs[i])
                v.breaking = compat.breaking
                v.reasons = list(compat.reasons)
            elif (
                i + 1 < len(sigs) and older is not None and sigs[i] is None and codes[i] is not None
            ):
                v.breaking, v.reasons = True, ["main.py no longer defines a usable entry point"]
            elif codes[i] is None and i + 1 < len(sigs):
                v.breaking, v.reasons = True, ["procedure deleted"]
        return versions

    def diff(self, name: str, from_version: str, to_version: str | None = None) -> str:
        check_name(name)
        a = self.resolve(name, from_version)
        b = self.resolve(name, to_version)
        proc = self.store.git(
            "diff", "--no-color", "--no-renames", a, b, "--", proc_dir(name) + "/"
        )
        return proc.stdout.decode("utf-8", "replace")
