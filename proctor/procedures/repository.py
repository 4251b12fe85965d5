"""Reads of the procedure store: list, show at any version, history, diff, releases.

Everything comes from git: a version is a commit that changed ``procedures/<name>/``, a
release is the annotated tag ``procedures/<name>/vX.Y.Z``. Nothing is cached on disk, so
what ``git log`` says and what proctor says cannot disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proctor.core.errors import NotFoundError, ValidationFailed
from proctor.core.names import check_name
from proctor.procedures.signature import Signature, code_signature, compare
from proctor.store.gitstore import MODE_TREE, GitStore, Snapshot

if TYPE_CHECKING:
    from proctor.procedures.spec import ProcedureSpec

PROCEDURES_DIR = "procedures"
CODE_FILE = "main.py"
METADATA_FILE = "metadata.json"
SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def proc_dir(name: str) -> str:
    return f"{PROCEDURES_DIR}/{name}"


def code_path(name: str) -> str:
    return f"{PROCEDURES_DIR}/{name}/{CODE_FILE}"


def metadata_path(name: str) -> str:
    return f"{PROCEDURES_DIR}/{name}/{METADATA_FILE}"


def tag_name(name: str, version: tuple[int, int, int]) -> str:
    return f"{PROCEDURES_DIR}/{name}/v{version[0]}.{version[1]}.{version[2]}"


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
        data = json.loads(text)
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

    def releases(self, name: str) -> list[Release]:
        """Releases of a procedure, oldest version first."""
        prefix = f"refs/tags/{PROCEDURES_DIR}/{name}/"
        out = []
        proc = self.store.git(
            "for-each-ref", "--format=%(refname) %(*objectname) %(objectname)", prefix
        )
        for line in proc.stdout.decode().splitlines():
            refname, peeled, obj = (line.split(" ") + ["", ""])[:3]
            version = parse_semver(refname[len(prefix) :])
            if version is None:
                continue
            out.append(Release(version, refname[len("refs/tags/") :], peeled or obj))
        return sorted(out, key=lambda r: r.version)

    def latest_release(self, name: str) -> Release | None:
        releases = self.releases(name)
        return releases[-1] if releases else None

    def resolve(self, name: str, version: str | None = None) -> str:
        """A commit for ``name@version``: X.Y.Z or vX.Y.Z (a release) or any git revision."""
        check_name(name)
        if version in (None, "", "latest"):
            tip = self.store.read_ref(self.ref)
            if tip is None:
                raise NotFoundError(f"unknown procedure {name!r}: the store is empty")
            return tip
        assert version is not None
        semver = parse_semver(version)
        if semver is not None:
            ref = "refs/tags/" + tag_name(name, semver)
            sha = self.store.read_ref(ref)
            if sha is None:
                have = ", ".join(r.label for r in self.releases(name)) or "none"
                raise NotFoundError(f"unknown version {version} of {name} (releases: {have})")
            return self.store.tag_target(sha)
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
            name, commit, spec, text, sig, releases=[r.label for r in self.releases(name)]
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
        for rel in self.releases(name):
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
