"""Built-in plugin: the ``litellm`` backend (optional extra: ``pip install 'proctor[llm]'``).

litellm reaches every provider, but it is heavy and surprising, so this module keeps it at
arm's length:

* it is imported on the first model call only, never when the plugin loads or registers
  (``proctor --help``, ``proctor plugins`` and the pre-commit hooks stay light), and
  ``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set first, or the import fetches a cost map
  from the network;
* its own attempts are switched off (``num_retries=0``, the OpenAI SDK's
  ``max_retries=0``): left on, they repeat 401s, ignore ``Retry-After`` and stack on each
  other. proctor's transport loop is the only one;
* its exceptions are mapped onto proctor's typed errors (HTTP status, ``Retry-After``,
  connection errors and timeouts told apart), which is all the transport loop reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from proctor.core.hookspecs import hookimpl

_OPTIONS = frozenset({"api_base", "api_key", "api_key_env", "custom_llm_provider", "extra"})


def import_litellm() -> Any:
    """litellm, imported the one safe way: offline cost map, quiet, no retries of its own."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    try:
        import litellm
    except ImportError as exc:
        from proctor.core.errors import UsageError

        raise UsageError(
            "the litellm backend needs the llm extra: pip install 'proctor[llm]'"
        ) from exc
    litellm.num_retries = 0
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LiteLLMBackend:
    """Options: ``api_base`` (e.g. ``http://127.0.0.1:11434`` for Ollama), ``api_key`` or
    ``api_key_env`` (the variable to read it from), ``custom_llm_provider``, and ``extra``
    (more keyword arguments for ``litellm.completion``)."""

    name = "litellm"

    def __init__(
        self,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        custom_llm_provider: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.api_base = api_base
        self._api_key = api_key
        self.api_key_env = api_key_env
        self.custom_llm_provider = custom_llm_provider
        self.extra = dict(extra or {})

    def configure(self, options: Mapping[str, Any]) -> LiteLLMBackend:
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ValueError(f"litellm backend: unknown options {sorted(unknown)}")
        return LiteLLMBackend(**dict(options))

    def _kwargs(self, request: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **self.extra,
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            **request.params(),
            # One attempt per call: proctor's transport loop owns the rest.
            "num_retries": 0,
            "max_retries": 0,
        }
        if request.timeout is not None:
            kwargs["timeout"] = request.timeout
        if self.api_base:
            kwargs["api_base"] = self.api_base
        key = self._api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        if key:
            kwargs["api_key"] = key
        if self.custom_llm_provider:
            kwargs["custom_llm_provider"] = self.custom_llm_provider
        return kwargs

    def complete(self, request: Any) -> Any:
        litellm = import_litellm()
        try:
            response = litellm.completion(**self._kwargs(request))
        except Exception as exc:
            raise map_error(exc, litellm) from exc
        return to_reply(response, self.name)

    async def acomplete(self, request: Any) -> Any:
        litellm = import_litellm()
        try:
            response = await litellm.acompletion(**self._kwargs(request))
        except Exception as exc:
            raise map_error(exc, litellm) from exc
        return to_reply(response, self.name)


def _headers_of(exc: Exception) -> Any:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        return headers
    for name in ("litellm_response_headers", "headers"):
        value = getattr(exc, name, None)
        if value is not None and hasattr(value, "get"):
            return value
    return None


_CONNECTION_ERRORS = frozenset(
    {"APIConnectionError", "ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}
)


def _dropped(exc: BaseException) -> bool:
    """litellm reports a dropped connection as a 500; the chain still says what it was."""
    seen = 0
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and seen < 8:
        if type(cause).__name__ in _CONNECTION_ERRORS:
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def map_error(exc: Exception, litellm: Any) -> Exception:
    """One of proctor's typed errors for a litellm (or OpenAI SDK) exception."""
    from proctor.llm.backends import retry_after_from_headers
    from proctor.llm.errors import BackendConnectionError, BackendError, BackendTimeout, LLMError

    if isinstance(exc, LLMError):
        return exc
    message = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, litellm.Timeout):
        return BackendTimeout(message, backend="litellm")
    if isinstance(exc, litellm.APIConnectionError) or _dropped(exc):
        return BackendConnectionError(message, backend="litellm")
    status = getattr(exc, "status_code", None)
    headers = _headers_of(exc)
    request_id = headers.get("x-request-id") if headers is not None else None
    return BackendError(
        message,
        status=status if isinstance(status, int) else None,
        retry_after=retry_after_from_headers(headers),
        request_id=request_id if isinstance(request_id, str) else None,
        backend="litellm",
    )


def to_reply(response: Any, backend: str) -> Any:
    """A proctor Reply from litellm's ``ModelResponse``."""
    from proctor.llm.backends import Reply, Usage

    choice = response.choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {} if isinstance(hidden, dict) else {}
    request_id = headers.get("llm_provider-x-request-id") if isinstance(headers, dict) else None
    return Reply(
        text=text if isinstance(text, str) else "",
        finish_reason=getattr(choice, "finish_reason", None),
        usage=Usage(
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            total_tokens=int(getattr(usage, "total_tokens", 0) or 0),
        ),
        request_id=request_id or getattr(response, "id", None),
        model=getattr(response, "model", None),
        backend=backend,
    )


@hookimpl
def proctor_register_llm_backends(register: Any) -> None:
    register(LiteLLMBackend())
