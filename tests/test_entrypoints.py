"""The entry-point scan agrees with importlib.metadata on real installed distributions."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points as std_entry_points
from pathlib import Path

from proctor.core.entrypoints import _parse, entry_points


def test_matches_importlib_metadata_for_console_scripts() -> None:
    ours = {(ep.name, ep.value) for ep in entry_points("console_scripts")}
    # Our scan drops extras ("mcp.cli:app [cli]"): they name no object to load.
    std = {
        (ep.name, ep.value.split("[", 1)[0].strip())
        for ep in std_entry_points(group="console_scripts")
    }
    assert ("proctor", "proctor.cli:main") in ours
    assert ours == std


def test_first_distribution_on_the_path_wins_and_load_resolves_attrs(tmp_path: Path) -> None:
    for i, where in enumerate(("first", "second")):
        d = tmp_path / where / "demo_pkg-1.0.dist-info"
        d.mkdir(parents=True)
        (d / "entry_points.txt").write_text(f"[proctor]\ndemo = json:decoder.JSONDecoder{i}\n")
    found = entry_points("proctor", path=[str(tmp_path / "first"), str(tmp_path / "second")])
    assert [(ep.name, ep.value, ep.version) for ep in found] == [
        ("demo", "json:decoder.JSONDecoder0", "1.0")
    ]
    import json.decoder

    ok = type(found[0])("x", "json:decoder.JSONDecoder", "d", None)
    assert ok.load() is json.decoder.JSONDecoder
    assert sys.modules["json"] is not None


def test_parse_sections_comments_and_extras() -> None:
    text = (
        "[other]\na = b\n# comment\n[proctor]\n good = pkg.mod:obj [extra]\n\n;x\n[more]\nz = y\n"
    )
    assert _parse(text, "proctor") == [("good", "pkg.mod:obj")]
