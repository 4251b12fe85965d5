"""The procedure lifecycle through the Python API, on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GREET, git

from proctor import Workspace
from proctor.core.errors import ConcurrencyError, NotFoundError, UsageError, ValidationFailed

V2 = 'def run(name: str, punct: str = "!") -> str:\n    return "hello " + name + punct\n'
V3_BREAKING = 'def run(who: str) -> str:\n    return "hello " + who\n'


def meta(name: str, *params: tuple[str, bool]) -> dict[str, object]:
    return {
        "name": name,
        "description": "Greets",
        "parameters": [{"name": p, "type": "str", "required": req} for p, req in params],
        "returns": "str",
    }


@pytest.fixture
def ws(repo: Path):
    with Workspace.open(repo, actor="ana@example.com") as w:
        yield w


def test_create_writes_one_commit_with_trailers(ws: Workspace, repo: Path) -> None:
    result = ws.execute("procedure.create", {"name": "greet", "code": GREET})
    assert result.status == "applied"
    assert git(repo, "rev-parse", "HEAD").strip() == result.commit
    body = git(repo, "log", "-1", "--format=%B")
    assert body.startswith("Create procedure greet\n")
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)")
    assert "Proctor-Action: procedure.create" in trailers
    assert "Proctor-Actor: ana@example.com" in trailers
    assert f"Proctor-Correlation-Id: {result.correlation_id}" in trailers
    assert "Proctor-Policy: ALLOW_IMMEDIATE" in trailers
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "procedures/greet/main.py").read_text() == GREET
    spec = json.loads((repo / "procedures/greet/metadata.json").read_text())
    # Derived from run()'s signature when no metadata is given.
    assert spec["name"] == "greet"
    assert [p["name"] for p in spec["parameters"]] == ["name"]
    assert spec["parameters"][0]["type"] == "str"
    assert spec["returns"] == "str"


def test_create_twice_is_refused(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(UsageError, match="already exists"):
        ws.execute("procedure.create", {"name": "greet", "code": GREET})
    assert git(repo, "rev-parse", "HEAD") == head


def test_update_release_auto_bumps_and_rollback(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    first = ws.execute("procedure.release", {"name": "greet"})
    assert first.tags == ["procedures/greet/v0.1.0"]

    with pytest.raises(UsageError, match="nothing changed since v0.1.0"):
        ws.execute("procedure.release", {"name": "greet"})

    # A new optional parameter: minor.
    ws.execute(
        "procedure.update",
        {"name": "greet", "code": V2, "metadata": meta("greet", ("name", True), ("punct", False))},
    )
    assert ws.execute("procedure.release", {"name": "greet"}).tags == ["procedures/greet/v0.2.0"]

    # A body-only change: patch.
    body_only = V2.replace('"hello "', '"hello, "')
    ws.execute("procedure.update", {"name": "greet", "code": body_only})
    assert ws.execute("procedure.release", {"name": "greet"}).tags == ["procedures/greet/v0.2.1"]

    # A renamed parameter: major.
    ws.execute(
        "procedure.update",
        {"name": "greet", "code": V3_BREAKING, "metadata": meta("greet", ("who", True))},
    )
    assert ws.execute("procedure.release", {"name": "greet", "bump": "auto"}).tags == [
        "procedures/greet/v1.0.0"
    ]

    history = ws.history("greet")
    assert [v.message for v in history] == [
        "Update procedure greet",
        "Update procedure greet",
        "Update procedure greet",
        "Create procedure greet",
    ]
    assert [v.breaking for v in history] == [True, False, False, False]
    assert "parameter 'name' removed or renamed" in history[0].reasons
    assert history[0].tags == ["v1.0.0"]
    assert history[-1].tags == ["v0.1.0"]
    assert history[-1].added > 0 and history[-1].removed == 0

    # The tag is annotated, points at the version commit and explains the bump.
    tag_body = git(
        repo,
        "for-each-ref",
        "--format=%(objecttype) %(contents)",
        "refs/tags/procedures/greet/v1.0.0",
    )
    assert tag_body.startswith("tag Release greet 1.0.0")
    assert "parameter 'name' removed or renamed" in tag_body

    # Rolling back renames 'who' to 'name' again: breaking for callers of v1.0.0, so major.
    rb = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert rb.tags == ["procedures/greet/v2.0.0"]
    assert (repo / "procedures/greet/main.py").read_text() == GREET
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "procedures/greet/v2.0.0^{commit}").strip() == rb.commit
    note = git(repo, "tag", "-l", "-n20", "procedures/greet/v2.0.0")
    assert "Rolls back to release procedures/greet/v0.1.0" in note
    assert "parameter 'who' removed or renamed" in note
    # History is never rewritten: every earlier commit is still an ancestor.
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "5"
    with pytest.raises(UsageError, match="already as released"):
        ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})


def test_explicit_version_must_grow(ws: Workspace) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    assert ws.execute("procedure.release", {"name": "greet", "version": "2.0.0"}).tags == [
        "procedures/greet/v2.0.0"
    ]
    ws.execute("procedure.update", {"name": "greet", "description": "Says hello"})
    with pytest.raises(UsageError, match="not above the latest release v2.0.0"):
        ws.execute("procedure.release", {"name": "greet", "version": "1.5.0"})
    assert ws.execute("procedure.release", {"name": "greet", "bump": "major"}).tags == [
        "procedures/greet/v3.0.0"
    ]


def test_show_at_version_and_revision(ws: Workspace) -> None:
    first = ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ws.execute("procedure.release", {"name": "greet"})
    ws.execute(
        "procedure.update",
        {"name": "greet", "code": V2, "metadata": meta("greet", ("name", True), ("punct", False))},
    )
    assert ws.get_procedure("greet").code == V2
    assert ws.get_procedure("greet", "0.1.0").code == GREET
    assert ws.get_procedure("greet", "v0.1.0").code == GREET
    assert ws.get_procedure("greet", first.commit).code == GREET
    assert ws.get_procedure("greet", "HEAD~1").code == GREET
    view = ws.get_procedure("greet")
    assert view.signature is not None and view.signature.names() == ["name", "punct"]
    assert view.releases == ["0.1.0"]
    with pytest.raises(NotFoundError):
        ws.get_procedure("greet", "0.9.0")


def test_diff_between_versions(ws: Workspace) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ws.execute("procedure.release", {"name": "greet"})
    ws.execute(
        "procedure.update",
        {"name": "greet", "code": V2, "metadata": meta("greet", ("name", True), ("punct", False))},
    )
    text = ws.diff("greet", "0.1.0")
    assert "-def run(name: str) -> str:" in text
    assert '+def run(name: str, punct: str = "!") -> str:' in text
    assert ws.diff("greet", "0.1.0", "0.1.0") == ""


def test_list_reads_every_description(ws: Workspace) -> None:
    for i in range(5):
        ws.execute(
            "procedure.create", {"name": f"p{i}", "code": GREET, "description": f"number {i}"}
        )
    listed = ws.list_procedures()
    assert [(p.name, p.description) for p in listed] == [(f"p{i}", f"number {i}") for i in range(5)]


def test_delete_keeps_history_and_releases(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ws.execute("procedure.release", {"name": "greet"})
    ws.execute("procedure.delete", {"name": "greet"})
    assert ws.list_procedures() == []
    assert not (repo / "procedures/greet").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert ws.get_procedure("greet", "0.1.0").code == GREET
    history = ws.history("greet")
    assert history[0].message == "Delete procedure greet"
    assert history[0].breaking and history[0].reasons == ["procedure deleted"]


def test_expected_version_guards_updates(ws: Workspace) -> None:
    first = ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ok = ws.execute(
        "procedure.update", {"name": "greet", "description": "v2", "expected_version": first.commit}
    )
    assert ok.status == "applied"
    with pytest.raises(ConcurrencyError) as info:
        ws.execute(
            "procedure.update",
            {"name": "greet", "description": "v3", "expected_version": first.commit},
        )
    assert info.value.expected == first.commit
    assert info.value.actual == ok.commit
    assert info.value.exit_code == 3
    # A change to another procedure does not make the version stale.
    ws.execute("procedure.create", {"name": "other", "code": GREET})
    assert (
        ws.execute(
            "procedure.update",
            {"name": "greet", "description": "v3", "expected_version": ok.commit},
        ).status
        == "applied"
    )


def test_mismatch_between_metadata_and_signature(ws: Workspace) -> None:
    with pytest.raises(ValidationFailed) as info:
        ws.execute(
            "procedure.create",
            {
                "name": "greet",
                "code": GREET,
                "metadata": meta("greet", ("name", True), ("extra", True)),
            },
        )
    assert info.value.findings == ["parameter 'extra' is in metadata.json but not in run()"]
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    # A metadata file that lists parameters must list them all.
    with pytest.raises(ValidationFailed, match="'punct' is in run\\(\\) but not in metadata.json"):
        ws.execute(
            "procedure.update",
            {"name": "greet", "code": V2, "metadata": meta("greet", ("name", True))},
        )


def test_code_without_entry_point(ws: Workspace) -> None:
    with pytest.raises(ValidationFailed, match="defines no top-level function run"):
        ws.execute("procedure.create", {"name": "greet", "code": "def main():\n    pass\n"})


def test_policy_from_committed_config(repo: Path) -> None:
    (repo / "proctor.toml").write_text(
        '[policy]\n"procedure.delete" = "DENY"\n"procedure.release" = "REQUIRE_PROPOSAL"\n'
    )
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "policy")
    with Workspace.open(repo, actor="ana@example.com") as ws:
        assert ws.execute("procedure.create", {"name": "greet", "code": GREET}).status == "applied"
        head = git(repo, "rev-parse", "HEAD")
        denied = ws.execute("procedure.delete", {"name": "greet"})
        assert denied.status == "denied" and denied.exit_code == 1
        assert denied.decision == "DENY"
        assert git(repo, "rev-parse", "HEAD") == head
        needs = ws.execute("procedure.release", {"name": "greet"})
        # Held for review: one commit adding the proposal, no release tag yet.
        assert needs.status == "proposed" and needs.decision == "REQUIRE_PROPOSAL"
        assert git(repo, "rev-parse", "HEAD~1") == head
        assert git(repo, "diff", "--name-only", head.strip(), "HEAD").split() == [
            f"proposals/{needs.proposal}.json"
        ]
        assert git(repo, "tag") == ""


def test_work_tree_config_does_not_loosen_committed_policy(repo: Path) -> None:
    (repo / "proctor.toml").write_text('[policy]\n"*" = "DENY"\n')
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "lock down")
    (repo / "proctor.toml").write_text("")  # an uncommitted attempt to lift it
    with Workspace.open(repo) as ws:
        assert ws.execute("procedure.create", {"name": "greet", "code": GREET}).status == "denied"


def test_store_ref_that_is_not_checked_out(repo: Path) -> None:
    (repo / "proctor.toml").write_text('store-ref = "refs/heads/store"\n')
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "config")
    with Workspace.open(repo) as ws:
        result = ws.execute("procedure.create", {"name": "greet", "code": GREET})
    assert git(repo, "rev-parse", "refs/heads/store").strip() == result.commit
    # The checked-out branch and work tree are untouched.
    assert not (repo / "procedures").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", "store:procedures/greet/main.py") == GREET


def test_init_commits_config_once(tmp_path: Path) -> None:
    target = tmp_path / "new"
    ws, created = Workspace.init(target)
    ws.close()
    assert created
    assert (target / "proctor.toml").exists()
    assert git(target, "status", "--porcelain") == ""
    ws, created = Workspace.init(target)
    ws.close()
    assert not created
    assert git(target, "rev-list", "--count", "HEAD").strip() == "1"


def test_executable_bit_and_nested_files_survive_rollback(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ws.execute("procedure.release", {"name": "greet"})
    ws.execute(
        "procedure.update",
        {"name": "greet", "code": V2, "metadata": meta("greet", ("name", True), ("punct", False))},
    )
    ws.execute("procedure.release", {"name": "greet"})
    ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert git(repo, "show", "HEAD:procedures/greet/main.py") == GREET
    assert (
        json.loads(git(repo, "show", "HEAD:procedures/greet/metadata.json"))["parameters"][0][
            "name"
        ]
        == "name"
    )
    assert git(repo, "fsck", "--strict", "--no-dangling") == ""


# -- metadata derived from run() and kept in step with it ---------------------------------

DOCUMENTED = '''\
def run(name: str, ratio: float = 0.5, *, verbose: bool = False, punctuation: str = "!") -> str:
    """Greet someone, politely.

    More prose that is not the summary.

    Args:
        name: Who to greet.
        ratio (float): How warm, from 0 to 1,
            on a linear scale.
        verbose: Say more.
    """
    return name
'''

NUMPY = '''\
import time


def run(items: list, when: float = time.time(), pair: tuple = (1, 2), *args, **kwargs) -> int:
    """Count things.

    Parameters
    ----------
    items : list
        The things to count.
    when : float, optional
        A moment.
    """
    return len(items)
'''


def stored_spec(repo: Path, name: str = "greet") -> dict:
    return json.loads(git(repo, "show", f"HEAD:procedures/{name}/metadata.json"))


def test_derived_metadata_keeps_defaults_kinds_and_docstrings(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": DOCUMENTED})
    spec = stored_spec(repo)
    assert spec["description"] == "Greet someone, politely."
    params = {p["name"]: p for p in spec["parameters"]}
    assert [p["name"] for p in spec["parameters"]] == ["name", "ratio", "verbose", "punctuation"]
    assert params["name"] == {
        "name": "name",
        "type": "str",
        "description": "Who to greet.",
        "default": None,
        "required": True,
        "kind": "positional",
        "default_repr": None,
    }
    assert (params["ratio"]["default"], params["ratio"]["required"]) == (0.5, False)
    assert params["ratio"]["description"] == "How warm, from 0 to 1, on a linear scale."
    assert (params["verbose"]["default"], params["verbose"]["kind"]) == (False, "keyword")
    assert params["punctuation"]["default"] == "!"
    assert params["punctuation"]["description"] == ""
    # --description wins over the docstring.
    ws.execute("procedure.create", {"name": "other", "code": DOCUMENTED, "description": "Mine"})
    assert stored_spec(repo, "other")["description"] == "Mine"


def test_defaults_that_are_not_json_are_kept_as_source(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "count", "code": NUMPY})
    spec = stored_spec(repo, "count")
    params = {p["name"]: p for p in spec["parameters"]}
    assert list(params) == ["items", "when", "pair"]  # *args and **kwargs are not listed
    assert params["items"]["description"] == "The things to count."
    assert params["when"]["description"] == "A moment."
    assert params["when"]["default"] is None and params["when"]["default_repr"] == "time.time()"
    assert params["pair"]["default"] is None and params["pair"]["default_repr"] == "(1, 2)"
    assert not params["when"]["required"] and not params["pair"]["required"]


def test_update_without_metadata_merges_with_the_stored_spec(ws: Workspace, repo: Path) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    described = stored_spec(repo)
    described["description"] = "Says hello"
    described["category"] = "examples"
    described["owners"] = ["ana@example.com"]
    described["parameters"][0]["description"] = "Who to greet"
    ws.execute("procedure.update", {"name": "greet", "metadata": described})

    # A new parameter: added with its default; the existing descriptions stay.
    ws.execute("procedure.update", {"name": "greet", "code": V2})
    spec = stored_spec(repo)
    assert (spec["description"], spec["category"], spec["owners"]) == (
        "Says hello",
        "examples",
        ["ana@example.com"],
    )
    assert [
        (p["name"], p["description"], p["default"], p["required"]) for p in spec["parameters"]
    ] == [
        ("name", "Who to greet", None, True),
        ("punct", "", "!", False),
    ]
    assert ws.execute("procedure.release", {"name": "greet"}).tags == ["procedures/greet/v0.1.0"]

    # A removed parameter is dropped, a changed default follows the code.
    ws.execute(
        "procedure.update",
        {"name": "greet", "code": 'def run(punct: str = "?") -> str:\n    return punct\n'},
    )
    spec = stored_spec(repo)
    assert [(p["name"], p["default"]) for p in spec["parameters"]] == [("punct", "?")]
    assert git(repo, "status", "--porcelain") == ""


def test_metadata_fields_left_out_come_from_the_signature(ws: Workspace, repo: Path) -> None:
    given = {"name": "greet", "category": "examples", "parameters": [{"name": "name"}]}
    ws.execute("procedure.create", {"name": "greet", "code": GREET, "metadata": given})
    spec = stored_spec(repo)
    assert spec["category"] == "examples" and spec["returns"] == "str"
    assert spec["parameters"][0]["type"] == "str" and spec["parameters"][0]["required"]
    # No "parameters" at all: every one derived.
    ws.execute("procedure.create", {"name": "other", "code": DOCUMENTED, "metadata": {}})
    assert len(stored_spec(repo, "other")["parameters"]) == 4


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("type", "int", "parameter 'ratio': type is 'int' in metadata.json but 'float' in run()"),
        ("default", 0.25, "parameter 'ratio': default is 0.25 in metadata.json but 0.5 in run()"),
        ("default", None, "parameter 'ratio': default is null in metadata.json but 0.5 in run()"),
        (
            "required",
            True,
            "parameter 'ratio': required is true in metadata.json but run() gives it the default 0.5",
        ),
        (
            "kind",
            "keyword",
            "parameter 'ratio': kind is 'keyword' in metadata.json but positional in run()",
        ),
    ],
)
def test_metadata_that_contradicts_the_signature_is_refused(
    ws: Workspace, repo: Path, field: str, value: object, message: str
) -> None:
    before = git(repo, "for-each-ref")
    given = {"name": "greet", "parameters": [{"name": n} for n in ("name", "ratio", "verbose")]}
    given["parameters"].append({"name": "punctuation"})
    given["parameters"][1][field] = value
    with pytest.raises(ValidationFailed) as info:
        ws.execute("procedure.create", {"name": "greet", "code": DOCUMENTED, "metadata": given})
    assert info.value.findings == [message]
    assert git(repo, "for-each-ref") == before


def test_more_contradictions_each_name_the_field(ws: Workspace) -> None:
    code = "def run(a: int, *, b: str = 'x') -> int:\n    return a\n"
    given = {
        "name": "p",
        "returns": "str",
        "parameters": [
            {"name": "a", "required": False, "default": 3},
            {"name": "b", "kind": "positional", "type": "list[ int ]"},
        ],
    }
    with pytest.raises(ValidationFailed) as info:
        ws.execute("procedure.create", {"name": "p", "code": code, "metadata": given})
    assert info.value.findings == [
        "parameter 'a': required is false in metadata.json but run() gives it no default",
        "parameter 'a': default is 3 in metadata.json but run() gives it no default",
        "parameter 'b': type is 'list[ int ]' in metadata.json but 'str' in run()",
        "parameter 'b': kind is 'positional' in metadata.json but keyword-only in run()",
        "returns is 'str' in metadata.json but 'int' in run()",
    ]
    # Spelling differences are not contradictions; "Any" says nothing.
    agreed = {
        "name": "p",
        "parameters": [{"name": "a", "type": "int"}, {"name": "b", "type": "Any", "default": "x"}],
    }
    assert ws.execute("procedure.create", {"name": "p", "code": code, "metadata": agreed}).commit


def test_expected_version_may_be_a_release(ws: Workspace) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ws.execute("procedure.release", {"name": "greet"})
    ok = ws.execute(
        "procedure.update", {"name": "greet", "description": "v2", "expected_version": "0.1.0"}
    )
    assert ok.status == "applied"
    with pytest.raises(ConcurrencyError):
        ws.execute(
            "procedure.update", {"name": "greet", "description": "v3", "expected_version": "v0.1.0"}
        )
    with pytest.raises(UsageError, match=r"unknown expected version '0.9.0'.*releases: 0.1.0"):
        ws.execute(
            "procedure.update", {"name": "greet", "description": "v3", "expected_version": "0.9.0"}
        )


@pytest.mark.parametrize(
    "later,bump,version",
    [
        (V2, "major", "v1.0.0"),  # rolling back drops 'punct', which v0.2.0 callers may pass
        (GREET.replace('"hello "', '"hi "'), "patch", "v0.2.1"),  # same signature
    ],
)
def test_rollback_is_bumped_as_the_restored_signature_demands(
    ws: Workspace, repo: Path, later: str, bump: str, version: str
) -> None:
    ws.execute("procedure.create", {"name": "greet", "code": GREET})
    ws.execute("procedure.release", {"name": "greet"})
    ws.execute("procedure.update", {"name": "greet", "code": later})
    ws.execute("procedure.release", {"name": "greet", "bump": "minor"})
    rb = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert rb.tags == [f"procedures/greet/{version}"]
    note = git(repo, "tag", "-l", "-n20", f"procedures/greet/{version}")
    assert "Rolls back to release procedures/greet/v0.1.0" in note
    if bump == "major":
        assert "A major release against v0.2.0" in note and "'punct' removed" in note


def test_list_fields_of_a_spec_start_empty_and_unshared() -> None:
    """The list fields default to ``[]`` (no factory): each spec still gets its own."""
    from proctor.procedures.spec import ProcedureSpec

    first, second = ProcedureSpec(name="a"), ProcedureSpec(name="b")
    first.owners.append("ana@example.org")
    first.capabilities.filesystem_write.append("out/")
    assert (second.owners, second.capabilities.filesystem_write) == ([], [])
    assert ProcedureSpec(name="c").model_dump()["parameters"] == []
