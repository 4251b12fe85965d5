"""Typed errors of the LLM layer.

The transport loop decides what to do next from the error *type* and its fields (HTTP
status, ``Retry-After``), never from a message: a backend that maps its library's errors
onto these gets the same loop, backoff and breaker as every other backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from proctor.core.errors import EXIT_FINDINGS, EXIT_USAGE, ProctorError

# Statuses worth another attempt: the server or something in front of it may answer
# differently in a moment. Everything else in 4xx is the caller's fault and stays so.
TRANSIENT_STATUSES = frozenset({408, 409, 429})


def is_transient_status(status: int | None) -> bool:
    """408/409/429 and every 5xx; never 400, 401, 403, 404 or 422."""
    if status is None:
        return False
    return status in TRANSIENT_STATUSES or 500 <= status <= 599


class LLMError(ProctorError):
    """Base of every error the LLM layer raises on purpose.

    ``attempts`` is filled by :func:`proctor.llm.structured.generate_structured` before the
    error leaves it, so a caller recording a generation keeps every attempt, failed ones
    included.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.attempts: list[Any] = []


class BackendError(LLMError):
    """A backend call failed. ``status`` is the HTTP status when there was one.

    ``retry_after`` is the server's ``Retry-After`` in seconds (already parsed, not yet
    capped), ``request_id`` the provider's id for the failed request when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.request_id = request_id
        self.backend = backend

    @property
    def transient(self) -> bool:
        """Whether another attempt may succeed (the transport loop asks only this)."""
        return is_transient_status(self.status)


class BackendConnectionError(BackendError):
    """No HTTP answer at all: refused, reset, dropped mid-reply, DNS. Always transient."""

    @property
    def transient(self) -> bool:
        return True


class BackendTimeout(BackendConnectionError):
    """One attempt took longer than its share of the deadline."""


class DeadlineExceeded(LLMError):
    """The overall deadline ran out across attempts; ``last_error`` is the final failure."""

    def __init__(self, message: str, *, attempts_made: int, last_error: BaseException | None):
        super().__init__(message)
        self.attempts_made = attempts_made
        self.last_error = last_error
        self.status = getattr(last_error, "status", None)


class AttemptsExhausted(LLMError):
    """Every allowed attempt failed with a transient error."""

    def __init__(self, message: str, *, attempts_made: int, last_error: BaseException):
        super().__init__(message)
        self.attempts_made = attempts_made
        self.last_error = last_error
        self.status = getattr(last_error, "status", None)


class CircuitOpenError(LLMError):
    """The circuit breaker is open and its pause outlasts this call's deadline."""

    def __init__(self, message: str, *, reopens_in: float, failures: int) -> None:
        super().__init__(message)
        self.reopens_in = reopens_in
        self.failures = failures


class CassetteMissing(LLMError):
    """The replay backend has no recorded reply for this exact request."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class FakeExhausted(LLMError):
    """The fake backend was called more often than its script has replies."""


class StructuredOutputError(LLMError):
    """A reply could not be turned into the requested model.

    ``errors`` are one-line problems (JSON syntax or validation), best candidate first;
    they are what a re-ask sends back to the model.
    """

    def __init__(self, message: str, *, errors: Sequence[str] = (), text: str = "") -> None:
        super().__init__(message)
        self.errors = list(errors)
        self.text = text


class TruncatedReply(StructuredOutputError):
    """The reply stopped at the token limit (``finish_reason == "length"``).

    Never repaired: json-repair would close the open string and brackets and hand back
    valid JSON holding cut-off code.
    """


class GenerationFailed(LLMError):
    """Structured generation gave up after its bounded re-asks; see ``attempts``."""

    def __init__(self, message: str, *, attempts: Sequence[Any], errors: Sequence[str]):
        super().__init__(message)
        self.attempts = list(attempts)
        self.errors = list(errors)
