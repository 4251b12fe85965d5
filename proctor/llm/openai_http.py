"""``openai-http``: any OpenAI-compatible ``/chat/completions`` server, with the stdlib only.

For local servers (llama.cpp's ``llama-server``, Ollama's ``/v1``, vLLM, a LiteLLM
proxy) no SDK is needed: one POST per attempt through ``http.client``, errors mapped to
the typed errors the transport loop reads. It never retries; the transport loop does.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from proctor.llm.backends import Reply, Request, SyncBackend, Usage, retry_after_from_headers
from proctor.llm.errors import BackendConnectionError, BackendError, BackendTimeout

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"


def error_message(body: bytes, status: int, reason: str) -> str:
    """The provider's own message from an error body (OpenAI's ``{"error": {...}}``)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return f"HTTP {status}: {err['message']}"
        if isinstance(err, str):
            return f"HTTP {status}: {err}"
    snippet = body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {status} {reason}" + (f": {snippet}" if snippet else "")


def reply_from_openai(data: Any, backend: str, request_id: str | None = None) -> Reply:
    """A :class:`Reply` from an OpenAI chat completion body; raises ValueError if it is not
    one."""
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the body has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content") if isinstance(message, dict) else None
    finish = choice.get("finish_reason")
    return Reply(
        text=text if isinstance(text, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
        usage=Usage.from_mapping(
            data.get("usage") if isinstance(data.get("usage"), dict) else None
        ),
        request_id=request_id or (data.get("id") if isinstance(data.get("id"), str) else None),
        model=data.get("model") if isinstance(data.get("model"), str) else None,
        backend=backend,
    )


class OpenAIHTTPBackend(SyncBackend):
    """Options: ``base_url`` (default ``http://127.0.0.1:8080/v1``), ``api_key`` or
    ``api_key_env`` (default ``OPENAI_API_KEY``; unset means no Authorization header),
    ``headers`` (extra request headers)."""

    name = "openai-http"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"openai-http: base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path.rstrip("/") or "") + "/chat/completions"
        self._api_key = api_key
        self._api_key_env = api_key_env
        self.headers = dict(headers or {})

    def configure(self, options: Mapping[str, Any]) -> OpenAIHTTPBackend:
        unknown = set(options) - {"base_url", "api_key", "api_key_env", "headers"}
        if unknown:
            raise ValueError(f"openai-http backend: unknown options {sorted(unknown)}")
        return OpenAIHTTPBackend(
            options.get("base_url", DEFAULT_BASE_URL),
            api_key=options.get("api_key"),
            api_key_env=options.get("api_key_env", "OPENAI_API_KEY"),
            headers=options.get("headers"),
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key or (os.environ.get(self._api_key_env) if self._api_key_env else None)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        headers.update(self.headers)
        return headers

    def complete(self, request: Request) -> Reply:
        body = json.dumps(
            {
                "model": request.model,
                "messages": [dict(m) for m in request.messages],
                **request.params(),
            }
        ).encode("utf-8")
        conn_type = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_type(self._host, self._port, timeout=request.timeout)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers())
            response = conn.getresponse()
            data = response.read()
        except TimeoutError as exc:
            raise BackendTimeout(
                f"no reply from {self.base_url} within {request.timeout} s", backend=self.name
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise BackendConnectionError(
                f"connection to {self.base_url} failed: {type(exc).__name__}: {exc}",
                backend=self.name,
            ) from exc
        finally:
            conn.close()
        request_id = response.getheader("x-request-id")
        if response.status >= 400:
            raise BackendError(
                error_message(data, response.status, response.reason),
                status=response.status,
                retry_after=retry_after_from_headers(response.headers),
                request_id=request_id,
                backend=self.name,
            )
        try:
            return reply_from_openai(json.loads(data), self.name, request_id)
        except ValueError as exc:
            raise BackendError(
                f"malformed response body from {self.base_url}: {exc}",
                status=response.status,
                request_id=request_id,
                backend=self.name,
            ) from exc
