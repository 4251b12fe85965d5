"""The built-in procedure actions: create, update, delete, release, rollback.

Registered by ``proctor.plugins.procedure_actions`` through ``proctor_register_actions``, the
same way a third-party action is. Each ``apply`` reads only ``context.snapshot`` (the tip
it is being built on), so a rebuild after a lost race sees the newer store.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, field_validator

from proctor.checks.validation import Capabilities
from proctor.core.errors import ConcurrencyError, NotFoundError, UsageError, ValidationFailed
from proctor.core.names import check_name
from proctor.engine.actions import (
    ActionContext,
    ActionType,
    CodeToCheck,
    MaxBytes,
    Params,
    RequiredField,
)
from proctor.procedures.capabilities import parse_capabilities
from proctor.procedures.derive import derive_spec, fill_metadata, merge_spec, spec_mismatches
from proctor.procedures.repository import (
    ProcedureRepository,
    Release,
    ReleaseTags,
    bump_version,
    code_path,
    format_semver,
    metadata_path,
    parse_semver,
    parse_spec,
    proc_dir,
    release_trailer,
    tag_name,
)
from proctor.procedures.signature import (
    Signature,
    code_signature,
    compare,
    parse_code,
    signature_of,
)
from proctor.procedures.spec import ProcedureSpec
from proctor.store.gitstore import Change, Snapshot, TagSpec, short

MAX_CODE_BYTES = 1_000_000


def _check_semver(v: str) -> str:
    if parse_semver(v) is None:
        raise ValueError(f"invalid version {v!r}: expected X.Y.Z")
    return v


SemVer = Annotated[str, AfterValidator(_check_semver)]


class _NamedParams(Params):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


def _entry(context: ActionContext) -> str:
    return context.config.entry_point if context.config else "run"


def _repo(context: ActionContext) -> ProcedureRepository:
    snap = context.require_snapshot()
    return ProcedureRepository(snap.store, "", _entry(context))


def _spec_from(
    metadata: dict[str, Any] | None, name: str, description: str | None, signature: Signature | None
) -> ProcedureSpec:
    """The spec to store: the given metadata filled in from ``run``'s signature, or one
    derived from it alone. What the metadata contradicts is judged afterwards."""
    if metadata is None:
        return derive_spec(name, signature, description)
    data = fill_metadata(metadata, signature, description)
    data.setdefault("name", name)
    if data["name"] != name:
        raise ValidationFailed(
            f"metadata.json names {data['name']!r} but the procedure is {name!r}"
        )
    return parse_spec(json.dumps(data), metadata_path(name))


def _check_consistency(name: str, spec: ProcedureSpec, sig: Signature | None, entry: str) -> None:
    problems = spec_mismatches(spec, sig, entry)
    if problems:
        raise ValidationFailed(
            f"{name}: metadata and code disagree: " + "; ".join(problems), findings=problems
        )


def _signature_or_none(code: str | None, entry: str) -> Signature | None:
    """The signature of stored code; None when there is none or it no longer parses."""
    if not code:
        return None
    try:
        return code_signature(code, entry)
    except ValidationFailed:
        return None


def _capabilities(spec: ProcedureSpec) -> Capabilities:
    return parse_capabilities(spec.capabilities.model_dump())


def _ensure_expected(snap: Snapshot, name: str, expected: str | None) -> None:
    """Optimistic locking on a procedure: refuse if it changed since ``expected``."""
    if not expected:
        return
    # The same spellings as show, diff and rollback: X.Y.Z (a release) or a revision.
    try:
        expected_commit = ProcedureRepository(snap.store, "", "run").resolve(
            name, expected, snap.commit
        )
    except NotFoundError as exc:
        raise UsageError(f"unknown expected version {expected!r}: {exc.message}") from None
    expected_tree = Snapshot(snap.store, expected_commit).entry(proc_dir(name))
    if expected_tree != snap.entry(proc_dir(name)):
        repo = ProcedureRepository(snap.store, "", "run")
        actual = repo.latest_version(name, snap.commit)
        raise ConcurrencyError(
            f"{name} changed since version {short(expected_commit)} "
            f"(latest is {short(actual)}); re-read it and try your change on top",
            expected=expected_commit,
            actual=actual,
        )


def _check_releasable(snap: Snapshot, name: str, entry: str) -> None:
    """A release promises a readable procedure: its metadata.json parses as a spec and
    agrees with ``run``'s signature (a hand-edited commit may have broken either)."""
    meta = snap.read(metadata_path(name))
    if meta is None:
        raise ValidationFailed(f"{name}: {metadata_path(name)} is missing; nothing to release")
    spec = parse_spec(meta, metadata_path(name))
    code = snap.read(code_path(name))
    sig = code_signature(code.decode("utf-8"), entry, code_path(name)) if code else None
    _check_consistency(name, spec, sig, entry)


def _signature(context: ActionContext, code: str, entry: str, path: str) -> Signature | None:
    """The signature of ``entry`` in ``code``, its parse kept on the context for the code
    checks that follow (``code_to_check``)."""
    tree = parse_code(code, path)
    context.parsed[path] = (code, tree)
    return signature_of(tree, entry)


def _spec_of(context: ActionContext, meta: bytes, path: str) -> ProcedureSpec:
    """The spec in ``meta``: the one ``apply`` built when these are its bytes."""
    known = context.decoded.get(path)
    if known is not None and known[0] == meta:
        spec: ProcedureSpec = known[1]
        return spec
    return parse_spec(meta, path)


def _metadata_bytes(context: ActionContext, spec: ProcedureSpec, path: str) -> bytes:
    """``spec`` as the bytes of its metadata.json, kept for the code checks' capabilities."""
    meta = spec.to_json().encode()
    context.decoded[path] = (meta, spec)
    return meta


class _CodeAction(ActionType):
    def code_to_check(self, change: Change, context: ActionContext) -> list[CodeToCheck]:
        out = []
        for path, content in change.edits.items():
            if content is None or not path.endswith("/main.py"):
                continue
            name = path.split("/")[1]
            meta = change.edits.get(metadata_path(name))
            if meta is None:
                meta = context.require_snapshot().read(metadata_path(name))
            caps = _capabilities(_spec_of(context, meta, metadata_path(name))) if meta else None
            text = content.decode("utf-8")
            known = context.parsed.get(path)
            tree = known[1] if known is not None and known[0] == text else None
            out.append(CodeToCheck(path, text, caps, tree))
        return out


# -- create --------------------------------------------------------------------------------


class CreateParams(_NamedParams):
    code: str
    metadata: dict[str, Any] | None = None
    description: str | None = None


class CreateProcedure(_CodeAction):
    api_name = "procedure.create"
    description = "Add a new procedure (main.py + metadata.json)."
    Params = CreateParams
    criteria = (RequiredField("code"), MaxBytes("code", MAX_CODE_BYTES))

    def subject(self, params: CreateParams) -> str:
        return f"Create procedure {params.name}"

    def apply(self, params: CreateParams, context: ActionContext) -> Change:
        snap = context.require_snapshot()
        if snap.entry(proc_dir(params.name)) is not None:
            raise UsageError(f"procedure {params.name!r} already exists; use update")
        entry = _entry(context)
        sig = _signature(context, params.code, entry, code_path(params.name))
        spec = _spec_from(params.metadata, params.name, params.description, sig)
        _check_consistency(params.name, spec, sig, entry)
        meta_path = metadata_path(params.name)
        return Change(
            edits={
                code_path(params.name): params.code.encode(),
                meta_path: _metadata_bytes(context, spec, meta_path),
            }
        )


# -- update --------------------------------------------------------------------------------


class UpdateParams(_NamedParams):
    code: str | None = None
    metadata: dict[str, Any] | None = None
    description: str | None = None
    expected_version: str | None = None


class UpdateProcedure(_CodeAction):
    api_name = "procedure.update"
    description = (
        "Change a procedure's code and/or metadata (optionally only if unchanged since a version)."
    )
    Params = UpdateParams
    criteria = (MaxBytes("code", MAX_CODE_BYTES),)

    def subject(self, params: UpdateParams) -> str:
        return f"Update procedure {params.name}"

    def apply(self, params: UpdateParams, context: ActionContext) -> Change:
        if params.code is None and params.metadata is None and params.description is None:
            raise UsageError("nothing to update: give code, metadata or a description")
        snap = context.require_snapshot()
        name = params.name
        old_code, old_meta = snap.read_many([code_path(name), metadata_path(name)])
        if old_code is None and old_meta is None:
            raise NotFoundError(f"unknown procedure {name!r}")
        _ensure_expected(snap, name, params.expected_version)
        entry = _entry(context)
        code = params.code if params.code is not None else (old_code or b"").decode("utf-8")
        sig = _signature(context, code, entry, code_path(name))
        if params.metadata is not None:
            spec = _spec_from(params.metadata, name, params.description, sig)
        elif old_meta is None:
            spec = derive_spec(name, sig, params.description)
        else:
            # No metadata given: the stored spec, brought in step with the code's signature.
            spec = merge_spec(parse_spec(old_meta, metadata_path(name)), sig)
            if params.description is not None:
                spec = spec.model_copy(update={"description": params.description})
        _check_consistency(name, spec, sig, entry)
        edits: dict[str, bytes | None] = {}
        code_bytes = code.encode()
        if code_bytes != old_code:
            edits[code_path(name)] = code_bytes
        meta = _metadata_bytes(context, spec, metadata_path(name))
        if meta != old_meta:
            edits[metadata_path(name)] = meta
        if not edits:
            raise UsageError(f"{name}: the update changes nothing")
        return Change(edits=edits)


# -- delete --------------------------------------------------------------------------------


class DeleteParams(_NamedParams):
    expected_version: str | None = None


class DeleteProcedure(ActionType):
    api_name = "procedure.delete"
    description = "Remove a procedure from the branch (its history and releases stay)."
    Params = DeleteParams

    def subject(self, params: DeleteParams) -> str:
        return f"Delete procedure {params.name}"

    def apply(self, params: DeleteParams, context: ActionContext) -> Change:
        snap = context.require_snapshot()
        files = snap.listdir(proc_dir(params.name))
        if not files:
            raise NotFoundError(f"unknown procedure {params.name!r}")
        _ensure_expected(snap, params.name, params.expected_version)
        edits: dict[str, bytes | None] = {}
        _collect_paths(snap, proc_dir(params.name), edits)
        return Change(edits=edits)


def _collect_paths(
    snap: Snapshot, directory: str, into: dict[str, bytes | None], value: bytes | None = None
) -> None:
    for entry_name, (mode, _sha) in snap.listdir(directory).items():
        path = f"{directory}/{entry_name}"
        if mode == "40000":
            _collect_paths(snap, path, into, value)
        else:
            into[path] = value


# -- release -------------------------------------------------------------------------------


class ReleaseParams(_NamedParams):
    bump: Literal["auto", "major", "minor", "patch"] = "auto"
    version: SemVer | None = None
    message: str | None = None


class ReleaseProcedure(ActionType):
    api_name = "procedure.release"
    description = "Tag the procedure's latest version as procedures/<name>/vX.Y.Z (create-only)."
    Params = ReleaseParams

    def subject(self, params: ReleaseParams) -> str:
        return f"Release procedure {params.name}"

    def plan(
        self, params: ReleaseParams, context: ActionContext
    ) -> tuple[tuple[int, int, int], str, list[str]]:
        """(new version, commit to tag, reasons for the bump)."""
        snap = context.require_snapshot()
        name = params.name
        if snap.entry(proc_dir(name)) is None:
            raise NotFoundError(f"unknown procedure {name!r}")
        _check_releasable(snap, name, _entry(context))
        repo = _repo(context)
        target = repo.latest_version(name, snap.commit)
        assert target is not None
        tags = repo.release_tags(name, snap.commit)
        latest = tags.trusted[-1] if tags.trusted else None
        reasons: list[str] = []
        if latest is not None:
            released = Snapshot(snap.store, latest.commit)
            if released.entry(proc_dir(name)) == snap.entry(proc_dir(name)):
                raise UsageError(f"{name}: nothing changed since v{latest.label}")
        if params.version is not None:
            version = parse_semver(params.version)
            assert version is not None
            if latest is not None and version <= latest.version:
                raise UsageError(
                    f"{name}: version {params.version} is not above the latest release v{latest.label}"
                )
            _refuse_taken(name, version, tags)
            return version, target, reasons
        bump = params.bump
        if bump == "auto":
            if latest is None:
                bump = "minor"
            else:
                entry = _entry(context)
                old = Snapshot(snap.store, latest.commit).read_text(code_path(name))
                new = snap.read_text(code_path(name))
                compat = compare(
                    code_signature(old or "", entry) if old else None,
                    code_signature(new or "", entry) if new else None,
                )
                bump, reasons = compat.bump, list(compat.reasons)
        version = bump_version(latest.version if latest else None, bump)
        _refuse_taken(name, version, tags)
        return version, target, reasons

    def apply(self, params: ReleaseParams, context: ActionContext) -> Change:
        version, target, reasons = self.plan(params, context)
        label = format_semver(version)
        text = params.message or f"Release {params.name} {label}"
        if reasons:
            text += "\n\n" + "\n".join(f"- {r}" for r in reasons)
        return Change(
            tags=[_release_tag(params.name, version, text, target)],
            message=self.subject(params),
        )


def _release_tag(
    name: str, version: tuple[int, int, int], message: str, target: str | None = None
) -> TagSpec:
    """The tag of a release, with the trailer that makes it one proctor trusts."""
    return TagSpec(tag_name(name, version), message, target, (release_trailer(name, version),))


def _refuse_taken(name: str, version: tuple[int, int, int], tags: ReleaseTags) -> None:
    """A foreign tag already holding the version's name is in the way: say which."""
    foreign = tags.foreign_for(version, name)
    if foreign is not None:
        raise UsageError(
            f"{name}: the next version {format_semver(version)} is taken by the foreign tag "
            f"{foreign.tag} ({foreign.reason}); delete it (git tag -d {foreign.tag}) or "
            "release another version with --version"
        )


# -- rollback ------------------------------------------------------------------------------


class RollbackParams(_NamedParams):
    to: SemVer


class RollbackProcedure(_CodeAction):
    api_name = "procedure.rollback"
    description = (
        "Restore a release's files in a new commit and tag it as a new release, "
        "bumped as the restored signature demands against the latest release."
    )
    Params = RollbackParams

    def __init__(self) -> None:
        self._decided_as: str | None = None

    def subject(self, params: RollbackParams) -> str:
        return f"Roll back procedure {params.name} to v{params.to.lstrip('v')}"

    def _release(self, params: RollbackParams, snap: Snapshot, context: ActionContext) -> Release:
        tags = _repo(context).release_tags(params.name, snap.commit)
        wanted = parse_semver(params.to)
        assert wanted is not None
        release = tags.find(wanted)
        if release is None:
            raise tags.unknown(params.name, params.to)
        return release

    def amounts_to(self, params: RollbackParams, context: ActionContext) -> type[ActionType]:
        """The action the rollback is on the current snapshot: a create (the procedure is
        gone now), a delete (the release holds nothing of it) or an update."""
        snap = context.require_snapshot()
        old = Snapshot(snap.store, self._release(params, snap, context).commit)
        now = snap.entry(proc_dir(params.name)) is not None
        then = old.entry(proc_dir(params.name)) is not None
        if not then:
            return DeleteProcedure
        return UpdateProcedure if now else CreateProcedure

    def governed_as(
        self, params: RollbackParams, context: ActionContext
    ) -> list[tuple[type[ActionType], BaseModel]]:
        # Policy on the action a rollback amounts to holds for the rollback too, so a
        # delete that policy denies cannot be made as a rollback to an empty release.
        # It also makes a release (its tag), so policy on releases holds for it as well.
        kind = self.amounts_to(params, context)
        self._decided_as = kind.api_name
        release = (ReleaseProcedure, ReleaseParams(name=params.name))
        if kind is DeleteProcedure:
            return [(kind, DeleteParams(name=params.name)), release]
        snap = context.require_snapshot()
        old = Snapshot(snap.store, self._release(params, snap, context).commit)
        code = old.read_text(code_path(params.name)) or ""
        if kind is CreateProcedure:
            return [(kind, CreateParams(name=params.name, code=code)), release]
        return [(kind, UpdateParams(name=params.name, code=code)), release]

    def apply(self, params: RollbackParams, context: ActionContext) -> Change:
        snap = context.require_snapshot()
        name = params.name
        kind = self.amounts_to(params, context)
        if self._decided_as is not None and kind.api_name != self._decided_as:
            raise ConcurrencyError(
                f"{name} changed while rolling back: the rollback is now a {kind.api_name}, "
                f"not the {self._decided_as} policy decided; try again",
                expected=None,
                actual=snap.commit,
            )
        tags = _repo(context).release_tags(name, snap.commit)
        release = self._release(params, snap, context)
        old = Snapshot(snap.store, release.commit)
        if old.entry(proc_dir(name)) == snap.entry(proc_dir(name)):
            raise UsageError(f"{name} is already as released in v{release.label}")
        edits: dict[str, bytes | None] = {}
        _collect_paths(snap, proc_dir(name), edits, None)
        restored: dict[str, bytes | None] = {}
        _collect_paths(old, proc_dir(name), restored, None)
        for path in restored:
            edits[path] = old.read(path)
        # Callers hold the latest release: the restored code is judged against it as any
        # new release is, so a rollback that drops a parameter is a major release.
        entry = _entry(context)
        latest = tags.trusted[-1]
        compat = compare(
            _signature_or_none(
                Snapshot(snap.store, latest.commit).read_text(code_path(name)), entry
            ),
            _signature_or_none(old.read_text(code_path(name)), entry),
        )
        new_version = bump_version(latest.version, compat.bump)
        _refuse_taken(name, new_version, tags)
        message = (
            f"Roll back {name} to v{release.label} as v{format_semver(new_version)}\n\n"
            f"Rolls back to release {release.tag} ({short(release.commit)})."
        )
        if compat.reasons:
            message += f"\n\nA {compat.bump} release against v{latest.label}:\n" + "\n".join(
                f"- {r}" for r in compat.reasons
            )
        return Change(
            edits=edits,
            message=self.subject(params),
            tags=[_release_tag(name, new_version, message)],
        )

    # The restored code is checked as any new code is (``_CodeAction.code_to_check``):
    # a release is trusted for where it came from, not for what today's rules say of it.


BUILTIN_ACTIONS: tuple[type[ActionType], ...] = (
    CreateProcedure,
    UpdateProcedure,
    DeleteProcedure,
    ReleaseProcedure,
    RollbackProcedure,
)
