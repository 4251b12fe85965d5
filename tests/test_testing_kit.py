"""The testing kit as a plugin author uses it: a test file of theirs, run by pytest in
a subprocess (pytester), gets the fixtures from the ``pytest11`` entry point alone."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

AUTHOR_TESTS = """
import json
import types

import pytest

from proctor import hookimpl
from proctor.core.plugins import PluginInfo
from proctor.engine.actions import ActionType, Params
from proctor.store.gitstore import Change


class NoteParams(Params):
    text: str


class AddNote(ActionType):
    api_name = "note.add"
    description = "Write notes/latest.txt."
    Params = NoteParams

    def subject(self, params):
        return "Add a note"

    def apply(self, params, context):
        return Change(edits={"notes/latest.txt": params.text.encode()})


plugin = types.SimpleNamespace()


@hookimpl
def proctor_register_actions(register):
    register(AddNote)


plugin.proctor_register_actions = proctor_register_actions


@pytest.fixture
def proctor_plugins():
    return [plugin]


def test_my_action_commits_with_trailers(proctor_repo):
    result = proctor_repo.run_action("note.add", {"text": "hello"})
    info = proctor_repo.assert_commit(
        result, files=["notes/latest.txt"], subject="Add a note"
    )
    assert info.trailers["Proctor-Action"] == "note.add"
    assert proctor_repo.read("notes/latest.txt") == "hello"


def test_assert_commit_fails_on_the_wrong_files(proctor_repo):
    result = proctor_repo.run_action("note.add", {"text": "x"})
    with pytest.raises(AssertionError, match="files"):
        proctor_repo.assert_commit(result, files=["other.txt"])


def test_generation_with_the_fake_backend(proctor_repo, fake_llm):
    meta = {
        "name": "double",
        "description": "Double a number.",
        "parameters": [{"name": "x", "type": "int"}],
        "returns": "int",
    }
    assert proctor_repo.run_action("procedure.import", {"procedures": [meta]}).status == "applied"
    code = "def run(x: int) -> int:\\n    return 2 * x\\n"
    fake_llm.push(json.dumps({"code": code, "confidence": 0.95, "explanation": "x2"}))
    outcome, result = proctor_repo.generate("double", fake_llm)
    info = proctor_repo.assert_commit(result, action="procedure.generate")
    assert info.subject == "Generate procedure double (confidence 0.85)"
    assert proctor_repo.read("procedures/double/main.py") == code
    assert len(fake_llm.requests) == 1 and outcome.band.name == "apply"


def test_policy_decisions_are_real(proctor_repo):
    assert proctor_repo.run_action("note.add", {"text": "a"}).status == "applied"
    # A policy that sends notes to review: the pipeline, not the kit, decides.
    proctor_repo.plugins.register("strict", _Strict(), PluginInfo(name="strict", module="t"))
    result = proctor_repo.run_action("note.add", {"text": "b"})
    assert result.status == "failed" and result.decision == "REQUIRE_PROPOSAL"


class _Strict:
    @hookimpl
    def proctor_policy(self, action):
        return "REQUIRE_PROPOSAL" if action.api_name == "note.add" else None
"""


def test_plugin_authors_tests_pass_with_the_kit_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_author=AUTHOR_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_failing_assertion_of_the_kit_fails_the_authors_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_wrong="""
def test_expects_a_commit_that_was_not_made(proctor_repo):
    result = proctor_repo.run_action("procedure.delete", {"name": "nothing"})
"""
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unknown procedure 'nothing'*"])
