"""generate_structured: re-asks only on parse or validation errors, each with a fresh
message list, bounded, every attempt recorded. Over real HTTP, and with the fake backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from llm_server import ScriptedServer, ok, status
from pydantic import BaseModel, Field

from proctor.llm.backends import Request, Usage
from proctor.llm.errors import BackendError, GenerationFailed
from proctor.llm.fake import FakeBackend
from proctor.llm.openai_http import OpenAIHTTPBackend
from proctor.llm.structured import (
    REASK_TRUNCATED,
    Attempt,
    agenerate_structured,
    generate_structured,
    schema_instructions,
)
from proctor.llm.transport import Transport, TransportPolicy


class GeneratedCode(BaseModel):
    code: str
    confidence: float = Field(ge=0, le=1)
    explanation: str


GOOD = json.dumps({"code": "x = 1\n", "confidence": 0.8, "explanation": "fine"})
BAD_SCHEMA = json.dumps({"code": "x = 1\n", "confidence": 5, "explanation": "fine"})
MESSAGES = [
    {"role": "system", "content": schema_instructions(GeneratedCode)},
    {"role": "user", "content": "Write run() that returns 1."},
]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def http(server: ScriptedServer) -> Transport:
    return Transport(OpenAIHTTPBackend(server.url), TransportPolicy(deadline=20))


def test_reask_after_a_malformed_reply_with_a_fresh_message_list(server: ScriptedServer) -> None:
    server.push(
        ok("Sorry, here you go: nothing."), ok(BAD_SCHEMA), ok("```json\n" + GOOD + "\n```")
    )
    seen: list[Attempt] = []
    result = generate_structured(
        http(server),
        MESSAGES,
        GeneratedCode,
        model="m",
        params={"temperature": 0},
        on_attempt=seen.append,
    )
    assert result.value.code == "x = 1\n"
    assert server.count == 3
    first, second, third = (r.body for r in server.requests)
    assert first["messages"] == MESSAGES
    # Each re-ask: the caller's messages, the bad reply, what was wrong; nothing older.
    for body, bad in ((second, "Sorry, here you go: nothing."), (third, BAD_SCHEMA)):
        assert len(body["messages"]) == len(MESSAGES) + 2
        assert body["messages"][: len(MESSAGES)] == MESSAGES
        assert body["messages"][-2] == {"role": "assistant", "content": bad}
        assert body["temperature"] == 0
    assert "confidence" in third["messages"][-1]["content"]
    assert "less than or equal to 1" in third["messages"][-1]["content"]

    assert [a.ok for a in result.attempts] == [False, False, True]
    assert seen == result.attempts
    assert result.attempts[0].errors and result.attempts[0].text == "Sorry, here you go: nothing."
    assert result.attempts[0].prompt_hash == Request.build("m", MESSAGES).prompt_hash
    assert result.prompt_hash == result.attempts[0].prompt_hash
    assert len({a.request_key for a in result.attempts}) == 3
    assert result.usage == Usage(33, 21, 54)
    assert result.attempts[2].request_id == "req-3"
    assert result.attempts[0].to_dict()["usage"]["total_tokens"] == 18


def test_reasks_are_bounded(server: ScriptedServer) -> None:
    server.default = ok("no json here")
    with pytest.raises(GenerationFailed) as info:
        generate_structured(http(server), MESSAGES, GeneratedCode, model="m", max_reasks=2)
    assert server.count == 3
    assert len(info.value.attempts) == 3
    assert all(not a.ok for a in info.value.attempts)
    assert "after 3 attempts" in str(info.value)


def test_truncated_reply_is_not_repaired_nor_reasked_by_default(server: ScriptedServer) -> None:
    server.push(ok(GOOD[:20], finish_reason="length"))
    with pytest.raises(GenerationFailed, match="token limit") as info:
        generate_structured(http(server), MESSAGES, GeneratedCode, model="m")
    assert server.count == 1
    assert info.value.attempts[0].finish_reason == "length"


def test_truncated_reply_can_ask_for_a_shorter_answer(server: ScriptedServer) -> None:
    server.push(ok(GOOD[:20], finish_reason="length"), ok(GOOD))
    result = generate_structured(
        http(server), MESSAGES, GeneratedCode, model="m", reask_on_truncation=True
    )
    assert result.value.confidence == 0.8
    assert server.requests[1].body["messages"][-1]["content"] == REASK_TRUNCATED


def test_transport_errors_are_never_reasked(server: ScriptedServer) -> None:
    server.push(status(401))
    with pytest.raises(BackendError) as info:
        generate_structured(http(server), MESSAGES, GeneratedCode, model="m")
    assert server.count == 1
    assert len(info.value.attempts) == 1
    assert "401" in (info.value.attempts[0].error or "")


def test_zero_reasks_means_one_call() -> None:
    fake = FakeBackend(["not json", GOOD])
    with pytest.raises(GenerationFailed):
        generate_structured(fake, MESSAGES, GeneratedCode, model="m", max_reasks=0)
    assert len(fake.requests) == 1 and fake.remaining == 1


def test_async_generation_with_the_fake_backend() -> None:
    fake = FakeBackend([BAD_SCHEMA, lambda req: GOOD if len(req.messages) == 4 else "wrong"])

    result = asyncio.run(agenerate_structured(fake, MESSAGES, GeneratedCode, model="m"))
    assert result.value.explanation == "fine"
    assert [len(r.messages) for r in fake.requests] == [2, 4]
    assert result.reply.backend == "fake"


def test_fake_backend_script_and_exhaustion() -> None:
    from proctor.llm.errors import FakeExhausted

    fake = FakeBackend([BackendError("busy", status=503), "hello"])
    policy = TransportPolicy(backoff_initial=0.01, backoff_jitter=0)
    assert Transport(fake, policy).complete(Request.build("m", MESSAGES)).text == "hello"
    assert len(fake.requests) == 2
    with pytest.raises(FakeExhausted, match="no scripted reply left"):
        fake.complete(Request.build("m", MESSAGES))
