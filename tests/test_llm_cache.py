"""The response cache: content-addressed, checked on every read, safe under concurrent
writer processes, with validate and purge counts."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import ScriptedServer, ok

from proctor.llm.backends import Reply, Request, Usage
from proctor.llm.cache import ResponseCache, default_cache_dir
from proctor.llm.openai_http import OpenAIHTTPBackend
from proctor.llm.transport import Transport

ROOT = Path(__file__).resolve().parents[1]


def req(text: str = "hello", **params: object) -> Request:
    return Request.build("m", [{"role": "user", "content": text}], params)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def cache(repo: Path) -> ResponseCache:
    return ResponseCache(default_cache_dir(repo / ".git"))


def test_default_location_is_under_git_proctor(repo: Path) -> None:
    assert default_cache_dir(repo / ".git") == repo / ".git" / "proctor" / "llm-cache"


def test_round_trip_marks_the_reply_cached(cache: ResponseCache) -> None:
    key = cache.key_for("fake", req())
    assert cache.get(key) is None
    cache.put(key, req(), Reply("answer", "stop", Usage(1, 2, 3), "id-1", "m", "fake"))
    hit = cache.get(key)
    assert hit is not None and hit.cached
    assert (hit.text, hit.usage.total_tokens, hit.request_id) == ("answer", 3, "id-1")
    # A second reader (another process would be the same) sees it through the manifest.
    assert ResponseCache(cache.directory).get(key) == hit


def test_key_covers_backend_and_every_parameter(cache: ResponseCache) -> None:
    keys = {
        cache.key_for("fake", req()),
        cache.key_for("other", req()),
        cache.key_for("fake", req(temperature=0.2)),
        cache.key_for("fake", req(seed=1)),
        cache.key_for("fake", req("hello!")),
    }
    assert len(keys) == 5
    # Secrets and the per-attempt timeout do not change the answer, so not the key.
    assert cache.key_for("fake", req(api_key="sk-a")) == cache.key_for("fake", req())
    assert cache.key_for("fake", req().with_timeout(3)) == cache.key_for("fake", req())


def test_transport_serves_hits_without_a_request(
    server: ScriptedServer, cache: ResponseCache
) -> None:
    t = Transport(OpenAIHTTPBackend(server.url), cache=cache)
    first = t.complete(req(temperature=0))
    second = t.complete(req(temperature=0))
    assert server.count == 1
    assert (first.cached, second.cached, second.text) == (False, True, first.text)
    t.complete(req(temperature=0.5))
    assert server.count == 2
    t.complete(req(temperature=0), use_cache=False)
    assert server.count == 3


def test_corrupt_entry_is_skipped_logged_and_rebuilt(
    server: ScriptedServer, cache: ResponseCache, caplog: pytest.LogCaptureFixture
) -> None:
    t = Transport(OpenAIHTTPBackend(server.url), cache=cache)
    t.complete(req())
    [obj] = list(cache.objects.glob("??/*.json"))
    obj.write_bytes(obj.read_bytes().replace(b"answer", b"ANSWER"))

    server.push(ok("fresh"))
    fresh = Transport(OpenAIHTTPBackend(server.url), cache=ResponseCache(cache.directory))
    with caplog.at_level(logging.WARNING, logger="proctor.llm.cache"):
        reply = fresh.complete(req())
    assert reply.text == "fresh" and not reply.cached
    assert server.count == 2
    assert "is corrupt" in caplog.text and "does not match" in caplog.text
    assert not obj.exists()
    # Rebuilt: the next read is a valid hit, and validate finds the cache whole.
    assert fresh.complete(req()).cached
    report = cache.validate()
    assert report.ok and report.valid == 1


def test_validate_counts_and_repairs(cache: ResponseCache) -> None:
    for i in range(4):
        cache.put(cache.key_for("b", req(str(i))), req(str(i)), Reply(f"r{i}"))
    objects = sorted(cache.objects.glob("??/*.json"))
    objects[0].write_text("{not json", encoding="utf-8")  # corrupt
    objects[1].unlink()  # missing
    (cache.objects / "ff").mkdir(exist_ok=True)
    (cache.objects / "ff" / ("f" * 64 + ".json")).write_text("{}", encoding="utf-8")  # orphan
    with cache.manifest_path.open("ab") as fh:
        fh.write(b"garbage line\n" + b"0" * 64 + b" 12")  # a bad line and a torn one

    report = cache.validate(repair=False)
    assert (report.entries, report.valid, report.corrupt, report.missing) == (4, 2, 1, 1)
    assert (report.orphans, report.bad_lines) == (1, 2)
    assert not report.ok

    repaired = cache.validate()
    assert repaired.removed == 2  # the corrupt object and the orphan
    again = cache.validate()
    assert again.ok and (again.entries, again.valid, again.orphans) == (2, 2, 0)


def test_purge_removes_everything(cache: ResponseCache) -> None:
    for i in range(3):
        cache.put(cache.key_for("b", req(str(i))), req(str(i)), Reply(f"r{i}"))
    assert cache.purge() == 3
    assert cache.get(cache.key_for("b", req("0"))) is None
    assert cache.validate().entries == 0
    assert cache.stats() == {"keys": 0, "objects": 0}


WRITER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[3])
    from proctor.llm.backends import Reply, Request
    from proctor.llm.cache import ResponseCache
    cache = ResponseCache(sys.argv[1])
    me = int(sys.argv[2])
    while not os.path.exists(sys.argv[4]):  # all writers start together
        time.sleep(0.005)
    for i in range(60):
        n = i % 40  # keys shared by every writer, with different replies
        r = Request.build("m", [{"role": "user", "content": f"q{n}"}])
        cache.put(cache.key_for("b", r), r, Reply(f"writer {me} answer {n} " + "x" * 500))
        got = cache.get(cache.key_for("b", r))
        assert got is not None and got.text.endswith("x" * 500), got
    print("done")
    """
)


@pytest.mark.slow
def test_concurrent_writer_processes_do_not_corrupt_it(tmp_path: Path) -> None:
    directory = tmp_path / "llm-cache"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory), str(n), str(ROOT), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    time.sleep(0.5)  # let every writer import and wait at the line
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "done"
    cache = ResponseCache(directory)
    report = cache.validate(repair=False)
    assert report.ok, report
    assert report.entries == 40 and report.valid == 40 and report.bad_lines == 0
    lines = cache.manifest_path.read_bytes().splitlines()
    assert len(lines) == 4 * 60  # every append whole, none lost or interleaved
    for n in range(40):
        r = Request.build("m", [{"role": "user", "content": f"q{n}"}])
        hit = cache.get(cache.key_for("b", r))
        assert hit is not None and f"answer {n} " in hit.text
    entry = json.loads(next(cache.objects.glob("??/*.json")).read_bytes())
    assert set(entry) == {"format", "key", "request", "reply", "stored_at"}
