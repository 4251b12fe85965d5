"""The entry-point scan agrees with importlib.metadata on real installed distributions,
and answers pydantic's plugin search for the CLI only when it can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points as std_entry_points
from pathlib import Path

import pytest
from conftest import git, python_json

from proctor.core.entrypoints import _parse, entry_points


def test_matches_importlib_metadata_for_console_scripts() -> None:
    ours = {(ep.name, ep.value) for ep in entry_points("console_scripts")}
    # Our scan drops extras ("mcp.cli:app [cli]"): they name no object to load.
    std = {
        (ep.name, ep.value.split("[", 1)[0].strip())
        for ep in std_entry_points(group="console_scripts")
    }
    assert ("proctor", "proctor.cmdserver.client:main") in ours
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


# A CLI write in a fresh interpreter: its outcome, whether importlib.metadata was
# imported, and whether pydantic's plugin loader is the one proctor put in place.
WRITE = """
import json, sys
from proctor.cli import main
rc = main(["--repo", sys.argv[1], "procedure", "update", "greet", "--code", sys.argv[2]])
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps({
    "rc": rc,
    "metadata": "importlib.metadata" in sys.modules,
    "spared": loader is not None and getattr(loader, "__file__", None) is None,
}))
"""

# A pydantic plugin that writes down each validator pydantic asks it for.
PLUGIN = """
import os

class _Recorder:
    def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind,
                             config, plugin_settings):
        with open(os.environ["SEEN_FILE"], "a", encoding="utf-8") as fh:
            fh.write(schema_type_path.name + "\\n")
        return None, None, None

plugin = _Recorder()
"""


def _cli_write(store: Path, tmp_path: Path, extra_path: Path | None = None) -> dict[str, object]:
    code = tmp_path / "new.py"
    code.write_text('def run(name: str) -> str:\n    return "hi " + name\n')
    env = {**os.environ, "SEEN_FILE": str(tmp_path / "seen.txt")}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    out: dict[str, object] = python_json(WRITE, str(store), str(code), env=env)
    return out


def test_a_cli_write_spares_pydantic_a_plugin_search_that_would_find_none(
    store: Path, tmp_path: Path
) -> None:
    """No distribution declares a pydantic plugin: the write builds its models without
    importing importlib.metadata, and commits as before."""
    out = _cli_write(store, tmp_path)
    assert out == {"rc": 0, "metadata": False, "spared": True}
    assert "hi " in git(store, "show", "HEAD:procedures/greet/main.py")


def test_a_declared_pydantic_plugin_is_still_loaded_by_a_cli_write(
    store: Path, tmp_path: Path
) -> None:
    """A distribution on the path declares a pydantic plugin: pydantic's own loader runs
    and the plugin sees the validators the write builds."""
    site = tmp_path / "site"
    (site / "recorder-1.0.dist-info").mkdir(parents=True)
    (site / "recorder-1.0.dist-info" / "entry_points.txt").write_text(
        "[pydantic]\nrecorder = recorder_plugin:plugin\n"
    )
    (site / "recorder_plugin.py").write_text(PLUGIN)
    out = _cli_write(store, tmp_path, extra_path=site)
    assert out == {"rc": 0, "metadata": True, "spared": False}
    seen = (tmp_path / "seen.txt").read_text().split()
    assert "UpdateParams" in seen and "ProcedureSpec" in seen


SPARE = """
import json, sys
from proctor.core import entrypoints
{setup}
print(json.dumps(entrypoints.spare_pydantic_plugin_scan()))
"""


@pytest.mark.parametrize(
    ("name", "setup"),
    [
        ("a zip on sys.path", "sys.path.append(sys.argv[1])"),
        ("an unknown pydantic release", "entrypoints._PYDANTIC_KNOWN = ((1, 0), (2, 0))"),
        (
            "a finder that reports distributions",
            "class F:\n    def find_spec(self, *a): return None\n"
            "    def find_distributions(self, *a, **k): return []\n"
            "sys.meta_path.append(F())",
        ),
        ("the loader already imported", "import pydantic.plugin._loader"),
    ],
)
def test_pydantic_searches_as_usual_where_the_scan_cannot_answer_for_it(
    tmp_path: Path, name: str, setup: str
) -> None:
    archive = tmp_path / "dists.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive
    script = SPARE.format(setup=setup)
    base = subprocess.run(
        [sys.executable, "-c", SPARE.format(setup=""), str(archive)],
        capture_output=True,
        text=True,
        check=True,
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(archive)], capture_output=True, text=True, check=True
    )
    assert (json.loads(base.stdout), json.loads(proc.stdout)) == (True, False), name
