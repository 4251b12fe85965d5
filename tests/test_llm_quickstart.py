"""The quickstart's generate step: offline, from the cassette shipped in the package."""

from __future__ import annotations

from pathlib import Path

from conftest import git

from proctor.quickstart import SLUG_CODE, quickstart_cassettes, run_quickstart


def test_quickstart_generates_slugify_from_the_packaged_cassette(tmp_path: Path) -> None:
    lines: list[str] = []
    ws = run_quickstart(tmp_path / "qs", lines.append)
    try:
        view = ws.get_procedure("slugify")
        assert view.code == SLUG_CODE
        gen = view.spec.generation
        assert gen is not None and gen.backend == "replay" and gen.source == "model"
        assert gen.examples is not None and gen.examples["passed"] == 2
        assert gen.confidence == 0.95 and gen.band == "apply"
        assert ws.run("slugify", {"title": "A B"}).value == "a-b"
    finally:
        ws.close()
    subjects = git(tmp_path / "qs", "log", "--format=%s").splitlines()
    at = subjects.index("Generate procedure slugify (confidence 0.95)")
    assert subjects[at + 1] == "Import 1 procedure (metadata only)"
    assert any("applied: commit" in line and "examples 2/2 passed" in line for line in lines)
    # Generation is counted by the metrics plugin, through the events the workspace sends.
    from proctor.plugins.metrics import exposition

    text = exposition(tmp_path / "qs" / ".git")
    assert 'proctor_llm_completed_total{outcome="applied"} 1.0' in text
    assert 'proctor_llm_stage_seconds_count{stage="generate"} 1.0' in text
    assert 'proctor_llm_stage_seconds_count{stage="examples"}' in text
    # The cassette is package data, next to the module, not a test file.
    assert quickstart_cassettes().is_relative_to(Path(__file__).parents[1] / "proctor")
