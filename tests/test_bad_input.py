"""Bad input through the real CLI: one clear line, the documented exit code, and the
repository exactly as it was (status, refs, fsck)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GREET, git, repo_state, run_cli
from conftest import write_file as write


def assert_refused(result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    lines = [line for line in result.err.strip().splitlines() if line]
    assert lines, "an error message is expected on stderr"
    assert lines[0].startswith("error: ") or lines[0].startswith("Error: "), lines
    for needle in needles:
        assert needle in result.err, (needle, result.err)


BAD_NAMES = [
    ("a/b", "path separator"),
    ("..", "path separator"),
    ("../escape", "path separator"),
    ("has space", "whitespace"),
    ("Upper", "uppercase"),
    ("x" * 65, "longer than 64"),
    ("1starts_with_digit", "must start with a-z"),
    ("dash-name", "must start with a-z"),
    ("", "is empty"),
]


@pytest.mark.parametrize("name,why", BAD_NAMES)
def test_bad_procedure_names_are_refused_before_git(
    store: Path, tmp_path: Path, name: str, why: str
) -> None:
    code = write(tmp_path / "main.py", GREET)
    before = repo_state(store)
    result = run_cli("--repo", str(store), "procedure", "create", name, "--code", str(code))
    assert_refused(result, 2, why)
    assert repo_state(store) == before


def test_nul_in_name_is_refused(store: Path) -> None:
    before = repo_state(store)
    result = run_cli(
        "--repo",
        str(store),
        "action",
        "run",
        "procedure.create",
        "-p",
        'name="a\\u0000b"',
        "-p",
        'code="def run():\\n    return 1\\n"',
    )
    assert_refused(result, 2, "NUL")
    assert repo_state(store) == before


def test_name_of_64_characters_is_fine(store: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", GREET)
    result = run_cli("--repo", str(store), "procedure", "create", "a" * 64, "--code", str(code))
    assert result.code == 0, result.err


def test_unparsable_code_names_the_line(store: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", "def run(x):\n    return x\n\ndef broken(:\n")
    before = repo_state(store)
    result = run_cli("--repo", str(store), "procedure", "create", "broken", "--code", str(code))
    assert_refused(result, 2, "syntax error at line 4")
    assert repo_state(store) == before


def test_update_with_unparsable_code(store: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", "def run(name: str) -> str\n    return name\n")
    before = repo_state(store)
    result = run_cli("--repo", str(store), "procedure", "update", "greet", "--code", str(code))
    assert_refused(result, 2, "syntax error at line 1")
    assert repo_state(store) == before


def test_metadata_that_is_not_json(store: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", GREET)
    meta = write(tmp_path / "metadata.json", "{not json")
    before = repo_state(store)
    result = run_cli(
        "--repo",
        str(store),
        "procedure",
        "create",
        "other",
        "--code",
        str(code),
        "--metadata",
        str(meta),
    )
    assert_refused(result, 2, "not valid JSON")
    assert repo_state(store) == before


@pytest.mark.parametrize(
    "metadata,needle",
    [
        (
            {"name": "other", "parameters": [{"name": "name", "required": "perhaps"}]},
            "parameters.0.required",
        ),
        ({"name": "other", "unknown_field": 1}, "unknown_field"),
        (
            {"name": "other", "parameters": [{"name": "not an identifier"}]},
            "not a Python identifier",
        ),
        ({"name": "different", "parameters": [{"name": "name"}]}, "names 'different'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_metadata_that_fails_validation(
    store: Path, tmp_path: Path, metadata: object, needle: str
) -> None:
    code = write(tmp_path / "main.py", GREET)
    meta = write(tmp_path / "metadata.json", json.dumps(metadata))
    before = repo_state(store)
    result = run_cli(
        "--repo",
        str(store),
        "procedure",
        "create",
        "other",
        "--code",
        str(code),
        "--metadata",
        str(meta),
    )
    assert_refused(result, 2, needle)
    assert repo_state(store) == before


def test_metadata_signature_mismatch(store: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", GREET)
    meta = write(
        tmp_path / "metadata.json",
        json.dumps({"name": "other", "parameters": [{"name": "name"}, {"name": "extra"}]}),
    )
    before = repo_state(store)
    result = run_cli(
        "--repo",
        str(store),
        "procedure",
        "create",
        "other",
        "--code",
        str(code),
        "--metadata",
        str(meta),
    )
    assert_refused(result, 2, "'extra' is in metadata.json but not in run()")
    assert repo_state(store) == before


@pytest.mark.parametrize(
    "args,needle",
    [
        (["procedure", "show", "nosuch"], "unknown procedure 'nosuch'"),
        (["procedure", "history", "nosuch"], "unknown procedure 'nosuch'"),
        (["procedure", "show", "greet@9.9.9"], "unknown version 9.9.9 of greet"),
        (["procedure", "show", "greet@no-such-rev"], "unknown revision"),
        (["procedure", "diff", "greet", "1.0.0"], "unknown version 1.0.0"),
        (["procedure", "rollback", "greet", "--to", "1.0.0"], "unknown version 1.0.0"),
        (["procedure", "release", "nosuch"], "unknown procedure 'nosuch'"),
        (["procedure", "delete", "nosuch"], "unknown procedure 'nosuch'"),
        (["procedure", "update", "nosuch", "--description", "x"], "unknown procedure 'nosuch'"),
        (["action", "run", "no.such.action"], "unknown action 'no.such.action'"),
        (["action", "run", "procedure.create", "-p", "bogus"], "-p expects KEY=VALUE"),
        (["action", "run", "procedure.delete", "-p", "name=greet", "-p", "colour=1"], "colour"),
        (["procedure", "release", "greet", "--version", "1.2"], "invalid version"),
        (["procedure", "release", "greet", "--version", "1.0.0", "--bump", "major"], "not both"),
        (["procedure", "update", "greet"], "nothing to update"),
        (["procedure", "create", "x", "--code", "/no/such/file.py"], "cannot read code file"),
    ],
)
def test_unknown_things(store: Path, args: list[str], needle: str) -> None:
    before = repo_state(store)
    result = run_cli("--repo", str(store), *args)
    assert_refused(result, 2, needle)
    assert repo_state(store) == before


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = run_cli("--repo", str(plain), "procedure", "list")
    assert_refused(result, 2, "not a git repository")
    assert list(plain.iterdir()) == []
    missing = run_cli("--repo", str(tmp_path / "missing"), "procedure", "list")
    assert_refused(missing, 2, "no such directory")


def test_detached_head(store: Path, tmp_path: Path) -> None:
    git(store, "checkout", "-q", "--detach")
    code = write(tmp_path / "main.py", GREET)
    before = repo_state(store)
    result = run_cli("--repo", str(store), "procedure", "create", "other", "--code", str(code))
    assert_refused(result, 2, "HEAD is detached")
    assert repo_state(store) == before


def test_first_commit_on_unborn_branch(repo: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "main.py", GREET)
    assert git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False) == ""
    result = run_cli("--repo", str(repo), "procedure", "create", "greet", "--code", str(code))
    assert result.code == 0, result.err
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(repo, "rev-parse", "HEAD^", check=False).strip() in ("", "HEAD^")
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "procedures/greet/main.py").read_text() == GREET


@pytest.mark.parametrize("dirty", ["modified", "staged", "untracked"])
def test_uncommitted_changes_in_a_touched_path(store: Path, tmp_path: Path, dirty: str) -> None:
    target = store / "procedures/greet/main.py"
    if dirty == "untracked":
        # An untracked file where a new procedure would be written.
        target = write(store / "procedures/fresh/main.py", "# mine\n")
        name = "fresh"
    else:
        target.write_text(GREET + "# my local edit\n")
        if dirty == "staged":
            git(store, "add", str(target))
        name = "greet"
    code = write(tmp_path / "main.py", 'def run(name: str) -> str:\n    return "hi " + name\n')
    before = repo_state(store)
    mine = target.read_bytes()
    verb = "create" if name == "fresh" else "update"
    result = run_cli("--repo", str(store), "procedure", verb, name, "--code", str(code))
    assert_refused(result, 2, "uncommitted changes in procedures/")
    assert repo_state(store) == before
    assert target.read_bytes() == mine


def test_uncommitted_change_elsewhere_does_not_block(store: Path, tmp_path: Path) -> None:
    (store / "notes.txt").write_text("mine\n")
    code = write(tmp_path / "main.py", 'def run(name: str) -> str:\n    return "hi " + name\n')
    result = run_cli("--repo", str(store), "procedure", "update", "greet", "--code", str(code))
    assert result.code == 0, result.err
    assert (store / "notes.txt").read_text() == "mine\n"
    assert git(store, "status", "--porcelain") == "?? notes.txt\n"


def test_json_error_object(store: Path) -> None:
    result = run_cli("--repo", str(store), "--json", "procedure", "show", "nosuch")
    assert result.code == 2
    data = json.loads(result.out)
    assert data == {
        "status": "invalid",
        "error": "NotFoundError",
        "errors": ["unknown procedure 'nosuch'"],
    }


def test_unsafe_code_is_refused_with_findings(store: Path, tmp_path: Path) -> None:
    code = write(
        tmp_path / "main.py",
        "import os\n\ndef run(name: str) -> str:\n    os.system(name)\n    return name\n",
    )
    before = repo_state(store)
    result = run_cli(
        "--repo", str(store), "--json", "procedure", "update", "greet", "--code", str(code)
    )
    assert result.code == 2, result.err
    data = json.loads(result.out)
    assert (data["status"], data["action"], data["commit"]) == ("invalid", "procedure.update", None)
    assert any(":4:" in e and "PS" in e for e in data["errors"]), data["errors"]
    assert any(f["line"] == 4 and f["code"].startswith("PS") for f in data["findings"])
    assert repo_state(store) == before


def test_import_reads_only_regular_files_of_bounded_size(store: Path, tmp_path: Path) -> None:
    """``proctor import PATH`` reads its files as every other input file is read: a FIFO
    (given, or found in a folder) never hangs it, a file over the limit is refused by its
    size, before anything is read or written."""
    import os

    os.mkfifo(tmp_path / "fifo.json")
    folder = tmp_path / "folder"
    folder.mkdir()
    os.mkfifo(folder / "x.json")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 4_000_001)
    before = repo_state(store)
    for path, why in (
        (tmp_path / "fifo.json", "is a FIFO, not a regular file"),
        (folder, "is a FIFO, not a regular file"),
        (big, "the limit is 4000000 bytes"),
    ):
        result = run_cli("--repo", str(store), "import", str(path))
        assert_refused(result, 2, why)
    assert repo_state(store) == before


def test_json_nested_too_deep_is_bad_input_not_a_traceback(store: Path, tmp_path: Path) -> None:
    """A few kilobytes of ``[[[[...`` made json raise RecursionError: metadata files,
    imported files and ``-p`` values nested deeper than 64 levels are refused (exit 2)."""
    deep = "[" * 20_000 + "]" * 20_000
    meta = write(tmp_path / "deep.json", deep)
    code = write(tmp_path / "main.py", GREET)
    before = repo_state(store)
    runs = [
        ("procedure", "create", "deep", "--code", str(code), "--metadata", str(meta)),
        ("import", str(meta)),
        ("action", "run", "procedure.update", "-p", "name=greet", "-p", f"description={deep}"),
        ("policy", "explain", "procedure.update", "-p", f"description={deep}"),
    ]
    for args in runs:
        result = run_cli("--repo", str(store), *args)
        assert_refused(result, 2, "nested more than 64 levels deep")
        assert "Traceback" not in result.err
    assert repo_state(store) == before
