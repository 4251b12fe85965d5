"""Talking to language models: the backend contract, the one transport loop, structured
output and the response cache. Code generation, batch migration and their commands build
on this package; it knows nothing of procedures, proposals or the store.

What belongs here:

* ``backends`` — typed :class:`Request` / :class:`Reply`, the :class:`Backend` protocol that
  ``proctor_register_llm_backends`` registers, :func:`build_backend` (stdlib only);
* ``errors`` — typed errors carrying HTTP status and ``Retry-After``;
* ``transport`` — :class:`Transport`: attempts, backoff, deadline, circuit breaker, cache;
* ``structured`` / ``extract`` — :func:`parse_structured`, :func:`generate_structured`;
* ``cache`` — :class:`ResponseCache`, content-addressed, under ``.git/proctor/llm-cache``;
* backends that need no SDK: ``cassettes`` (replay, record), ``fake``, ``openai_http``.
  The litellm backend lives in ``proctor.plugins.llm_litellm``.

Names load lazily: registering backends must not import pydantic or tenacity.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proctor.llm.backends import Backend, Reply, Request, Usage, build_backend
    from proctor.llm.cache import CacheReport, ResponseCache, default_cache_dir
    from proctor.llm.cassettes import RecordBackend, ReplayBackend
    from proctor.llm.errors import (
        AttemptsExhausted,
        BackendConnectionError,
        BackendError,
        BackendTimeout,
        CassetteMissing,
        CircuitOpenError,
        DeadlineExceeded,
        GenerationFailed,
        LLMError,
        StructuredOutputError,
        TruncatedReply,
    )
    from proctor.llm.fake import FakeBackend
    from proctor.llm.openai_http import OpenAIHTTPBackend
    from proctor.llm.structured import (
        Attempt,
        StructuredResult,
        agenerate_structured,
        generate_structured,
        parse_structured,
    )
    from proctor.llm.transport import CircuitBreaker, Transport, TransportEvent, TransportPolicy

_LAZY = {
    **dict.fromkeys(("Backend", "Reply", "Request", "Usage", "build_backend"), "backends"),
    **dict.fromkeys(("CacheReport", "ResponseCache", "default_cache_dir"), "cache"),
    **dict.fromkeys(("RecordBackend", "ReplayBackend"), "cassettes"),
    **dict.fromkeys(
        (
            "AttemptsExhausted",
            "BackendConnectionError",
            "BackendError",
            "BackendTimeout",
            "CassetteMissing",
            "CircuitOpenError",
            "DeadlineExceeded",
            "GenerationFailed",
            "LLMError",
            "StructuredOutputError",
            "TruncatedReply",
        ),
        "errors",
    ),
    "FakeBackend": "fake",
    "OpenAIHTTPBackend": "openai_http",
    **dict.fromkeys(
        (
            "Attempt",
            "StructuredResult",
            "agenerate_structured",
            "generate_structured",
            "parse_structured",
        ),
        "structured",
    ),
    **dict.fromkeys(
        ("CircuitBreaker", "Transport", "TransportEvent", "TransportPolicy"), "transport"
    ),
}

__all__ = [
    "Attempt",
    "AttemptsExhausted",
    "Backend",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeout",
    "CacheReport",
    "CassetteMissing",
    "CircuitBreaker",
    "CircuitOpenError",
    "DeadlineExceeded",
    "FakeBackend",
    "GenerationFailed",
    "LLMError",
    "OpenAIHTTPBackend",
    "RecordBackend",
    "ReplayBackend",
    "Reply",
    "Request",
    "ResponseCache",
    "StructuredOutputError",
    "StructuredResult",
    "Transport",
    "TransportEvent",
    "TransportPolicy",
    "TruncatedReply",
    "Usage",
    "agenerate_structured",
    "build_backend",
    "default_cache_dir",
    "generate_structured",
    "parse_structured",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'proctor.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"proctor.llm.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
