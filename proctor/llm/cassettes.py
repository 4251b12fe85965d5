"""Cassettes: recorded replies, so CI and the quickstart run offline and deterministically.

A cassette directory holds one JSON file per request, named by
:attr:`proctor.llm.backends.Request.key`: the SHA-256 of the whole canonical request
(model, messages and every parameter: temperature, seed, max_tokens, ...), so a changed
parameter is a different cassette and never silently answered by an old one. ``record``
wraps a real backend and writes what it gets; ``replay`` answers from the directory and
fails loudly (:class:`~proctor.llm.errors.CassetteMissing`) on anything not recorded.

Recorded files never hold secrets: parameters such as ``api_key`` or ``headers`` are not
part of the canonical request at all, and strings that look like keys or bearer tokens are
masked in the messages and the reply before they are written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proctor.llm.backends import (
    SECRET_PARAMS,
    Backend,
    Reply,
    Request,
    SyncBackend,
    canonical_json,
)
from proctor.llm.errors import CassetteMissing

FORMAT = 1
MASK = "[REDACTED]"

# Provider keys and tokens as they appear in text: OpenAI/Anthropic-style "sk-...",
# bearer tokens, GitHub tokens, AWS access key ids, key=value pairs naming a secret.
_SECRET_TEXT = re.compile(
    r"(?:\bsk-[A-Za-z0-9_-]{16,}"
    r"|\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\b(?:api[_-]?key|token|secret|password)\s*[=:]\s*['\"]?[^\s'\",]{6,})",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    return _SECRET_TEXT.sub(MASK, text)


def redact(value: Any) -> Any:
    """``value`` with secret-named keys masked and secret-looking strings masked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if str(k).lower() in SECRET_PARAMS else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def cassette_path(directory: Path, request: Request) -> Path:
    return directory / f"{request.key}.json"


class ReplayBackend(SyncBackend):
    """Answers from a cassette directory; never touches the network."""

    name = "replay"

    def __init__(self, cassettes: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(cassettes) if cassettes is not None else None

    def configure(self, options: Mapping[str, Any]) -> ReplayBackend:
        unknown = set(options) - {"cassettes"}
        if unknown:
            raise ValueError(f"replay backend: unknown options {sorted(unknown)}")
        if "cassettes" not in options:
            raise ValueError("replay backend needs a 'cassettes' directory")
        return ReplayBackend(options["cassettes"])

    def complete(self, request: Request) -> Reply:
        if self.directory is None:
            raise CassetteMissing(
                "replay backend has no cassette directory configured", key=request.key
            )
        path = cassette_path(self.directory, request)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            last = str(request.messages[-1].get("content", "")) if request.messages else ""
            raise CassetteMissing(
                f"no cassette for this request in {self.directory} (model {request.model!r}, "
                f"key {request.key[:16]}, last message {last[:60]!r}); record it with the "
                f"'record' backend",
                key=request.key,
            ) from None
        except (OSError, ValueError) as exc:
            raise CassetteMissing(f"cassette {path} is unreadable: {exc}", key=request.key) from exc
        if not isinstance(record, dict) or record.get("key") != request.key:
            raise CassetteMissing(
                f"cassette {path} does not belong to this request", key=request.key
            )
        reply = Reply.from_dict(record.get("reply") or {})
        return Reply(
            text=reply.text,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
            request_id=reply.request_id,
            model=reply.model,
            backend=self.name,
        )


class RecordBackend:
    """Wraps ``inner``: every successful reply is also written as a cassette."""

    name = "record"

    def __init__(
        self, inner: Backend | None = None, cassettes: str | os.PathLike[str] | None = None
    ) -> None:
        self.inner = inner
        self.directory = Path(cassettes) if cassettes is not None else None

    def configure(self, options: Mapping[str, Any]) -> RecordBackend:
        unknown = set(options) - {"cassettes", "inner"}
        if unknown:
            raise ValueError(f"record backend: unknown options {sorted(unknown)}")
        inner = options.get("inner")
        if inner is None or "cassettes" not in options:
            raise ValueError("record backend needs 'inner' (a backend) and 'cassettes'")
        return RecordBackend(inner, options["cassettes"])

    def _ready(self) -> tuple[Backend, Path]:
        if self.inner is None or self.directory is None:
            raise ValueError("record backend is not configured (inner backend, cassettes)")
        return self.inner, self.directory

    def write(self, request: Request, reply: Reply) -> Path:
        """The cassette for ``request``, written atomically; returns its path."""
        _, directory = self._ready()
        directory.mkdir(parents=True, exist_ok=True)
        record = {
            "format": FORMAT,
            "key": request.key,
            "request": redact(request.canonical()),
            "reply": redact(reply.to_dict()),
        }
        path = cassette_path(directory, request)
        text = json.dumps(json.loads(canonical_json(record)), indent=1, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def complete(self, request: Request) -> Reply:
        inner, _ = self._ready()
        reply = inner.complete(request)
        self.write(request, reply)
        return reply

    async def acomplete(self, request: Request) -> Reply:
        inner, _ = self._ready()
        reply = await inner.acomplete(request)
        self.write(request, reply)
        return reply
