"""Built-in plugin: the LLM backends that need no provider SDK.

``replay`` (answers from recorded cassettes, offline), ``record`` (wraps another backend
and writes cassettes), ``fake`` (a scripted queue of replies, for tests) and
``openai-http`` (any OpenAI-compatible server through the stdlib). Registering them
imports only stdlib modules of ``proctor.llm``; nothing here runs until a model is called.
"""

from __future__ import annotations

from typing import Any

from proctor.core.hookspecs import hookimpl


@hookimpl
def proctor_register_llm_backends(register: Any) -> None:
    from proctor.llm.cassettes import RecordBackend, ReplayBackend
    from proctor.llm.fake import FakeBackend
    from proctor.llm.openai_http import OpenAIHTTPBackend

    register(ReplayBackend())
    register(RecordBackend())
    register(FakeBackend())
    register(OpenAIHTTPBackend())
