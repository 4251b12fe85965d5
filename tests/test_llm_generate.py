"""procedure.generate: skeleton, rounds of generate/check/examples/repair, confidence,
decision bands and the engine's decision, the generation block and the commit message.

The model is the fake backend (a paid API is the one thing mocked); the checks, the
sandboxed examples, git and the pipeline are real.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from proctor import Workspace
from proctor.core.errors import NotFoundError, UsageError
from proctor.core.governance import Decision
from proctor.llm.fake import FakeBackend
from proctor.llm.generate import (
    Evaluation,
    GenerationSettings,
    combine_confidence,
    decide_band,
)
from proctor.llm.skeleton import CodeExtractor
from proctor.procedures.spec import ProcedureSpec

ADD_META: dict[str, Any] = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": [
        {"name": "a", "type": "int", "description": "The first."},
        {"name": "b", "type": "int", "description": "The second.", "required": False, "default": 1},
    ],
    "returns": "int",
    "examples": [{"params": {"a": 2, "b": 3}, "expected": 5}, {"params": {"a": 1}, "expected": 2}],
    "steps": ["add a and b", "return the sum"],
}

GOOD = 'def run(a: int, b: int = 1) -> int:\n    """Add two integers."""\n    return a + b\n'
WRONG = 'def run(a: int, b: int = 1) -> int:\n    """Add two integers."""\n    return a - b\n'
UNSAFE = (
    "import os\n\n\ndef run(a: int, b: int = 1) -> int:\n"
    '    """Add two integers."""\n    os.system("true")\n    return a + b\n'
)
SETTINGS = GenerationSettings(backend="fake", model="test-model", max_repairs=2)


def reply(code: str, confidence: float, explanation: str = "adds") -> str:
    return json.dumps({"code": code, "confidence": confidence, "explanation": explanation})


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def meta_store(repo: Path) -> Path:
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    with ws:
        result = ws.import_procedures([ADD_META])
        assert result.status == "applied"
    return repo


# -- skeleton ----------------------------------------------------------------------------------


def test_skeleton_has_signature_docstring_checks_and_steps_and_is_deterministic() -> None:
    spec = ProcedureSpec.model_validate(ADD_META)
    code = CodeExtractor().extract(spec)
    assert code == CodeExtractor().extract(ProcedureSpec.model_validate(ADD_META))
    assert code.startswith("def run(a: int, b: int = 1) -> int:\n")
    assert '"""Add two integers.' in code and "a: The first." in code
    assert 'raise TypeError("a must be int, got "' in code
    assert "# 1. add a and b" in code and "# 2. return the sum" in code
    namespace: dict[str, Any] = {}
    exec(compile(code, "main.py", "exec"), namespace)
    with pytest.raises(TypeError):
        namespace["run"]("x")
    with pytest.raises(NotImplementedError):
        namespace["run"](1)


def test_skeleton_orders_keyword_and_positional_only_parameters_validly() -> None:
    spec = ProcedureSpec.model_validate(
        {
            "name": "mix",
            "parameters": [
                {"name": "p", "type": "str", "kind": "positional_only"},
                {"name": "q", "type": "float", "required": False, "default": 0.5},
                {"name": "r", "kind": "keyword"},
            ],
        }
    )
    code = CodeExtractor().extract(spec)
    assert code.startswith("def run(p: str, /, q: float = 0.5, *, r):")
    compile(code, "main.py", "exec")


# -- confidence and bands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "findings", "band", "decision", "approvals"),
    [
        (0.95, 0, "apply", Decision.ALLOW_IMMEDIATE, 0),
        (0.8, 0, "apply", Decision.ALLOW_IMMEDIATE, 0),
        (0.8, 1, "review", Decision.REQUIRE_PROPOSAL, 1),
        (0.79, 0, "review", Decision.REQUIRE_PROPOSAL, 1),
        (0.5, 0, "review", Decision.REQUIRE_PROPOSAL, 1),
        (0.49, 0, "expert", Decision.REQUIRE_PROPOSAL, 2),
        (0.0, 3, "expert", Decision.REQUIRE_PROPOSAL, 2),
    ],
)
def test_band_to_decision_mapping(
    confidence: float, findings: int, band: str, decision: Decision, approvals: int
) -> None:
    got = decide_band(confidence, findings)
    assert (got.name, got.decision, got.required_approvals) == (band, decision, approvals)
    assert got.expert == (band == "expert")


def test_confidence_is_model_times_checks_times_examples() -> None:
    clean = Evaluation(examples_total=2, examples_passed=2, examples_ran=True)
    assert combine_confidence(0.9, clean) == 0.9
    half = Evaluation(examples_total=2, examples_passed=1, examples_ran=True)
    assert combine_confidence(0.9, half) == 0.45
    warned = Evaluation(warnings=["w1", "w2"], examples_total=1, examples_passed=1)
    assert combine_confidence(1.0, warned) == 0.81
    assert combine_confidence(1.0, Evaluation(errors=["e"])) == 0.0
    untested = Evaluation()
    assert combine_confidence(0.88, untested) == 0.792  # 0.88 * 0.9: not enough to apply
    assert combine_confidence(1.5, clean) == 1.0


# -- the applied path --------------------------------------------------------------------------


def test_generate_applies_confident_code_that_passes_checks_and_examples(meta_store: Path) -> None:
    fake = FakeBackend([reply(GOOD, 0.9)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=fake)
        assert done.result.status == "applied", done.result.errors
        assert done.result.decision == "ALLOW_IMMEDIATE"
        assert done.outcome.confidence == 0.9 and done.outcome.band.name == "apply"
        view = ws.get_procedure("add")
        assert view.code == GOOD
        gen = view.spec.generation
        assert gen is not None
        assert (gen.model, gen.backend, gen.source, gen.confidence) == (
            "test-model",
            "fake",
            "model",
            0.9,
        )
        assert gen.model_confidence == 0.9 and gen.band == "apply" and gen.repairs == 0
        assert gen.examples == {"total": 2, "passed": 2, "ran": True, "failing": []}
        assert gen.prompt_hash and len(gen.prompt_hash) == 64
        assert gen.usage is not None and set(gen.usage) == {
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
        }
        assert len(gen.attempts) == 1 and gen.attempts[0]["calls"][0]["reply"]
        assert ws.run("add", {"a": 4, "b": 5}).value == 9
    message = git(meta_store, "log", "-1", "--format=%B")
    assert message.startswith("Generate procedure add (confidence 0.90)")
    assert "Generated by test-model (fake)" in message and "examples 2/2 passed" in message
    assert "Proctor-Action: procedure.generate" in message
    assert "Proctor-Policy: ALLOW_IMMEDIATE" in message
    # The prompt held the metadata and the skeleton.
    prompt = fake.requests[0].messages[-1]["content"]
    assert "# 1. add a and b" in prompt and '"name": "add"' in prompt


def test_failing_examples_are_sent_back_and_the_repair_is_applied(meta_store: Path) -> None:
    fake = FakeBackend([reply(WRONG, 0.9), reply(GOOD, 0.85)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=fake)
        assert done.result.status == "applied"
        assert done.outcome.confidence == 0.85 and len(done.outcome.rounds) == 2
        repair = fake.requests[1].messages
        assert repair[-2]["role"] == "assistant" and "a - b" in repair[-2]["content"]
        assert (
            "failing example: add(a=2, b=3) should return 5: returned -1" in repair[-1]["content"]
        )
        gen = ws.get_procedure("add").spec.generation
        assert gen is not None and gen.repairs == 1 and len(gen.attempts) == 2
        assert gen.attempts[0]["examples"]["passed"] == 0


def test_check_findings_are_sent_back_for_repair(meta_store: Path) -> None:
    fake = FakeBackend([reply(UNSAFE, 0.99), reply(GOOD, 0.9)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=fake)
        assert done.result.status == "applied"
        feedback = fake.requests[1].messages[-1]["content"]
        assert "check error: line 1:" in feedback and "os" in feedback
        first = done.outcome.rounds[0]
        assert first.evaluation is not None and first.evaluation.errors
        assert first.confidence == 0.0


def test_signature_mismatch_is_a_finding(meta_store: Path) -> None:
    bad = "def run(a: int) -> int:\n    return a\n"
    fake = FakeBackend([reply(bad, 0.9), reply(GOOD, 0.9)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=fake)
        assert (
            "parameter 'b' is in metadata.json but not in run()"
            in (fake.requests[1].messages[-1]["content"])
        )
        assert done.result.status == "applied"


# -- the proposal paths (as the engine decides on this branch) --------------------------------


def test_review_band_makes_the_engine_require_a_proposal_with_one_approval(
    meta_store: Path,
) -> None:
    from proctor.engine.pipeline import ProposalReceipt, ProposalRequest

    seen: list[ProposalRequest] = []

    class Recorder:
        def propose(self, request: ProposalRequest) -> ProposalReceipt:
            seen.append(request)
            return ProposalReceipt("p-1")

    fake = FakeBackend([reply(GOOD, 0.7)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        ws.engine.proposals = Recorder()
        tip = ws.store.read_ref(ws.ref)
        done = ws.generate("add", SETTINGS, backend=fake)
        assert done.result.status == "proposed" and done.result.proposal == "p-1"
        assert ws.store.read_ref(ws.ref) == tip
    (request,) = seen
    assert request.decision is Decision.REQUIRE_PROPOSAL
    params: Any = request.params
    assert (params.band, params.required_approvals, params.confidence) == ("review", 1, 0.7)
    assert params.generation["band"] == "review"


def test_skeleton_fallback_is_an_expert_proposal_needing_two_approvals(meta_store: Path) -> None:
    from proctor.engine.pipeline import ProposalReceipt, ProposalRequest

    seen: list[ProposalRequest] = []

    class Recorder:
        def propose(self, request: ProposalRequest) -> ProposalReceipt:
            seen.append(request)
            return ProposalReceipt("p-2")

    variants = [UNSAFE.replace("true", word) for word in ("true", "false", "date")]
    fake = FakeBackend([reply(code, 0.9) for code in variants])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        ws.engine.proposals = Recorder()
        done = ws.generate("add", SETTINGS, backend=fake)
    assert done.outcome.source == "skeleton" and done.outcome.confidence == 0.0
    assert len(fake.requests) == 3  # the first answer and two repairs, no more
    assert fake.remaining == 0
    (request,) = seen
    params: Any = request.params
    assert (params.band, params.required_approvals) == ("expert", 2)
    assert "raise NotImplementedError" in params.code


def test_review_band_ends_as_a_proposal_needing_one_approval(meta_store: Path) -> None:
    # End to end: policy (the generation plugin) requires a proposal for the review band,
    # the proposal handler records it in one commit, and the code is not applied yet.
    fake = FakeBackend([reply(GOOD, 0.6)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        tip = ws.store.read_ref(ws.ref)
        done = ws.generate("add", SETTINGS, backend=fake)
        assert (done.result.status, done.result.decision) == ("proposed", "REQUIRE_PROPOSAL")
        assert done.result.proposal and done.result.commit
        assert ws.store.read_ref(ws.ref) == done.result.commit != tip
        proposal = ws.get_proposal(done.result.proposal)
        assert (proposal.action, proposal.status) == ("procedure.generate", "pending")
        assert proposal.required_approvals == 1
        assert proposal.params["band"] == "review" and proposal.params["code"] == GOOD
        assert proposal.params["generation"]["confidence"] == done.outcome.confidence
        assert ws.get_procedure("add").code == ""  # nothing applied before the approval


def test_expert_band_ends_as_a_proposal_needing_two_approvals(meta_store: Path) -> None:
    fake = FakeBackend([reply(GOOD, 0.3)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=fake)
        assert (done.result.status, done.outcome.band.name) == ("proposed", "expert")
        proposal = ws.get_proposal(done.result.proposal or "")
        assert proposal.required_approvals == 2
        assert proposal.params["required_approvals"] == 2


def test_params_cannot_claim_a_band_the_confidence_does_not_give(meta_store: Path) -> None:
    from proctor.core.errors import ValidationFailed

    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        with pytest.raises(ValidationFailed, match="does not match confidence"):
            ws.execute(
                "procedure.generate",
                {
                    "name": "add",
                    "code": GOOD,
                    "generation": {"model": "m", "confidence": 0.3},
                    "confidence": 0.3,
                    "band": "apply",
                    "required_approvals": 0,
                },
            )


def test_policy_table_can_send_every_generation_to_review(repo: Path) -> None:
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    with ws:
        ws.execute("procedure.import", {"procedures": [ADD_META]})
    (repo / "proctor.toml").write_text('[policy]\n"procedure.generate" = "REQUIRE_PROPOSAL"\n')
    subprocess.run(["git", "commit", "-qam", "policy"], cwd=repo, check=True)
    with Workspace.open(repo, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=FakeBackend([reply(GOOD, 0.95)]))
        assert done.outcome.band.name == "apply"
        assert done.result.decision == "REQUIRE_PROPOSAL"


def test_generated_code_is_governed_as_the_update_it_makes(repo: Path) -> None:
    """Code written for a metadata-only procedure updates it: where updates are denied,
    generation is too, confident or not."""
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    with ws:
        ws.execute("procedure.import", {"procedures": [ADD_META]})
    (repo / "proctor.toml").write_text('[policy]\n"procedure.update" = "DENY"\n')
    subprocess.run(["git", "commit", "-qam", "policy"], cwd=repo, check=True)
    with Workspace.open(repo, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=FakeBackend([reply(GOOD, 0.95)]))
    assert done.result.status == "denied"
    assert "procedure.update" in " ".join(done.result.errors)
    assert (
        subprocess.run(
            ["git", "cat-file", "-e", "HEAD:procedures/add/main.py"], cwd=repo
        ).returncode
        != 0
    )


# -- bad input ---------------------------------------------------------------------------------


def test_generate_refuses_unknown_and_procedures_with_code(meta_store: Path) -> None:
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        with pytest.raises(NotFoundError):
            ws.generate("nope", SETTINGS, backend=FakeBackend([]))
        ws.generate("add", SETTINGS, backend=FakeBackend([reply(GOOD, 0.9)]))
        with pytest.raises(UsageError, match="already has code"):
            ws.generate("add", SETTINGS, backend=FakeBackend([]))


def test_no_model_configured_is_a_usage_error(meta_store: Path) -> None:
    with Workspace.open(meta_store) as ws, pytest.raises(UsageError, match=r"\[llm\]"):
        ws.generation_settings()


def test_llm_events_report_stages(meta_store: Path) -> None:
    from runs_helpers import event_manager

    from proctor.core.events import LlmEvent

    events: list[Any] = []
    with Workspace.open(
        meta_store, actor="tester@example.com", plugins=event_manager(events)
    ) as ws:
        ws.generate("add", SETTINGS, backend=FakeBackend([reply(GOOD, 0.9)]))
    llm = [e for e in events if isinstance(e, LlmEvent)]
    stages = [e.stage for e in llm if e.kind == "llm.stage"]
    assert stages == ["generate", "check", "examples"]
    assert all(e.seconds is not None and e.seconds >= 0 for e in llm if e.kind == "llm.stage")
    assert [e.kind for e in llm].count("llm.cache_miss") == 1
    (generated,) = [e for e in llm if e.kind == "llm.generated"]
    assert (generated.outcome, generated.confidence, generated.band) == ("applied", 0.9, "apply")


def test_repairs_stop_when_the_model_repeats_itself(meta_store: Path) -> None:
    fake = FakeBackend([reply(WRONG, 0.9), reply(WRONG, 0.9), reply(GOOD, 0.9)])
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        done = ws.generate("add", SETTINGS, backend=fake)
    assert len(done.outcome.rounds) == 2 and len(fake.requests) == 2
    assert done.outcome.band.name == "expert"  # 0.9 * 0/2 examples passed


def test_generated_code_is_limited_in_bytes_like_written_code(meta_store: Path) -> None:
    """The code limit of ``procedure.generate`` is the one ``procedure.create`` and
    ``update`` apply, in bytes as stored: code of fewer characters than the limit but
    more UTF-8 bytes is refused, and nothing is written."""
    from proctor.core.errors import ValidationFailed
    from proctor.procedures.actions import MAX_CODE_BYTES

    code = "# " + "é" * (MAX_CODE_BYTES // 2) + "\ndef run(a: int, b: int = 1) -> int:\n"
    assert len(code) < MAX_CODE_BYTES < len(code.encode())
    before = git(meta_store, "rev-parse", "HEAD")
    params = {
        "name": "add",
        "code": code,
        "generation": {"model": "test-model", "backend": "fake", "confidence": 0.9},
        "confidence": 0.9,
        "band": "apply",
        "required_approvals": 0,
    }
    with Workspace.open(meta_store, actor="tester@example.com") as ws:
        with pytest.raises(ValidationFailed, match="bytes; the limit is 1000000 bytes"):
            ws.execute("procedure.generate", params)
    assert git(meta_store, "rev-parse", "HEAD") == before
