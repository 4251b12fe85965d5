"""Talking to language models: the backend contract, the one transport loop, structured
output and the response cache; and code generation with batch migration on top of them.
The transport, parser and cache know nothing of procedures or the store; generation uses
the layers below (procedures, checks, runs) and commits through an action, never itself.

What belongs here:

* ``backends`` — typed :class:`Request` / :class:`Reply`, the :class:`Backend` protocol that
  ``proctor_register_llm_backends`` registers, :func:`build_backend` (stdlib only);
* ``errors`` — typed errors carrying HTTP status and ``Retry-After``;
* ``transport`` — :class:`Transport`: attempts, backoff, deadline, circuit breaker, cache;
* ``structured`` / ``extract`` — :func:`parse_structured`, :func:`generate_structured`;
* ``cache`` — :class:`ResponseCache`, content-addressed, under ``.git/proctor/llm-cache``;
* backends that need no SDK: ``cassettes`` (replay, record), ``fake``, ``openai_http``.
  The litellm backend lives in ``proctor.plugins.llm_litellm``;
* ``skeleton`` — :class:`CodeExtractor`, the deterministic skeleton from metadata;
* ``generate`` — :class:`Generator`: rounds of generate, check, examples, repair; the
  confidence and its decision band (a policy input of ``procedure.generate``);
* ``batch`` — :class:`Batch`: ``proctor generate --all``, its state file and resume.

Names load lazily: registering backends must not import pydantic or tenacity.
"""

from __future__ import annotations

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
    "Backend": "proctor.llm.backends",
    "Reply": "proctor.llm.backends",
    "Request": "proctor.llm.backends",
    "Usage": "proctor.llm.backends",
    "build_backend": "proctor.llm.backends",
    "CacheReport": "proctor.llm.cache",
    "ResponseCache": "proctor.llm.cache",
    "default_cache_dir": "proctor.llm.cache",
    "RecordBackend": "proctor.llm.cassettes",
    "ReplayBackend": "proctor.llm.cassettes",
    "AttemptsExhausted": "proctor.llm.errors",
    "BackendConnectionError": "proctor.llm.errors",
    "BackendError": "proctor.llm.errors",
    "BackendTimeout": "proctor.llm.errors",
    "CassetteMissing": "proctor.llm.errors",
    "CircuitOpenError": "proctor.llm.errors",
    "DeadlineExceeded": "proctor.llm.errors",
    "GenerationFailed": "proctor.llm.errors",
    "LLMError": "proctor.llm.errors",
    "StructuredOutputError": "proctor.llm.errors",
    "TruncatedReply": "proctor.llm.errors",
    "FakeBackend": "proctor.llm.fake",
    "OpenAIHTTPBackend": "proctor.llm.openai_http",
    "Attempt": "proctor.llm.structured",
    "StructuredResult": "proctor.llm.structured",
    "agenerate_structured": "proctor.llm.structured",
    "generate_structured": "proctor.llm.structured",
    "parse_structured": "proctor.llm.structured",
    "CircuitBreaker": "proctor.llm.transport",
    "Transport": "proctor.llm.transport",
    "TransportEvent": "proctor.llm.transport",
    "TransportPolicy": "proctor.llm.transport",
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
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'proctor.llm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
