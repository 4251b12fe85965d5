"""Structured output: a model's reply turned into a validated pydantic model.

:func:`parse_structured` is pure: text in, model out, or a typed error listing what was
wrong. :func:`generate_structured` calls a backend through the transport loop and re-asks
only when the reply could not be parsed or validated, each time with a fresh message
list (the original messages, the bad reply, the errors), a bounded number of times.
Transport failures are never re-asked here: the transport loop already decided they are
final. Every attempt is recorded, so a generation can store how it got its answer.
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from proctor.llm.backends import Backend, Reply, Request, Usage
from proctor.llm.errors import (
    GenerationFailed,
    LLMError,
    StructuredOutputError,
    TruncatedReply,
)
from proctor.llm.extract import (
    candidates,
    ends_inside_string,
    escape_inner_quotes,
    light_repair,
    protect_strings,
    restore_strings,
    variants,
)
from proctor.llm.transport import Transport

M = TypeVar("M", bound=BaseModel)

MAX_ERRORS = 8
# json-repair costs about 1 ms per 2 KB of reply: two slices keep a reply within budget.
MAX_REPAIRS = 2

REASK = (
    "Your previous reply could not be used:\n{errors}\n\n"
    "Reply again with only one JSON object that matches the schema, no prose and no code "
    "fence."
)
REASK_TRUNCATED = (
    "Your previous reply was cut off at the token limit before it was complete. Reply again "
    "with only one JSON object that matches the schema, shorter this time."
)


def _validation_lines(exc: ValidationError, where: str) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False)[:MAX_ERRORS]:
        loc = ".".join(str(part) for part in err.get("loc", ())) or "(top level)"
        lines.append(f"{where}: {loc}: {err.get('msg', 'invalid')}")
    return lines


def _repair(text: str) -> Any:
    """json-repair over the structure only (strings protected), or None. Never for a
    text that ends inside a string: closing it would keep cut-off content, whatever the
    finish reason said."""
    import json_repair

    if ends_inside_string(text):
        return None
    skeleton, literals = protect_strings(text)
    try:
        value = json_repair.repair_json(skeleton, return_objects=True, skip_json_loads=True)
    except Exception:  # noqa: BLE001 - json-repair raises assorted errors on hopeless input
        return None
    return restore_strings(value, literals)


def _load(text: str) -> tuple[Any, str]:
    """The value of ``text`` by the exact means: JSON (control characters allowed in
    strings), JSON after :func:`light_repair`, a Python literal. Raises ValueError with
    the JSON error when none applies."""
    try:
        return json.loads(text, strict=False), ""
    except ValueError as exc:
        error = exc
    fixed = light_repair(text)
    if fixed is not None:
        try:
            return json.loads(fixed, strict=False), " (comments, commas or closers fixed)"
        except ValueError:
            pass
    if ("'" in text or "True" in text or "None" in text) and len(text) <= 1_000_000:
        try:
            return ast.literal_eval(text), " (Python literal)"
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    raise error


def parse_structured(text: str, schema: type[M], *, finish_reason: str | None = None) -> M:
    """The first candidate in ``text`` that validates as ``schema``.

    Raises :class:`TruncatedReply` when ``finish_reason == "length"`` (before any repair)
    and :class:`StructuredOutputError` when no candidate validates; its ``errors`` put
    validation problems of JSON that did parse before syntax errors, since those are
    what the model can fix.
    """
    if finish_reason == "length":
        raise TruncatedReply(
            "the reply was cut off at the token limit (finish_reason 'length'); refusing to "
            "repair it, which would keep the cut-off content",
            errors=["reply cut off at the token limit"],
            text=text,
        )
    if not text.strip():
        raise StructuredOutputError("the reply is empty", errors=["the reply is empty"], text=text)
    invalid: list[str] = []
    syntax: list[str] = []
    unparsed = []
    for cand in candidates(text):
        if cand.repair_only:
            unparsed.append(cand)
            continue
        try:
            value, how = _load(cand.text)
        except ValueError as exc:
            syntax.append(f"{cand.source}: invalid JSON: {exc}")
            unparsed.append(cand)
            continue
        result = _first_valid(value, schema, cand.source + how, invalid)
        if result is not None:
            return result
    # Guesses now, on the most specific slices first, the whole reply (prose included)
    # last: quotes escaped by what follows them, then json-repair on at most two slices.
    unparsed.sort(key=lambda c: c.source.startswith("whole"))
    for cand in unparsed:
        escaped = escape_inner_quotes(cand.text)
        if escaped is None:
            continue
        try:
            value, how = _load(escaped)
        except ValueError:
            continue
        result = _first_valid(value, schema, f"{cand.source} (quotes escaped)", invalid, guess=True)
        if result is not None:
            return result
    for cand in unparsed[:MAX_REPAIRS]:
        value = _repair(cand.text)
        if value is None or value == "" or not isinstance(value, dict | list | str):
            continue
        if isinstance(value, str) and not value.strip().startswith(("{", "[")):
            continue  # json-repair's answer to prose is the prose itself: not an object
        result = _first_valid(value, schema, f"{cand.source} (repaired)", invalid, guess=True)
        if result is not None:
            return result
    errors = (invalid + syntax)[:MAX_ERRORS] or ["no JSON object found in the reply"]
    raise StructuredOutputError(
        f"no part of the reply is a valid {schema.__name__}: {errors[0]}", errors=errors, text=text
    )


def _known_keys(schema: type[BaseModel]) -> set[str] | None:
    """Field names and aliases, or None when the schema takes any key."""
    if schema.model_config.get("extra") == "allow":
        return None
    keys = set(schema.model_fields)
    keys.update(f.alias for f in schema.model_fields.values() if f.alias)
    return keys


def _first_valid(
    value: Any, schema: type[M], source: str, invalid: list[str], guess: bool = False
) -> M | None:
    """The first variant of ``value`` that validates. With ``guess`` (json-repair's
    output), a dict carrying keys the schema lacks is refused: that is how a wrong repair
    looks (a string split at a comma turns its tail into a key) and it would otherwise
    validate with the field cut short."""
    first_error: ValidationError | None = None
    known = _known_keys(schema) if guess else None
    for label, variant in variants(value):
        if known is not None and isinstance(variant, dict) and not set(variant) <= known:
            extra = ", ".join(sorted(str(k) for k in set(variant) - known)[:3])
            invalid.append(f"{source}: the repair produced keys the schema lacks ({extra})")
            continue
        try:
            return schema.model_validate(variant)
        except ValidationError as exc:
            if first_error is None:
                first_error = exc
                invalid.extend(_validation_lines(exc, source + (f" ({label})" if label else "")))
    return None


def schema_instructions(schema: type[BaseModel]) -> str:
    """A system-prompt paragraph asking for JSON matching ``schema``'s JSON Schema."""
    return (
        "Reply with only one JSON object, no prose and no code fence, matching this JSON "
        "Schema:\n" + json.dumps(schema.model_json_schema(), indent=1, sort_keys=True)
    )


@dataclass(frozen=True)
class Attempt:
    """One model call of a structured generation, as stored with the generation."""

    number: int
    prompt_hash: str
    request_key: str
    model: str
    text: str | None
    finish_reason: str | None
    error: str | None
    errors: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    cached: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "prompt_hash": self.prompt_hash,
            "request_key": self.request_key,
            "model": self.model,
            "reply": self.text,
            "finish_reason": self.finish_reason,
            "error": self.error,
            "errors": list(self.errors),
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
            "request_id": self.request_id,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class StructuredResult(Generic[M]):
    """The validated value, the reply it came from and every attempt it took."""

    value: M
    reply: Reply
    attempts: list[Attempt]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total

    @property
    def prompt_hash(self) -> str:
        """The hash of the caller's own messages (the first attempt's)."""
        return self.attempts[0].prompt_hash


class _Session(Generic[M]):
    """The re-ask bookkeeping shared by the sync and async entry points."""

    def __init__(
        self,
        messages: Sequence[Mapping[str, Any]],
        schema: type[M],
        model: str,
        params: Mapping[str, Any] | None,
        max_reasks: int,
        reask_on_truncation: bool,
        on_attempt: Callable[[Attempt], None] | None,
    ) -> None:
        if max_reasks < 0:
            raise ValueError("max_reasks must be 0 or more")
        self.original = [dict(m) for m in messages]
        self.schema = schema
        self.model = model
        self.params = dict(params or {})
        self.max_reasks = max_reasks
        self.reask_on_truncation = reask_on_truncation
        self.on_attempt = on_attempt
        self.attempts: list[Attempt] = []
        self.request = Request.build(model, self.original, self.params)
        self.started = 0.0

    def begin(self) -> Request:
        self.started = time.monotonic()
        return self.request

    def _record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    def transport_failed(self, exc: LLMError) -> None:
        self._record(
            Attempt(
                number=len(self.attempts) + 1,
                prompt_hash=self.request.prompt_hash,
                request_key=self.request.key,
                model=self.model,
                text=None,
                finish_reason=None,
                error=f"{type(exc).__name__}: {exc}",
                request_id=getattr(exc, "request_id", None),
                seconds=time.monotonic() - self.started,
            )
        )
        exc.attempts = list(self.attempts)

    def handle(self, reply: Reply) -> StructuredResult[M] | Request:
        """The result, or the next request (a re-ask); raises when re-asks are used up."""
        error: StructuredOutputError | None = None
        value: M | None = None
        try:
            value = parse_structured(reply.text, self.schema, finish_reason=reply.finish_reason)
        except StructuredOutputError as exc:
            error = exc
        self._record(
            Attempt(
                number=len(self.attempts) + 1,
                prompt_hash=self.request.prompt_hash,
                request_key=self.request.key,
                model=self.model,
                text=reply.text,
                finish_reason=reply.finish_reason,
                error=None if error is None else str(error),
                errors=() if error is None else tuple(error.errors),
                usage=reply.usage,
                request_id=reply.request_id,
                cached=reply.cached,
                seconds=time.monotonic() - self.started,
            )
        )
        if error is None:
            assert value is not None
            return StructuredResult(value=value, reply=reply, attempts=list(self.attempts))
        truncated = isinstance(error, TruncatedReply)
        reasks_used = len(self.attempts) - 1
        if (truncated and not self.reask_on_truncation) or reasks_used >= self.max_reasks:
            failed = GenerationFailed(
                f"no valid {self.schema.__name__} after {len(self.attempts)} attempt"
                f"{'s' if len(self.attempts) != 1 else ''}: {error}",
                attempts=self.attempts,
                errors=error.errors,
            )
            raise failed from error
        feedback = REASK_TRUNCATED if truncated else reask_feedback(error.errors)
        messages = reask_messages(self.original, reply.text, feedback)
        self.request = Request.build(self.model, messages, self.params)
        self.started = time.monotonic()
        return self.request


def reask_feedback(errors: Sequence[str]) -> str:
    """The user message of a re-ask: what was wrong, one line each."""
    return REASK.format(errors="\n".join(f"- {line}" for line in errors))


def reask_messages(
    original: Sequence[Mapping[str, Any]], reply_text: str, feedback: str
) -> list[dict[str, Any]]:
    """A fresh message list for another ask: the caller's messages, the reply that could
    not be used, and the feedback. Earlier failed turns are not carried along: they cost
    tokens and pull the model back towards its old mistakes. Repair loops built on this
    package (findings, failing examples) should ask the same way."""
    return [
        *(dict(m) for m in original),
        {"role": "assistant", "content": reply_text},
        {"role": "user", "content": feedback},
    ]


def _as_transport(client: Transport | Backend) -> Transport:
    return client if isinstance(client, Transport) else Transport(client)


def generate_structured(
    client: Transport | Backend,
    messages: Sequence[Mapping[str, Any]],
    schema: type[M],
    *,
    model: str,
    params: Mapping[str, Any] | None = None,
    max_reasks: int = 2,
    reask_on_truncation: bool = False,
    on_attempt: Callable[[Attempt], None] | None = None,
    use_cache: bool = True,
) -> StructuredResult[M]:
    """Ask ``model`` through ``client`` until a reply validates as ``schema``.

    At most ``1 + max_reasks`` model calls. A cut-off reply ends the generation unless
    ``reask_on_truncation`` (then the re-ask asks for a shorter answer). Raises
    :class:`GenerationFailed` with every attempt when the re-asks are used up; a transport
    error propagates with ``attempts`` set. A bare backend is wrapped in a default
    :class:`Transport`; pass your own to share its breaker and cache.
    """
    transport = _as_transport(client)
    session = _Session(messages, schema, model, params, max_reasks, reask_on_truncation, on_attempt)
    request = session.begin()
    while True:
        try:
            reply = transport.complete(request, use_cache=use_cache)
        except LLMError as exc:
            session.transport_failed(exc)
            raise
        outcome = session.handle(reply)
        if isinstance(outcome, StructuredResult):
            return outcome
        request = outcome


async def agenerate_structured(
    client: Transport | Backend,
    messages: Sequence[Mapping[str, Any]],
    schema: type[M],
    *,
    model: str,
    params: Mapping[str, Any] | None = None,
    max_reasks: int = 2,
    reask_on_truncation: bool = False,
    on_attempt: Callable[[Attempt], None] | None = None,
    use_cache: bool = True,
) -> StructuredResult[M]:
    """:func:`generate_structured` for asyncio."""
    transport = _as_transport(client)
    session = _Session(messages, schema, model, params, max_reasks, reask_on_truncation, on_attempt)
    request = session.begin()
    while True:
        try:
            reply = await transport.acomplete(request, use_cache=use_cache)
        except LLMError as exc:
            session.transport_failed(exc)
            raise
        outcome = session.handle(reply)
        if isinstance(outcome, StructuredResult):
            return outcome
        request = outcome
