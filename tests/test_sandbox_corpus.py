"""The escape corpus against every level this machine offers (see tests/sandbox_corpus.py).

A cell whose level is unavailable here is skipped with the reason; a cell the level does
not claim is skipped saying so (docs/runs.md lists what each level blocks). Every other
cell must come back blocked or killed, with the host untouched and the right status.

A subset, one escape per status, also goes through ``Workspace.run``, the way
``proctor run`` runs a procedure: a passing check verdict is planted for its code (the
checks would refuse it), and the run log's row must carry the status and level the run
ended with. A procedure left to the checks is recorded as ``denied``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from runs_helpers import make_store
from sandbox_corpus import (
    ESCAPES,
    LIMITS,
    PROFILES,
    Escape,
    Host,
    host,
    profile_missing,
    run_escape,
)

from proctor import Workspace
from proctor.runs.sandbox import SandboxResult, probe

RECORDED = ("secret_file", "spawn", "memory_bomb", "infinite_loop", "flood")


@pytest.fixture(scope="module")
def corpus_host() -> Iterator[Host]:
    with host() as h:
        yield h


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("escape", ESCAPES, ids=[e.name for e in ESCAPES])
def test_escape_is_blocked(escape: Escape, profile: str, corpus_host: Host) -> None:
    missing = profile_missing(profile)
    if missing:
        pytest.skip(missing)
    if not escape.claims(profile):
        pytest.skip(f"{profile} does not claim to stop: {escape.title}")
    verdict = run_escape(escape, profile, corpus_host)
    assert verdict.blocked, f"{escape.title} at {profile}: {verdict.detail}"
    assert verdict.result is not None
    if verdict.status == "ok":  # the procedure ran to its end: at the level asked for
        assert verdict.result.level == PROFILES[profile]["level"]


def _store(root: Path, profile: str) -> Path:
    """A store whose committed ``[runs]`` reaches ``profile`` at its best level, with the
    corpus's limits, holding every recorded escape as a procedure committed by plain git
    (as a procedure no action ever checked would be)."""
    disable = sorted(PROFILES[profile].get("disable", ()))
    limits = "\n".join(
        f"{key} = {getattr(LIMITS, key)}" for key in ("memory", "cpu", "processes", "output")
    )
    config = (
        f"[runs]\ndisable = {json.dumps(disable)}\n\n[runs.rollback]\nenabled = false\n\n"
        f"[runs.limits]\n{limits}\noutput-max = {LIMITS.output_max}\n"
    )
    repo = make_store(root / profile.lower(), config)
    for escape in ESCAPES:
        if escape.name in RECORDED:
            proc = repo / "procedures" / escape.name
            proc.mkdir(parents=True)
            (proc / "main.py").write_text(escape.code())
            meta = {"name": escape.name, "capabilities": escape.capabilities}
            (proc / "metadata.json").write_text(json.dumps(meta))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Add the recorded escapes")
    return repo


@pytest.fixture(scope="module")
def corpus_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One store per profile, made when a test first asks for it."""
    root = tmp_path_factory.mktemp("corpus-stores")

    class Lazy(dict[str, Path]):
        def __missing__(self, profile: str) -> Path:
            self[profile] = _store(root, profile)
            return self[profile]

    yield Lazy()


def _reachable(profile: str) -> str | None:
    """Why ``Workspace.run`` cannot run at ``profile``, or None: it runs at the best level
    the machine offers under the configured ``disable``, with no level of its own."""
    kw = PROFILES[profile]
    best = probe(namespaces="namespaces" not in kw.get("disable", ())).best
    if best != kw["level"]:
        return f"Workspace.run runs at the best level ({best}); {profile} is reached only by run_in_sandbox"
    return None


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("name", RECORDED)
def test_escape_through_a_run_is_recorded_with_its_status(
    name: str, profile: str, corpus_host: Host, corpus_stores: dict[str, Path]
) -> None:
    missing = profile_missing(profile) or _reachable(profile)
    if missing:
        pytest.skip(missing)
    escape = next(e for e in ESCAPES if e.name == name)
    if not escape.claims(profile):
        pytest.skip(f"{profile} does not claim to stop: {escape.title}")
    records: list[Any] = []
    with Workspace.open(corpus_stores[profile], actor="corpus@example.com") as ws:
        pv = ws.runs.resolve(name, "tip")
        verdict = ws.runs.verdict_path(pv)
        verdict.parent.mkdir(parents=True, exist_ok=True)
        verdict.write_text(json.dumps({"blob": pv.blob, "errors": []}))

        def through_a_run(e: Escape, _p: str, h: Host, _caps: dict[str, Any]) -> SandboxResult:
            record = ws.run(name, h.params, version="tip", timeout=e.timeout)
            records.append(record)
            return SandboxResult(
                record.status,  # type: ignore[arg-type]
                value=record.value,
                error_type=record.error_type,
                error_message=record.error_message,
                stdout=record.stdout,
                stderr=record.stderr,
                level=record.level,
                reason=record.reason,
            )

        result = run_escape(escape, profile, corpus_host, runner=through_a_run)
        assert result.blocked, f"{escape.title} at {profile} through a run: {result.detail}"
        [record] = records
        assert record.recorded, record.warnings
        [row] = ws.runs.history(name, limit=1)
    assert (row.run_id, row.status, row.level) == (record.run_id, record.status, record.level)
    assert row.status in escape.statuses and row.level == PROFILES[profile]["level"]
    assert (row.actor, row.purpose) == ("corpus@example.com", "run")
    if row.status != "ok":
        assert row.error  # the reason or the exception, one line


def test_an_escape_left_to_the_checks_is_recorded_denied(corpus_host: Host, tmp_path: Path) -> None:
    profile = next((p for p in PROFILES if not profile_missing(p) and not _reachable(p)), None)
    if profile is None:
        pytest.skip("no profile is reachable through Workspace.run here")
    with Workspace.open(_store(tmp_path, profile), actor="corpus@example.com") as ws:
        record = ws.run("spawn", corpus_host.params, version="tip")
        [row] = ws.runs.history("spawn", limit=1)
    assert (record.status, record.level) == ("denied", None)
    assert record.reason and record.reason.startswith("the code does not pass the checks")
    assert (row.run_id, row.status, row.level) == (record.run_id, "denied", None)
