"""Cassettes (record, replay), the request key, and backends registered through the
``proctor_register_llm_backends`` hook on a private plugin manager."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
from llm_server import ScriptedServer, ok

from proctor.core import hookspecs
from proctor.core.errors import EXIT_USAGE, UsageError
from proctor.llm.backends import Request, build_backend
from proctor.llm.cassettes import RecordBackend, ReplayBackend
from proctor.llm.errors import CassetteMissing
from proctor.llm.fake import FakeBackend
from proctor.llm.openai_http import OpenAIHTTPBackend
from proctor.llm.transport import Transport
from proctor.plugins import llm_builtin, llm_litellm

SECRET = "sk-live-abcdefghijklmnopqrstuvwx"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def req(**params: object) -> Request:
    return Request.build(
        "gpt-test",
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        {"temperature": 0, "seed": 1, "max_tokens": 100, **params},
    )


def registry() -> dict[str, object]:
    """What the plugin manager collects, on a private pluggy manager."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(llm_builtin, name="llm")
    pm.register(llm_litellm, name="llm-litellm")
    found: dict[str, object] = {}
    pm.hook.proctor_register_llm_backends(register=lambda b: found.setdefault(b.name, b))
    return found


def test_request_key_covers_the_whole_request() -> None:
    base = req()
    changed = [
        req(temperature=0.1),
        req(seed=2),
        req(max_tokens=101),
        req(top_p=0.9),
        req(stop=["\n"]),
        req(response_format={"type": "json_object"}),
        req(top_k=5),
        Request.build("other-model", list(base.messages), base.params()),
        Request.build(
            "gpt-test", [*base.messages, {"role": "user", "content": "more"}], base.params()
        ),
    ]
    assert len({base.key, *(r.key for r in changed)}) == len(changed) + 1
    # Same request spelled differently: same key. Secrets and timeout: not part of it.
    same = Request.build("gpt-test", list(base.messages), dict(reversed(base.params().items())))
    assert same.key == base.key
    assert req(api_key=SECRET, headers={"Authorization": "x"}).key == base.key
    assert base.with_timeout(5).key == base.key
    assert base.prompt_hash == Request.build("other", list(base.messages)).prompt_hash


def test_record_then_replay_offline(server: ScriptedServer, tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    server.push(ok('{"answer": 1}'), ok('{"answer": 2}'))
    recorder = RecordBackend(OpenAIHTTPBackend(server.url), cassettes)
    first = Transport(recorder).complete(req())
    second = Transport(recorder).complete(req(temperature=0.7))
    server.httpd.shutdown()  # from here on, nothing may reach the network

    replay = Transport(ReplayBackend(cassettes))
    assert replay.complete(req()).text == first.text == '{"answer": 1}'
    assert replay.complete(req(temperature=0.7)).text == second.text
    assert replay.complete(req()).usage == first.usage
    assert server.count == 2
    assert sorted(p.name for p in cassettes.iterdir()) == sorted(
        [f"{req().key}.json", f"{req(temperature=0.7).key}.json"]
    )
    with pytest.raises(CassetteMissing, match="record") as info:
        replay.complete(req(seed=99))
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.key == req(seed=99).key


def test_cassettes_hold_no_secrets(tmp_path: Path) -> None:
    fake = FakeBackend([f"my key is {SECRET}, header Bearer abcdefgh12345678"])
    recorder = RecordBackend(fake, tmp_path)
    asked = req(api_key=SECRET, headers={"Authorization": f"Bearer {SECRET}"})
    recorder.complete(
        Request.build(
            asked.model,
            [*asked.messages, {"role": "user", "content": f"token={SECRET}"}],
            asked.params(),
        )
    )
    [path] = list(tmp_path.glob("*.json"))
    text = path.read_text(encoding="utf-8")
    assert SECRET not in text and "abcdefgh12345678" not in text
    record = json.loads(text)
    assert "api_key" not in record["request"] and "headers" not in record["request"]
    assert record["request"]["temperature"] == 0 and record["request"]["seed"] == 1
    assert "[REDACTED]" in record["reply"]["text"]


def test_replay_refuses_a_cassette_for_another_request(tmp_path: Path) -> None:
    RecordBackend(FakeBackend(["x"]), tmp_path).complete(req())
    path = tmp_path / f"{req().key}.json"
    other = tmp_path / f"{req(seed=5).key}.json"
    path.rename(other)
    with pytest.raises(CassetteMissing, match="does not belong"):
        ReplayBackend(tmp_path).complete(req(seed=5))


def test_hook_registers_every_builtin_backend() -> None:
    found = registry()
    assert sorted(found) == ["fake", "litellm", "openai-http", "record", "replay"]
    for backend in found.values():
        assert callable(backend.complete) and callable(backend.acomplete)  # type: ignore[attr-defined]


def test_build_backend_from_plain_options(tmp_path: Path) -> None:
    found = registry()
    replay = build_backend(found, "replay", {"cassettes": str(tmp_path)})
    assert isinstance(replay, ReplayBackend) and replay.directory == tmp_path
    record = build_backend(
        found,
        "record",
        {"inner": "fake", "inner_options": {"replies": ["hello"]}, "cassettes": str(tmp_path)},
    )
    assert isinstance(record, RecordBackend)
    assert record.complete(req()).text == "hello"
    assert (tmp_path / f"{req().key}.json").exists()
    http = build_backend(found, "openai-http", {"base_url": "http://127.0.0.1:9/v1"})
    assert isinstance(http, OpenAIHTTPBackend)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("nope", {}, "unknown LLM backend 'nope'"),
        ("replay", {}, "needs a 'cassettes' directory"),
        ("replay", {"cassettes": "x", "colour": 1}, "unknown options"),
        ("openai-http", {"base_url": "ftp://x"}, "must be an http"),
        ("litellm", {"temperature": 1}, "unknown options"),
    ],
)
def test_build_backend_bad_input_is_a_usage_error(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        build_backend(registry(), name, options)
    assert info.value.exit_code == EXIT_USAGE
