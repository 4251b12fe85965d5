"""Code generation: a procedure's metadata in, reviewed and tested code out.

One generation (:meth:`Generator.agenerate`) is a few bounded rounds:

1. the deterministic skeleton (:mod:`proctor.llm.skeleton`) and the metadata make the
   prompt; the model answers with :class:`GeneratedCode` (code, its confidence, an
   explanation) through :func:`~proctor.llm.structured.agenerate_structured`;
2. the code is checked as the pipeline will check it: it must parse, define the entry
   point with the signature the metadata declares, and pass the safety checks in
   procedure mode (with the capabilities the metadata declares);
3. the metadata's examples run in the sandbox (the runs layer's example runner; nothing
   is recorded in the run log, nothing is committed);
4. findings and failing examples go back to the model in a fresh message list, at most
   ``max_repairs`` times.

The best usable round wins (no error findings, highest confidence); when none is usable
the skeleton is the result, with confidence 0. :func:`combine_confidence` turns the
model's confidence and the results into the final confidence and :func:`decide_band`
the band policy decides on (see docs/llm.md, "Generation"). Nothing here writes: the
``procedure.generate`` action commits the outcome (:meth:`GenerationOutcome.params`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from proctor.core.errors import UsageError, ValidationFailed
from proctor.core.governance import Decision
from proctor.llm.errors import GenerationFailed, LLMError
from proctor.llm.skeleton import CodeExtractor
from proctor.procedures.migration import APPLY_AT, REVIEW_AT

if TYPE_CHECKING:
    from proctor.core.config import ProctorConfig
    from proctor.core.plugins import PluginManager
    from proctor.llm.structured import Attempt, StructuredResult
    from proctor.llm.transport import Transport
    from proctor.procedures.spec import ProcedureSpec
    from proctor.runs.service import RunService

PROMPT_VERSION = 1
"""Bumped whenever the prompt changes shape, so a resumed batch notices."""

WARNING_FACTOR = 0.9
NO_EXAMPLES_FACTOR = 0.9

BandName = Literal["apply", "review", "expert"]


class GeneratedCode(BaseModel):
    """What the model must answer with."""

    code: str = Field(description="The complete main.py: imports, then the entry function.")
    confidence: float = Field(
        ge=0.0, le=1.0, description="How sure you are that the code is right, 0 to 1."
    )
    explanation: str = Field(default="", description="One or two sentences on the approach.")


# -- bands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """A decision band: what policy does with a generation of this confidence."""

    name: BandName
    decision: Decision
    required_approvals: int
    expert: bool = False


BANDS: dict[BandName, Band] = {
    "apply": Band("apply", Decision.ALLOW_IMMEDIATE, 0),
    "review": Band("review", Decision.REQUIRE_PROPOSAL, 1),
    "expert": Band("expert", Decision.REQUIRE_PROPOSAL, 2, expert=True),
}


def decide_band(confidence: float, findings: int = 0) -> Band:
    """≥ 0.8 with no findings: applied; 0.5 up to 0.8 (or ≥ 0.8 with findings): a
    proposal needing one approval; below 0.5: a proposal for expert review (two
    approvals or an expert's)."""
    if confidence >= APPLY_AT and findings == 0:
        return BANDS["apply"]
    if confidence >= REVIEW_AT:
        return BANDS["review"]
    return BANDS["expert"]


# -- evaluation ------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What the checks and the examples say about one candidate."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    examples_total: int = 0
    examples_passed: int = 0
    failing: list[str] = field(default_factory=list)
    examples_ran: bool = False

    @property
    def usable(self) -> bool:
        """No error finding: the pipeline would accept the code."""
        return not self.errors

    @property
    def findings(self) -> int:
        """Findings that keep a generation out of the applied band: errors, warnings
        and failing examples."""
        return len(self.errors) + len(self.warnings) + len(self.failing)

    @property
    def clean(self) -> bool:
        return self.findings == 0

    def feedback(self) -> list[str]:
        lines = [f"check error: {e}" for e in self.errors]
        lines += [f"check warning: {w}" for w in self.warnings]
        lines += [f"failing example: {f}" for f in self.failing]
        return lines

    def checks_dict(self) -> dict[str, Any]:
        return {"errors": list(self.errors), "warnings": list(self.warnings)}

    def examples_dict(self) -> dict[str, Any]:
        return {
            "total": self.examples_total,
            "passed": self.examples_passed,
            "ran": self.examples_ran,
            "failing": list(self.failing),
        }


def checks_score(evaluation: Evaluation) -> float:
    """1 with no finding, 0 with an error, ``0.9 ** warnings`` otherwise."""
    if evaluation.errors:
        return 0.0
    return WARNING_FACTOR ** len(evaluation.warnings)


def examples_score(evaluation: Evaluation) -> float:
    """The share of examples that pass; 0.9 when there are none to run (untested code
    needs a model confidence of at least 0.89 to be applied)."""
    if evaluation.examples_total == 0:
        return NO_EXAMPLES_FACTOR
    return evaluation.examples_passed / evaluation.examples_total


def combine_confidence(model_confidence: float, evaluation: Evaluation) -> float:
    """final = model × checks × examples, rounded to 3 places: any weak factor pulls it
    down, and none can push it above what the model claimed."""
    value = max(0.0, min(1.0, model_confidence))
    return round(value * checks_score(evaluation) * examples_score(evaluation), 3)


# -- settings --------------------------------------------------------------------------------

SECRET_OPTION_WORDS = ("key", "token", "secret", "password", "header", "authorization")


@dataclass(frozen=True)
class GenerationSettings:
    """Which model, asked how. From ``[llm]`` in proctor.toml, overridden by options."""

    backend: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    max_repairs: int = 2
    max_reasks: int = 2
    deadline: float = 120.0
    run_examples: bool = True

    def fingerprint(self) -> dict[str, Any]:
        """What decides the answers, for a resumed batch to compare: secrets left out
        (they change where a request goes, not what comes back), concurrency too."""
        options = {
            k: v
            for k, v in sorted(self.options.items())
            if not any(w in k.lower() for w in SECRET_OPTION_WORDS)
        }
        return {
            "backend": self.backend,
            "model": self.model,
            "options": json.loads(json.dumps(options, default=str)),
            "params": json.loads(json.dumps(dict(sorted(self.params.items())), default=str)),
            "max_repairs": self.max_repairs,
            "max_reasks": self.max_reasks,
            "run_examples": self.run_examples,
            "prompt_version": PROMPT_VERSION,
        }


LLM_KEYS = (
    "backend",
    "model",
    "options",
    "params",
    "max-repairs",
    "max-reasks",
    "deadline",
    "run-examples",
)


def generation_settings(
    config: ProctorConfig,
    *,
    backend: str | None = None,
    model: str | None = None,
    options: Mapping[str, Any] | None = None,
    max_repairs: int | None = None,
) -> GenerationSettings:
    """``[llm]`` of the config with the given overrides. Raises ConfigError (a bad
    table) or UsageError (no backend or model anywhere)."""
    from proctor.core.errors import ConfigError

    table = config.table("llm")
    table.check_keys(LLM_KEYS)
    values = table.values
    chosen_backend = backend or values.get("backend")
    chosen_model = model or values.get("model")
    if not chosen_backend or not chosen_model:
        raise UsageError(
            "no model to generate with: set backend and model under [llm] in proctor.toml, "
            "or pass --backend and --model"
        )
    merged = dict(table.table("options") or {})
    merged.update(options or {})
    params = dict(table.table("params") or {})

    def number(key: str, default: float, kind: type) -> Any:
        value = values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{table.where(key)}: expected a number of 0 or more, got {value!r}")
        return kind(value)

    run_examples = values.get("run-examples", True)
    if not isinstance(run_examples, bool):
        raise ConfigError(f"{table.where('run-examples')}: expected true or false")
    return GenerationSettings(
        backend=str(chosen_backend),
        model=str(chosen_model),
        options=merged,
        params=params,
        max_repairs=max_repairs if max_repairs is not None else number("max-repairs", 2, int),
        max_reasks=number("max-reasks", 2, int),
        deadline=number("deadline", 120.0, float) or 120.0,
        run_examples=run_examples,
    )


# -- outcome ---------------------------------------------------------------------------------


@dataclass
class Round:
    """One model answer and what the checks and examples said of it."""

    number: int
    calls: list[Attempt]
    value: GeneratedCode | None
    reply_text: str | None
    evaluation: Evaluation | None
    confidence: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "round": self.number,
            "calls": [a.to_dict() for a in self.calls],
            "model_confidence": None if self.value is None else self.value.confidence,
            "confidence": self.confidence,
            "error": self.error,
        }
        if self.evaluation is not None:
            out["checks"] = self.evaluation.checks_dict()
            out["examples"] = self.evaluation.examples_dict()
        return out


@dataclass
class GenerationOutcome:
    """The code to commit and the ``generation`` block of its metadata."""

    name: str
    code: str
    source: Literal["model", "skeleton"]
    confidence: float
    band: Band
    findings: int
    generation: dict[str, Any]
    rounds: list[Round]

    @property
    def request_ids(self) -> list[str]:
        return [a.request_id for r in self.rounds for a in r.calls if a.request_id]

    def params(self) -> dict[str, Any]:
        """The params of the ``procedure.generate`` action that commits this outcome:
        the band and the approvals it needs travel with it, for policy to decide on."""
        return {
            "name": self.name,
            "code": self.code,
            "generation": self.generation,
            "confidence": self.confidence,
            "findings": self.findings,
            "band": self.band.name,
            "required_approvals": self.band.required_approvals,
        }


# -- the generator ---------------------------------------------------------------------------

SYSTEM_PROMPT = """\
You write Python procedures for a procedure store. A procedure is one file, main.py, \
defining a top-level function {entry}() with exactly the signature given, returning a \
JSON value. Use only the standard library, and only what the declared capabilities \
allow (no network, subprocesses or file writes unless declared). Keep the docstring and \
the parameter checks of the skeleton; replace the NotImplementedError with the \
implementation of the steps."""

USER_PROMPT = """\
Write procedures/{name}/main.py for this metadata:

```json
{metadata}
```

Start from this skeleton (its signature is fixed by the metadata):

```python
{skeleton}```
"""

REPAIR_PROMPT = """\
The code you wrote does not pass yet:
{problems}

Reply with the whole JSON object again, the code fixed."""


def blob_sha(data: bytes) -> str:
    """git's object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


Emit = Callable[..., None]


def build_messages(spec: ProcedureSpec, entry: str = "run") -> list[dict[str, Any]]:
    """The prompt: the same metadata, entry point and schema give the same messages
    (so a replay cassette recorded for them answers again)."""
    from proctor.llm.structured import schema_instructions

    metadata = spec.model_dump(mode="json", exclude={"generation"})
    system = SYSTEM_PROMPT.format(entry=entry)
    return [
        {"role": "system", "content": system + "\n\n" + schema_instructions(GeneratedCode)},
        {
            "role": "user",
            "content": USER_PROMPT.format(
                name=spec.name,
                metadata=json.dumps(metadata, indent=1, sort_keys=True),
                skeleton=CodeExtractor(entry).extract(spec),
            ),
        },
    ]


class Generator:
    """Generates code for procedure specs with one model, through one transport."""

    def __init__(
        self,
        transport: Transport,
        settings: GenerationSettings,
        *,
        config: ProctorConfig,
        plugins: PluginManager,
        runs: RunService | None,
        actor: str,
        emit: Emit | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.config = config
        self.plugins = plugins
        self.runs = runs
        self.actor = actor
        self.emit = emit or (lambda **_fields: None)
        self.extractor = CodeExtractor(config.entry_point)

    # -- prompt ------------------------------------------------------------------------------

    def messages(self, spec: ProcedureSpec) -> list[dict[str, Any]]:
        return build_messages(spec, self.config.entry_point)

    # -- evaluation --------------------------------------------------------------------------

    def check(self, spec: ProcedureSpec, code: str) -> Evaluation:
        """Parse, signature against the metadata, the safety checks in procedure mode."""
        from proctor.checks.runner import check_text
        from proctor.checks.settings import check_settings
        from proctor.procedures.capabilities import parse_capabilities
        from proctor.procedures.derive import spec_mismatches
        from proctor.procedures.repository import code_path
        from proctor.procedures.signature import code_signature

        evaluation = Evaluation()
        entry = self.config.entry_point
        path = code_path(spec.name)
        try:
            signature = code_signature(code, entry, path)
        except ValidationFailed as exc:
            evaluation.errors.append(exc.message)
            return evaluation
        evaluation.errors.extend(spec_mismatches(spec, signature, entry))
        findings = check_text(
            path,
            code,
            mode="procedure",
            settings=check_settings(self.config),
            capabilities=parse_capabilities(spec.capabilities.model_dump()),
            validators=self.plugins.validators(),
        )
        for finding in findings:
            line = f"line {finding.line}: {finding.code} {finding.message}"
            if finding.severity == "error":
                evaluation.errors.append(line)
            elif finding.severity == "warning":
                evaluation.warnings.append(line)
        return evaluation

    async def examples(self, spec: ProcedureSpec, code: str, evaluation: Evaluation) -> None:
        """Run the examples in the sandbox on uncommitted code; nothing is recorded."""
        evaluation.examples_total = len(spec.examples)
        if not spec.examples or self.runs is None or not self.settings.run_examples:
            return
        from proctor.procedures.signature import code_signature
        from proctor.runs.examples import judge_examples
        from proctor.runs.resolve import ProcedureVersion

        data = code.encode()
        sha = blob_sha(data)
        pv = ProcedureVersion(
            name=spec.name,
            commit=sha,
            release=None,
            code=data,
            blob=sha,
            spec=spec,
            signature=code_signature(code, self.config.entry_point),
        )
        results, _runs = await judge_examples(self.runs, pv, actor=self.actor)
        evaluation.examples_ran = True
        evaluation.examples_passed = sum(1 for r in results if r.passed)
        for r in results:
            if not r.passed:
                args = ", ".join(f"{k}={v!r}" for k, v in r.params.items())
                got = f"returned {r.value!r}" if r.status == "ok" else (r.reason or r.status)
                evaluation.failing.append(
                    f"{spec.name}({args}) should return {r.expected!r}: {got}"[:500]
                )

    async def aevaluate(self, spec: ProcedureSpec, code: str, name: str) -> Evaluation:
        started = time.monotonic()
        evaluation = await asyncio.to_thread(self.check, spec, code)
        self.stage(name, "check", started)
        if evaluation.usable:
            started = time.monotonic()
            await self.examples(spec, code, evaluation)
            self.stage(name, "examples", started)
        else:
            evaluation.examples_total = len(spec.examples)
        return evaluation

    def stage(self, name: str, stage: str, started: float) -> None:
        """Announce how long one stage of one item took (an ``llm.stage`` event), from
        ``started`` (a ``time.monotonic()`` reading) until now."""
        self.emit(
            what="stage",
            procedure=name,
            stage=stage,
            seconds=round(time.monotonic() - started, 6),
            backend=self.settings.backend,
            model=self.settings.model,
        )

    # -- one generation ----------------------------------------------------------------------

    async def agenerate(self, spec: ProcedureSpec) -> GenerationOutcome:
        """Rounds of generate, check, run the examples, repair; the best usable round.

        Raises LLMError (a transport error, or no reply of the first round parsed:
        nothing to fall back from but the skeleton, and a model that cannot be reached
        should be fixed, not papered over); every attempt is on ``exc.attempts``.
        """
        from proctor.llm.structured import agenerate_structured, reask_messages

        settings = self.settings
        original = self.messages(spec)
        messages = original
        rounds: list[Round] = []
        for number in range(1, settings.max_repairs + 2):
            started = time.monotonic()
            try:
                result: StructuredResult[GeneratedCode] = await agenerate_structured(
                    self.transport,
                    messages,
                    GeneratedCode,
                    model=settings.model,
                    params=settings.params,
                    max_reasks=settings.max_reasks,
                )
            except LLMError as exc:
                self.stage(spec.name, "generate", started)
                if not rounds:
                    raise
                calls = list(getattr(exc, "attempts", None) or [])
                rounds.append(Round(number, calls, None, None, None, 0.0, error=str(exc)))
                break
            self.stage(spec.name, "generate", started)
            value = result.value
            evaluation = await self.aevaluate(spec, value.code, spec.name)
            confidence = combine_confidence(value.confidence, evaluation)
            rounds.append(
                Round(number, result.attempts, value, result.reply.text, evaluation, confidence)
            )
            if evaluation.clean or number > settings.max_repairs:
                break
            if len(rounds) > 1 and rounds[-2].value is not None:
                if rounds[-2].value.code == value.code:
                    break  # the same code again: asking once more would repeat the request
            problems = "\n".join(f"- {line}" for line in evaluation.feedback())
            messages = reask_messages(
                original, result.reply.text, REPAIR_PROMPT.format(problems=problems)
            )
        return self._outcome(spec, original, rounds)

    def _outcome(
        self, spec: ProcedureSpec, original: list[dict[str, Any]], rounds: list[Round]
    ) -> GenerationOutcome:
        from proctor.llm.backends import Request, Usage

        usable = [r for r in rounds if r.evaluation is not None and r.evaluation.usable]
        best = max(usable, key=lambda r: (r.confidence, -r.number), default=None)
        usage = Usage()
        for r in rounds:
            for call in r.calls:
                usage = usage + call.usage
        block: dict[str, Any] = {
            "model": self.settings.model,
            "backend": self.settings.backend,
            "prompt_hash": Request.build(self.settings.model, original, {}).prompt_hash,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "repairs": len(rounds) - 1,
            "attempts": [r.to_dict() for r in rounds],
        }
        if best is None or best.value is None or best.evaluation is None:
            code = self.extractor.extract(spec)
            band = decide_band(0.0)
            block.update(
                source="skeleton",
                confidence=0.0,
                model_confidence=None,
                band=band.name,
                explanation="no attempt produced code that passes the checks; "
                "the skeleton from the metadata is stored for expert review",
                checks=rounds[-1].evaluation.checks_dict()
                if rounds[-1].evaluation is not None
                else None,
                examples=None,
            )
            findings = sum(r.evaluation.findings for r in rounds[-1:] if r.evaluation) or 1
            return GenerationOutcome(
                spec.name, code, "skeleton", 0.0, band, findings, block, rounds
            )
        band = decide_band(best.confidence, best.evaluation.findings)
        block.update(
            source="model",
            confidence=best.confidence,
            model_confidence=best.value.confidence,
            band=band.name,
            explanation=best.value.explanation,
            checks=best.evaluation.checks_dict(),
            examples=best.evaluation.examples_dict(),
        )
        code = best.value.code if best.value.code.endswith("\n") else best.value.code + "\n"
        return GenerationOutcome(
            spec.name,
            code,
            "model",
            best.confidence,
            band,
            best.evaluation.findings,
            block,
            rounds,
        )


def failed_request_ids(exc: BaseException) -> list[str]:
    """The provider's request ids of every attempt an LLM error carries."""
    attempts = getattr(exc, "attempts", None) or []
    ids = [getattr(a, "request_id", None) for a in attempts]
    return [i for i in ids if i]


__all__ = [
    "BANDS",
    "Band",
    "Evaluation",
    "GeneratedCode",
    "GenerationFailed",
    "GenerationOutcome",
    "GenerationSettings",
    "Generator",
    "build_messages",
    "combine_confidence",
    "decide_band",
    "generation_settings",
]
