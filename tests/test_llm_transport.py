"""The transport loop against a real OpenAI-compatible server on 127.0.0.1.

Every test counts the requests the server received: that is what a provider bills and
rate-limits, and where stacked retry layers show.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest
from llm_server import ScriptedServer, drop, drop_mid, ok, raw, slow, status

from proctor.llm.backends import Request, parse_retry_after
from proctor.llm.errors import (
    AttemptsExhausted,
    BackendConnectionError,
    BackendError,
    CircuitOpenError,
    DeadlineExceeded,
)
from proctor.llm.openai_http import OpenAIHTTPBackend
from proctor.llm.transport import CircuitBreaker, Transport, TransportEvent, TransportPolicy

FAST = TransportPolicy(
    max_attempts=5, deadline=20, backoff_initial=0.05, backoff_max=0.2, backoff_jitter=0.05
)
RETRY_WORDS = re.compile(
    r"\b(retry|retries|retrying|retried|try again|re-?attempt)\b", re.IGNORECASE
)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def request(**params: object) -> Request:
    return Request.build("test-model", [{"role": "user", "content": "hello"}], params)


def transport(server: ScriptedServer, policy: TransportPolicy = FAST, **kw: object) -> Transport:
    backend = OpenAIHTTPBackend(server.url, api_key="sk-test-key-0000000000000000")
    return Transport(backend, policy, **kw)  # type: ignore[arg-type]


def test_normal_reply_is_typed_and_sends_every_parameter(server: ScriptedServer) -> None:
    server.push(ok("hi there", "stop"))
    reply = transport(server).complete(request(temperature=0, seed=7, max_tokens=50, top_k=3))
    assert (reply.text, reply.finish_reason, reply.request_id) == ("hi there", "stop", "req-1")
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 7)
    assert server.count == 1
    seen = server.requests[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.body == {
        "model": "test-model",
        "messages": [{"role": "user", "content": "hello"}],
        "temperature": 0,
        "seed": 7,
        "max_tokens": 50,
        "top_k": 3,
    }
    assert seen.headers["Authorization"] == "Bearer sk-test-key-0000000000000000"


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_client_errors_get_exactly_one_request(server: ScriptedServer, code: int) -> None:
    server.push(status(code, message="bad key"))
    with pytest.raises(BackendError) as info:
        transport(server).complete(request())
    assert server.count == 1
    assert info.value.status == code
    assert not info.value.transient
    assert "bad key" in str(info.value)


def test_429_with_retry_after_waits_then_succeeds(server: ScriptedServer) -> None:
    server.push(status(429, retry_after="1"), ok("done"))
    start = time.monotonic()
    reply = transport(server).complete(request())
    assert reply.text == "done"
    assert server.count == 2
    assert server.requests[1].at - server.requests[0].at >= 1.0
    assert time.monotonic() - start >= 1.0


def test_retry_after_as_http_date(server: ScriptedServer) -> None:
    server.push(status(503, retry_after=formatdate(time.time() + 2, usegmt=True)), ok())
    transport(server).complete(request())
    assert server.count == 2
    # HTTP dates have one-second resolution: at least a second of the two was waited.
    assert server.requests[1].at - server.requests[0].at >= 1.0


def test_retry_after_is_capped(server: ScriptedServer) -> None:
    policy = TransportPolicy(deadline=20, retry_after_cap=0.3)
    server.push(status(429, retry_after="3600"), ok())
    start = time.monotonic()
    transport(server, policy).complete(request())
    assert server.count == 2
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("code", [408, 409, 500, 502, 503, 504])
def test_transient_statuses_get_another_attempt(server: ScriptedServer, code: int) -> None:
    server.push(status(code), ok("second"))
    assert transport(server).complete(request()).text == "second"
    assert server.count == 2


def test_attempts_are_bounded(server: ScriptedServer) -> None:
    server.default = status(500)
    policy = TransportPolicy(max_attempts=3, deadline=20, backoff_initial=0.01, backoff_jitter=0)
    with pytest.raises(AttemptsExhausted) as info:
        transport(server, policy, use_breaker=False).complete(request())
    assert server.count == 3
    assert info.value.status == 500
    assert info.value.attempts_made == 3
    assert isinstance(info.value.last_error, BackendError)


def test_slow_reply_hits_the_deadline(server: ScriptedServer) -> None:
    server.push(slow(4))
    policy = TransportPolicy(deadline=1.0, backoff_initial=0.05)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        transport(server, policy).complete(request())
    assert time.monotonic() - start < 2.5
    assert server.count == 1  # the attempt's timeout was what was left of the deadline
    assert info.value.attempts_made == 1


def test_no_pause_is_started_that_would_end_past_the_deadline(server: ScriptedServer) -> None:
    server.push(status(429, retry_after="10"))
    policy = TransportPolicy(deadline=2.0)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="deadline of 2 s"):
        transport(server, policy).complete(request())
    assert time.monotonic() - start < 1.0
    assert server.count == 1


@pytest.mark.parametrize("behaviour", [drop, drop_mid], ids=["before-reply", "mid-reply"])
def test_dropped_connection_gets_another_attempt(server: ScriptedServer, behaviour) -> None:  # type: ignore[no-untyped-def]
    server.push(behaviour(), ok("after drop"))
    assert transport(server).complete(request()).text == "after drop"
    assert server.count == 2


def test_connection_refused_is_a_connection_error() -> None:
    with ScriptedServer() as srv:
        url = srv.url
    backend = OpenAIHTTPBackend(url)
    policy = TransportPolicy(max_attempts=2, deadline=5, backoff_initial=0.01)
    with pytest.raises(AttemptsExhausted) as info:
        Transport(backend, policy).complete(request())
    assert isinstance(info.value.last_error, BackendConnectionError)


def test_malformed_body_is_not_attempted_again(server: ScriptedServer) -> None:
    server.push(raw(b"<html>gateway</html>"))
    with pytest.raises(BackendError, match="malformed response body"):
        transport(server).complete(request())
    assert server.count == 1


def test_async_shares_the_loop(server: ScriptedServer) -> None:
    server.push(status(429, retry_after="1"), ok("async done"), status(401))
    t = transport(server)

    async def main() -> None:
        start = time.monotonic()
        assert (await t.acomplete(request())).text == "async done"
        assert time.monotonic() - start >= 1.0
        with pytest.raises(BackendError) as info:
            await t.acomplete(request())
        assert info.value.status == 401

    asyncio.run(main())
    assert server.count == 3


def test_async_attempt_is_cut_off_at_the_deadline(server: ScriptedServer) -> None:
    server.push(slow(4))

    async def main() -> None:
        with pytest.raises(DeadlineExceeded):
            await transport(server, TransportPolicy(deadline=0.8)).acomplete(request())

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 2.5


def test_circuit_breaker_pauses_new_calls_and_says_so(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proctor.llm")
    events: list[TransportEvent] = []
    breaker = CircuitBreaker(threshold=3, cooldown=1.0)
    policy = TransportPolicy(max_attempts=3, deadline=10, backoff_initial=0.01, backoff_jitter=0)
    t = transport(server, policy, breaker=breaker, observer=events.append)
    breaker.on_change = t._breaker_changed
    server.default = status(500)
    with pytest.raises(AttemptsExhausted):
        t.complete(request())
    assert server.count == 3
    assert breaker.state == "open"
    assert "circuit open after 3 consecutive failures" in caplog.text

    # A call whose deadline ends before the pause does is refused without a request.
    short = transport(server, TransportPolicy(deadline=0.3), breaker=breaker)
    with pytest.raises(CircuitOpenError, match="paused") as info:
        short.complete(request())
    assert info.value.failures == 3
    assert server.count == 3

    # A call that can wait waits out the pause; its probe succeeds and closes the circuit.
    server.default = ok("healthy")
    start = time.monotonic()
    assert t.complete(request()).text == "healthy"
    assert time.monotonic() - start >= 0.5
    assert server.count == 4
    assert breaker.state == "closed"
    kinds = [e.kind for e in events]
    assert "breaker_open" in kinds and kinds[-1] in {"success", "breaker_closed"}
    assert "breaker_closed" in kinds


def test_failed_probe_reopens_the_circuit(server: ScriptedServer) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=0.3)
    policy = TransportPolicy(max_attempts=1, deadline=5)
    t = transport(server, policy, breaker=breaker)
    server.default = status(503)
    with pytest.raises(AttemptsExhausted):
        t.complete(request())
    assert breaker.state == "open"
    with pytest.raises(AttemptsExhausted):
        t.complete(request())  # waits 0.3 s, probes, fails
    assert breaker.state == "open"
    assert server.count == 2


def test_events_and_log_wording(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="proctor.llm")
    events: list[TransportEvent] = []
    server.push(status(500), status(429, retry_after="0"), ok())
    transport(server, observer=events.append).complete(request())
    kinds = [e.kind for e in events]
    assert kinds == ["attempt_failed", "backoff", "attempt_failed", "backoff", "success"]
    assert [e.status for e in events if e.kind == "backoff"] == [500, 429]
    assert "attempt 1 of 5 failed (HTTP 500" in caplog.text
    assert "backing off" in caplog.text
    for record in caplog.records:
        assert not RETRY_WORDS.search(record.getMessage()), record.getMessage()


def test_observer_failure_does_not_fail_the_call(server: ScriptedServer) -> None:
    def broken(event: TransportEvent) -> None:
        raise RuntimeError("observer bug")

    assert transport(server, observer=broken).complete(request()).text == '{"answer": 42}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_breaker_bounds_requests_of_concurrent_async_calls(server: ScriptedServer) -> None:
    """Without the breaker, 10 calls × 3 attempts would be 30 requests to a failing server."""
    server.default = status(500)
    breaker = CircuitBreaker(threshold=3, cooldown=5.0)
    policy = TransportPolicy(max_attempts=3, deadline=1.0, backoff_initial=0.05, backoff_jitter=0)
    t = transport(server, policy, breaker=breaker)

    async def main() -> list[BaseException | object]:
        calls = [t.acomplete(request()) for _ in range(10)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, AttemptsExhausted | CircuitOpenError) for o in outcomes), outcomes
    assert any(isinstance(o, CircuitOpenError) for o in outcomes)
    assert breaker.state == "open"
    assert server.count <= 10
