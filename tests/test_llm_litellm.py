"""The litellm backend: kept off every path that calls no model, and through a real
OpenAI-compatible server on 127.0.0.1 with exactly the requests proctor's loop makes
(litellm's and the OpenAI SDK's own attempts switched off)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import ScriptedServer, drop, ok, slow, status

from proctor.llm.backends import Request
from proctor.llm.errors import (
    AttemptsExhausted,
    BackendConnectionError,
    BackendError,
    DeadlineExceeded,
)
from proctor.llm.structured import generate_structured
from proctor.llm.transport import Transport, TransportPolicy
from proctor.plugins.llm_litellm import LiteLLMBackend

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("litellm", "openai", "httpx", "pydantic", "tenacity", "json_repair", "rich")
HAVE_LITELLM = importlib.util.find_spec("litellm") is not None
needs_litellm = pytest.mark.skipif(
    not HAVE_LITELLM, reason="litellm is not installed (pip install '.[llm]')"
)

LAZY = textwrap.dedent(
    """
    import json, sys
    heavy = sys.argv[1].split(",")
    seen = {}
    import proctor.plugins.llm_litellm as lit, proctor.plugins.llm_builtin as builtin
    seen["import"] = sorted(m for m in sys.modules if m.split(".")[0] in heavy)

    import pluggy
    from proctor.core import hookspecs
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(lit, name="llm-litellm")
    pm.register(builtin, name="llm")
    found = {}
    pm.hook.proctor_register_llm_backends(register=lambda b: found.setdefault(b.name, b))
    found["litellm"].configure({"api_base": "http://127.0.0.1:9"})
    seen["register"] = sorted(m for m in sys.modules if m.split(".")[0] in heavy)

    # proctor --help and `proctor plugins` (which runs every registration hook) with
    # both modules among the built-ins.
    from proctor.plugins import BUILTIN_PLUGINS
    assert BUILTIN_PLUGINS["llm"] == "proctor.plugins.llm_builtin"
    assert BUILTIN_PLUGINS["llm-litellm"] == "proctor.plugins.llm_litellm"
    import proctor.cli
    for argv in (["--help"], ["plugins"]):
        try:
            proctor.cli.main(argv)
        except SystemExit:
            pass
    seen["cli"] = sorted(m for m in sys.modules if m.split(".")[0] in ("litellm", "openai"))
    print(json.dumps(seen))
    """
)


def test_litellm_stays_off_paths_that_call_no_model(tmp_path: Path) -> None:
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", LAZY, ",".join(HEAVY)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"import": [], "register": [], "cli": []}, seen
    assert "llm-litellm (built-in) ok: proctor_register_llm_backends" in done.stdout
    assert "llm (built-in) ok: proctor_register_llm_backends" in done.stdout


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def transport(server: ScriptedServer, **policy: float) -> Transport:
    backend = LiteLLMBackend(api_base=server.url, api_key="sk-test-000000000000")
    settings = {"deadline": 30.0, "backoff_initial": 0.05, "backoff_jitter": 0.05, **policy}
    return Transport(backend, TransportPolicy(**settings))  # type: ignore[arg-type]


def request() -> Request:
    return Request.build(
        "openai/test-model", [{"role": "user", "content": "hi"}], {"temperature": 0}
    )


@needs_litellm
@pytest.mark.slow
def test_litellm_normal_reply_and_settings(server: ScriptedServer) -> None:
    server.push(ok("hello from the server"))
    reply = transport(server).complete(request())
    assert reply.text == "hello from the server"
    assert (reply.finish_reason, reply.backend, reply.usage.total_tokens) == ("stop", "litellm", 18)
    assert reply.request_id
    assert server.count == 1
    seen = server.requests[0]
    assert seen.body["model"] == "test-model" and seen.body["temperature"] == 0
    assert seen.headers.get("authorization") == "Bearer sk-test-000000000000"
    assert seen.headers.get("x-stainless-retry-count") == "0"
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    import litellm

    assert litellm.num_retries == 0


@needs_litellm
@pytest.mark.slow
def test_litellm_401_is_one_request(server: ScriptedServer) -> None:
    server.push(status(401, message="invalid key"))
    with pytest.raises(BackendError) as info:
        transport(server).complete(request())
    assert server.count == 1
    assert info.value.status == 401 and not info.value.transient


@needs_litellm
@pytest.mark.slow
def test_litellm_429_retry_after_is_honoured(server: ScriptedServer) -> None:
    server.push(status(429, retry_after="1"), ok("after the wait"))
    start = time.monotonic()
    assert transport(server).complete(request()).text == "after the wait"
    assert server.count == 2
    assert server.requests[1].at - server.requests[0].at >= 1.0
    assert time.monotonic() - start >= 1.0


@needs_litellm
@pytest.mark.slow
def test_litellm_500s_are_bounded_by_our_loop_alone(server: ScriptedServer) -> None:
    server.default = status(500)
    with pytest.raises(AttemptsExhausted) as info:
        transport(server, max_attempts=3).complete(request())
    assert server.count == 3  # not 3 × (1 + SDK attempts) × litellm attempts
    assert info.value.status == 500


@needs_litellm
@pytest.mark.slow
def test_litellm_dropped_connection_then_success(server: ScriptedServer) -> None:
    server.push(drop(), ok("back"))
    events: list[str] = []
    t = transport(server)
    t.observer = lambda e: events.append(e.kind)
    assert t.complete(request()).text == "back"
    assert server.count == 2
    server.push(drop())
    with pytest.raises(AttemptsExhausted) as info:
        transport(server, max_attempts=1).complete(request())
    assert isinstance(info.value.last_error, BackendConnectionError)


@needs_litellm
@pytest.mark.slow
def test_litellm_slow_reply_hits_the_deadline(server: ScriptedServer) -> None:
    server.push(slow(5))
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        transport(server, deadline=1.5).complete(request())
    assert time.monotonic() - start < 4
    assert server.count == 1


@needs_litellm
@pytest.mark.slow
def test_litellm_async_and_structured(server: ScriptedServer) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: int

    server.push(status(503), ok('```json\n{"answer": 7}\n```'))

    async def main() -> int:
        return (await transport(server).acomplete(request())).text.count("7")

    assert asyncio.run(main()) == 1
    assert server.count == 2
    server.push(ok("not json"), ok('{"answer": 8}'))
    result = generate_structured(
        transport(server), [{"role": "user", "content": "n?"}], Answer, model="openai/test-model"
    )
    assert result.value.answer == 8 and len(result.attempts) == 2
    assert server.count == 4


@needs_litellm
@pytest.mark.slow
def test_whole_generation_through_litellm(server: ScriptedServer, repo: Path) -> None:
    """A whole generation with the litellm backend, chosen by name as ``proctor generate
    --backend litellm --option api_base=...`` chooses it, against the server: a 503
    (retried by proctor's loop), a reply that does not parse (re-asked), then code that
    passes the checks and its example; the commit records litellm as the backend and
    every request went through the server with the prompt built from the metadata."""
    from proctor import Workspace

    meta = {
        "name": "double",
        "description": "Double an integer.",
        "parameters": [{"name": "n", "type": "int", "description": "The number."}],
        "returns": "int",
        "examples": [{"params": {"n": 4}, "expected": 8}],
        "steps": ["multiply n by two"],
    }
    ws, _ = Workspace.init(repo, actor="tester@example.com")
    with ws:
        assert ws.import_procedures([meta]).status == "applied"
    code = 'def run(n: int) -> int:\n    """Double an integer."""\n    return n * 2\n'
    answer = json.dumps({"code": code, "confidence": 0.95, "explanation": "doubles n"})
    server.push(status(503), ok("I would write it like this, roughly."), ok(answer))
    with Workspace.open(repo, actor="tester@example.com") as ws:
        settings = ws.generation_settings(
            backend="litellm",
            model="openai/test-model",
            options={"api_base": server.url, "api_key": "sk-test-000000000000"},
        )
        done = ws.generate("double", settings)
        assert done.result.status == "applied", done.result.errors
        view = ws.get_procedure("double")
        assert view.code == code
        gen = view.spec.generation
        assert gen is not None and (gen.backend, gen.model) == ("litellm", "openai/test-model")
        assert gen.examples["passed"] == 1
        assert ws.run("double", {"n": 21}).value == 42
    assert server.count == 3
    prompts = [seen.body["messages"][-1]["content"] for seen in server.requests]
    assert '"name": "double"' in prompts[0] and "# 1. multiply n by two" in prompts[0]
    assert all(seen.body["model"] == "test-model" for seen in server.requests)
    message = subprocess.run(
        ["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True
    ).stdout
    assert "Proctor-Action: procedure.generate" in message
    assert "Generated by openai/test-model (litellm)" in message
