"""The one transport loop every backend call goes through, sync and async.

Another attempt is made only for 408, 409, 429, 5xx and connection errors; a 400, 401 or
403 fails at once. A server's ``Retry-After`` (seconds or an HTTP date, capped) is
honoured; otherwise the pause is exponential with jitter (tenacity). One deadline covers
every attempt and pause: each attempt gets what is left of it as its timeout, and no pause
is started that would end past it. A circuit breaker shared by all calls of a transport
opens after N consecutive transient failures and pauses new calls until a probe succeeds.

Lower layers (litellm's ``num_retries``, the OpenAI SDK's ``max_retries``) are set to 0 by
their backends: attempts multiply across layers, so exactly one layer owns them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tenacity

from proctor.llm.backends import Backend, Reply, Request
from proctor.llm.errors import (
    AttemptsExhausted,
    BackendError,
    BackendTimeout,
    CircuitOpenError,
    DeadlineExceeded,
)

if TYPE_CHECKING:
    from proctor.llm.cache import ResponseCache

log = logging.getLogger("proctor.llm.transport")


@dataclass(frozen=True)
class TransportPolicy:
    """How hard one call tries. ``deadline`` (seconds, None for none) spans every
    attempt and pause; ``attempt_timeout`` caps a single attempt."""

    max_attempts: int = 5
    deadline: float | None = 120.0
    attempt_timeout: float | None = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    backoff_jitter: float = 0.5
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")


@dataclass(frozen=True)
class TransportEvent:
    """What the transport tells an observer (metrics, the event hook, a progress bar).

    ``kind`` is one of: attempt_failed, backoff, success, gave_up, cache_hit, cache_miss,
    breaker_open, breaker_half_open, breaker_closed.
    """

    kind: str
    backend: str
    request_key: str | None = None
    attempt: int | None = None
    status: int | None = None
    delay: float | None = None
    error: str | None = None


Observer = Callable[[TransportEvent], None]


class CircuitBreaker:
    """Opens after ``threshold`` consecutive transient failures; while open, calls wait
    (or fail, when the pause outlasts their deadline) until ``cooldown`` has passed; then
    one probe goes through, and its outcome closes or reopens the circuit.

    Thread-safe, and shared by every call of a transport, sync or async.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        *,
        on_change: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self.on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self.state = self.CLOSED
        self.failures = 0
        self._opened_at = 0.0
        self._probing = False

    def acquire(self) -> float:
        """0.0 if a call may go now, else the seconds to wait before asking again."""
        with self._lock:
            if self.state == self.CLOSED:
                return 0.0
            now = self._clock()
            if self.state == self.OPEN:
                left = self._opened_at + self.cooldown - now
                if left > 0:
                    return left
                self._set(self.HALF_OPEN)
                self._probing = True
                return 0.0
            if not self._probing:
                self._probing = True
                return 0.0
            return min(0.05, self.cooldown) or 0.05

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self._probing = False
            if self.state != self.CLOSED:
                self._set(self.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            self._probing = False
            if self.state == self.HALF_OPEN or (
                self.state == self.CLOSED and self.failures >= self.threshold
            ):
                self._opened_at = self._clock()
                self._set(self.OPEN)

    def release(self) -> None:
        """An attempt ended in a way that says nothing about the server's health."""
        with self._lock:
            self._probing = False

    def _set(self, state: str) -> None:
        self.state = state
        if state == self.OPEN:
            log.warning(
                "circuit open after %d consecutive failures: pausing new calls for %.1f s",
                self.failures,
                self.cooldown,
            )
        elif state == self.CLOSED:
            log.info("circuit closed: calls resume")
        if self.on_change is not None:
            try:
                self.on_change(state, self.failures)
            except Exception:
                log.exception("circuit breaker listener failed")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error"
    status = getattr(exc, "status", None)
    prefix = f"HTTP {status}" if status is not None else type(exc).__name__
    return f"{prefix}: {exc}"


class _Call:
    """The state of one call through the loop: its clock, its attempts, its last error."""

    def __init__(self, transport: Transport, request: Request) -> None:
        self.transport = transport
        self.policy = transport.policy
        self.request = request
        self.key = request.key
        self.start = time.monotonic()
        self.attempt = 0
        self.last_error: BaseException | None = None

    def remaining(self) -> float | None:
        if self.policy.deadline is None:
            return None
        return self.policy.deadline - (time.monotonic() - self.start)

    def attempt_request(self) -> Request:
        """The request for the next attempt, its timeout cut to what the deadline leaves."""
        self.attempt += 1
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise self.deadline_error(self.attempt - 1)
        limits = [t for t in (self.request.timeout, self.policy.attempt_timeout, remaining) if t]
        return self.request.with_timeout(min(limits) if limits else None)

    def breaker_wait(self) -> float:
        """Seconds to pause for the breaker; raises when the pause outlasts the deadline."""
        wait = self.transport.breaker.acquire() if self.transport.breaker else 0.0
        if wait <= 0:
            return 0.0
        remaining = self.remaining()
        if remaining is not None and wait >= remaining:
            breaker = self.transport.breaker
            assert breaker is not None
            raise CircuitOpenError(
                f"{self.transport.backend.name}: circuit open after {breaker.failures} "
                f"consecutive failures; calls are paused for {wait:.1f} s more, past this "
                f"call's deadline",
                reopens_in=wait,
                failures=breaker.failures,
            )
        log.info("circuit open: attempt %d waits %.1f s for the pause to end", self.attempt, wait)
        return wait

    def failed(self, exc: BaseException) -> None:
        self.last_error = exc
        breaker = self.transport.breaker
        if isinstance(exc, BackendError):
            if exc.transient:
                if breaker:
                    breaker.record_failure()
                self.transport.emit(
                    "attempt_failed",
                    self.key,
                    attempt=self.attempt,
                    status=exc.status,
                    error=str(exc),
                )
                return
            if exc.status is not None and breaker:
                breaker.record_success()  # the server answered: it is up
                return
        if breaker:
            breaker.release()

    def succeeded(self) -> None:
        if self.transport.breaker:
            self.transport.breaker.record_success()
        self.transport.emit("success", self.key, attempt=self.attempt)

    # -- tenacity callbacks ----------------------------------------------------------------

    def wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked >= 0:
            capped = min(float(asked), self.policy.retry_after_cap)
            return capped + random.uniform(0, min(0.1 * capped, 1.0))
        return self.transport.backoff(state)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.policy.max_attempts:
            return True
        remaining = self.remaining()
        return remaining is not None and state.upcoming_sleep >= remaining

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        delay = state.upcoming_sleep
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: attempt %d of %d failed (%s); backing off %.2f s before another attempt",
            self.transport.backend.name,
            state.attempt_number,
            self.policy.max_attempts,
            _describe(exc),
            delay,
        )
        self.transport.emit(
            "backoff",
            self.key,
            attempt=state.attempt_number,
            status=getattr(exc, "status", None),
            delay=delay,
        )

    def give_up(self, state: tenacity.RetryCallState) -> Any:
        exc = state.outcome.exception() if state.outcome else self.last_error
        self.transport.emit(
            "gave_up",
            self.key,
            attempt=self.attempt,
            status=getattr(exc, "status", None),
            error=str(exc),
        )
        if state.attempt_number >= self.policy.max_attempts:
            assert exc is not None
            raise AttemptsExhausted(
                f"{self.transport.backend.name}: {_describe(exc)} "
                f"(gave up after {self.attempt} attempts)",
                attempts_made=self.attempt,
                last_error=exc,
            ) from exc
        raise self.deadline_error(self.attempt) from exc

    def deadline_error(self, made: int) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{self.transport.backend.name}: deadline of {self.policy.deadline:g} s reached "
            f"after {made} attempt{'s' if made != 1 else ''}; last: {_describe(self.last_error)}",
            attempts_made=made,
            last_error=self.last_error,
        )


class Transport:
    """A backend behind the loop, the breaker and (optionally) the response cache.

    Build one per backend and share it: the breaker is only useful if every call to the
    same server sees it. ``observer`` receives :class:`TransportEvent` s and must be quick;
    an observer that raises is logged and ignored.
    """

    def __init__(
        self,
        backend: Backend,
        policy: TransportPolicy | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        cache: ResponseCache | None = None,
        observer: Observer | None = None,
        use_breaker: bool = True,
    ) -> None:
        self.backend = backend
        self.policy = policy or TransportPolicy()
        self.observer = observer
        self.cache = cache
        if breaker is None and use_breaker:
            breaker = CircuitBreaker(on_change=self._breaker_changed)
        self.breaker = breaker

    def backoff(self, state: tenacity.RetryCallState) -> float:
        """Exponential from ``backoff_initial``, capped, plus up to ``backoff_jitter``
        of noise so calls that failed together do not come back together."""
        p = self.policy
        exp = p.backoff_initial * 2.0 ** max(state.attempt_number - 1, 0)
        return min(exp, p.backoff_max) + random.uniform(0, p.backoff_jitter)

    @property
    def name(self) -> str:
        return self.backend.name

    def emit(self, kind: str, key: str | None, **fields: Any) -> None:
        if self.observer is None:
            return
        try:
            self.observer(
                TransportEvent(kind=kind, backend=self.backend.name, request_key=key, **fields)
            )
        except Exception:
            log.exception("transport observer failed on %s", kind)

    def _breaker_changed(self, state: str, failures: int) -> None:
        kind = {"open": "breaker_open", "half-open": "breaker_half_open"}.get(
            state, "breaker_closed"
        )
        self.emit(kind, None, error=f"{failures} consecutive failures" if state == "open" else None)

    # -- cache -----------------------------------------------------------------------------

    def _cached(self, request: Request) -> Reply | None:
        if self.cache is None:
            return None
        key = self.cache.key_for(self.backend.name, request)
        reply = self.cache.get(key)
        self.emit("cache_hit" if reply is not None else "cache_miss", request.key)
        return reply

    def _store(self, request: Request, reply: Reply) -> None:
        if self.cache is not None:
            self.cache.put(self.cache.key_for(self.backend.name, request), request, reply)

    # -- calls -----------------------------------------------------------------------------

    def _retrying_kwargs(self, call: _Call) -> dict[str, Any]:
        return {
            "stop": call.stop,
            "wait": call.wait,
            "retry": tenacity.retry_if_exception(_is_transient),
            "before_sleep": call.before_sleep,
            "retry_error_callback": call.give_up,
        }

    def complete(self, request: Request, *, use_cache: bool = True) -> Reply:
        """The backend's reply for ``request``, or a typed error once the loop gives up."""
        if use_cache and (hit := self._cached(request)) is not None:
            return hit
        call = _Call(self, request)

        def attempt() -> Reply:
            req = call.attempt_request()
            while (pause := call.breaker_wait()) > 0:
                time.sleep(pause)
                req = req.with_timeout(_shrink(req.timeout, call.remaining()))
            try:
                reply = self.backend.complete(req)
            except BaseException as exc:
                call.failed(exc)
                raise
            call.succeeded()
            return reply

        reply: Reply = tenacity.Retrying(sleep=time.sleep, **self._retrying_kwargs(call))(attempt)
        self._store(request, reply)
        return reply

    async def acomplete(self, request: Request, *, use_cache: bool = True) -> Reply:
        """:meth:`complete` for asyncio; each attempt is also cut off at its timeout."""
        if use_cache and (hit := self._cached(request)) is not None:
            return hit
        call = _Call(self, request)

        async def attempt() -> Reply:
            req = call.attempt_request()
            while (pause := call.breaker_wait()) > 0:
                await asyncio.sleep(pause)
                req = req.with_timeout(_shrink(req.timeout, call.remaining()))
            try:
                if req.timeout is None:
                    reply = await self.backend.acomplete(req)
                else:
                    try:
                        reply = await asyncio.wait_for(self.backend.acomplete(req), req.timeout)
                    except TimeoutError as exc:
                        raise BackendTimeout(
                            f"no reply within {req.timeout:.1f} s", backend=self.backend.name
                        ) from exc
            except BaseException as exc:
                call.failed(exc)
                raise
            call.succeeded()
            return reply

        retrying = tenacity.AsyncRetrying(sleep=asyncio.sleep, **self._retrying_kwargs(call))
        reply: Reply = await retrying(attempt)
        self._store(request, reply)
        return reply


def _shrink(timeout: float | None, remaining: float | None) -> float | None:
    if remaining is None:
        return timeout
    return min(timeout, remaining) if timeout is not None else remaining
