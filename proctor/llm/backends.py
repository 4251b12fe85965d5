"""The backend contract: a typed request in, a typed reply out, typed errors otherwise.

A backend does exactly one attempt per call. Everything around the attempt (another
attempt, backoff, ``Retry-After``, the deadline, the circuit breaker, the cache) is the
transport loop's job (:mod:`proctor.llm.transport`), so no backend may retry on its own:
retries that stack across layers are how one call becomes five requests.

This module is stdlib only: registering backends (``proctor plugins`` runs every
registration hook) must not pay for pydantic, tenacity or a provider SDK.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

# Parameters that identify the caller or where to send the request, never what is asked:
# they are left out of the request key (a new API key must not miss every cassette) and
# scrubbed from anything written to disk.
SECRET_PARAMS = frozenset(
    {
        "api_key",
        "api-key",
        "authorization",
        "headers",
        "extra_headers",
        "token",
        "password",
        "secret",
        "api_base",
        "base_url",
    }
)

# The sampling parameters most callers set, typed; anything else goes in ``extra``.
_TYPED_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "stop", "response_format")


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept as is.

    Hashes of requests and cache entries are taken over this text, so two equal requests
    written in a different key order hash the same.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Request:
    """Everything that decides the model's answer, and nothing else.

    ``timeout`` is the limit for one attempt in seconds. The transport loop sets it from
    what is left of the deadline; it is not part of :attr:`key`, because waiting longer
    does not change what the model says.
    """

    model: str
    messages: tuple[Mapping[str, Any], ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    response_format: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None

    @classmethod
    def build(
        cls,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Request:
        """A request from loose parameters: known names become fields, the rest ``extra``."""
        params = dict(params or {})
        typed: dict[str, Any] = {name: params.pop(name) for name in _TYPED_PARAMS if name in params}
        if isinstance(typed.get("stop"), str):
            typed["stop"] = (typed["stop"],)
        elif typed.get("stop") is not None:
            typed["stop"] = tuple(typed["stop"])
        return cls(
            model=model,
            messages=tuple(dict(m) for m in messages),
            extra=params,
            timeout=timeout,
            **typed,
        )

    def params(self) -> dict[str, Any]:
        """Every parameter that is set, typed ones and ``extra`` together, for the wire."""
        out: dict[str, Any] = {}
        for name in _TYPED_PARAMS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        out.update(self.extra)
        return out

    def canonical(self) -> dict[str, Any]:
        """The request as hashed: model, messages and every parameter except secrets."""
        params = {k: v for k, v in self.params().items() if k.lower() not in SECRET_PARAMS}
        return {"model": self.model, "messages": [dict(m) for m in self.messages], **params}

    @property
    def key(self) -> str:
        """SHA-256 of the canonical request: the cassette name and the cache key's base."""
        return sha256_hex(canonical_json(self.canonical()))

    @property
    def prompt_hash(self) -> str:
        """SHA-256 of the messages alone: the same prompt sent to another model."""
        return sha256_hex(canonical_json([dict(m) for m in self.messages]))

    def with_timeout(self, timeout: float | None) -> Request:
        return replace(self, timeout=timeout)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Usage:
        data = data or {}

        def num(name: str) -> int:
            value = data.get(name)
            return int(value) if isinstance(value, int | float) else 0

        prompt, completion = num("prompt_tokens"), num("completion_tokens")
        return cls(prompt, completion, num("total_tokens") or prompt + completion)


@dataclass(frozen=True)
class Reply:
    """One answer. ``finish_reason`` is the provider's (``stop``, ``length``, ...).

    ``cached`` says it came from the response cache rather than from the backend.
    """

    text: str
    finish_reason: str | None = "stop"
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    model: str | None = None
    backend: str | None = None
    cached: bool = False

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
            "request_id": self.request_id,
            "model": self.model,
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` on a malformed record."""
        text = data.get("text")
        if not isinstance(text, str):
            raise ValueError("reply record has no text")
        finish = data.get("finish_reason")
        return cls(
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            usage=Usage.from_mapping(data.get("usage")),
            request_id=_opt_str(data.get("request_id")),
            model=_opt_str(data.get("model")),
            backend=_opt_str(data.get("backend")),
        )


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@runtime_checkable
class Backend(Protocol):
    """What ``proctor_register_llm_backends`` registers.

    ``complete`` makes one attempt and raises a :class:`proctor.llm.errors.BackendError`
    (or a subclass) on failure; it honours ``request.timeout``. ``acomplete`` is the same
    for asyncio. A backend may also offer ``configure(options) -> Backend`` returning a
    configured copy (see :func:`build_backend`).
    """

    name: str

    def complete(self, request: Request) -> Reply: ...

    async def acomplete(self, request: Request) -> Reply: ...


class SyncBackend:
    """Base for backends that only have a blocking client: ``acomplete`` runs
    ``complete`` in a worker thread so an event loop is never blocked."""

    name = "sync"

    def complete(self, request: Request) -> Reply:
        raise NotImplementedError

    async def acomplete(self, request: Request) -> Reply:
        return await asyncio.to_thread(self.complete, request)


# -- helpers for backend authors -----------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Returns None for a missing or unreadable value (the caller then uses its own
    backoff) and 0.0 for a date in the past. Not capped here: the policy caps it.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is unreadable
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def retry_after_from_headers(headers: Mapping[str, str] | Any) -> float | None:
    """The wait a response's headers ask for: ``retry-after-ms`` (OpenAI) first, then
    ``Retry-After``. ``headers`` is any case-insensitive mapping with ``get``."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    return parse_retry_after(value if isinstance(value, str) else None)


def build_backend(
    registry: Mapping[str, Any], name: str, options: Mapping[str, Any] | None = None
) -> Backend:
    """The backend registered as ``name``, configured with ``options``.

    ``registry`` is what ``PluginManager.llm_backends()`` returns. An ``inner`` option
    naming another backend (the ``record`` wrapper's) is built first, with the options
    under ``inner_options``, so configuration stays plain data.
    """
    from proctor.core.errors import UsageError

    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise UsageError(f"unknown LLM backend {name!r} (registered: {known})")
    backend = registry[name]
    opts = dict(options or {})
    inner = opts.get("inner")
    if isinstance(inner, str):
        opts["inner"] = build_backend(registry, inner, opts.pop("inner_options", None))
    configure = getattr(backend, "configure", None)
    if callable(configure):
        try:
            configured: Backend = configure(opts)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"LLM backend {name!r}: {exc}") from exc
        return configured
    if opts:
        raise UsageError(f"LLM backend {name!r} takes no options (got {', '.join(sorted(opts))})")
    return backend  # type: ignore[no-any-return]
