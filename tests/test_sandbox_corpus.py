"""The escape corpus against every level this machine offers (see tests/sandbox_corpus.py).

A cell whose level is unavailable here is skipped with the reason; a cell the level does
not claim is skipped saying so (docs/runs.md lists what each level blocks). Every other
cell must come back blocked or killed, with the host untouched and the right status.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_corpus import ESCAPES, PROFILES, Escape, Host, host, profile_missing, run_escape


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
