"""A real OpenAI-compatible chat server on 127.0.0.1, scripted per request.

Each POST to ``/v1/chat/completions`` takes the next behaviour from the script (or the
default once the script is empty): a normal reply, an HTTP error with headers, a slow
reply, a malformed body, or a connection dropped before or during the reply. Every
request is recorded with its arrival time, so tests assert exactly how many requests a
call made and how long it waited between them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    kind: str  # ok | status | slow | raw | drop | drop_mid
    content: str = '{"answer": 42}'
    finish_reason: str = "stop"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    seconds: float = 0.0


def ok(content: str = '{"answer": 42}', finish_reason: str = "stop") -> Behaviour:
    return Behaviour("ok", content=content, finish_reason=finish_reason)


def status(code: int, retry_after: str | None = None, message: str = "scripted error") -> Behaviour:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = json.dumps({"error": {"message": message, "type": "scripted", "code": code}})
    return Behaviour("status", status=code, headers=headers, body=body.encode())


def slow(seconds: float, content: str = '{"answer": 42}') -> Behaviour:
    return Behaviour("slow", content=content, seconds=seconds)


def raw(body: bytes) -> Behaviour:
    return Behaviour("raw", body=body)


def drop() -> Behaviour:
    return Behaviour("drop")


def drop_mid() -> Behaviour:
    return Behaviour("drop_mid")


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


def completion(content: str, finish_reason: str, model: str, n: int) -> bytes:
    return json.dumps(
        {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }
    ).encode()


class ScriptedServer:
    def __init__(self) -> None:
        self.script: deque[Behaviour] = deque()
        self.default = ok()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                try:
                    body = json.loads(data)
                except ValueError:
                    body = None
                with server._lock:
                    server.requests.append(
                        Seen(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    n = len(server.requests)
                    behaviour = server.script.popleft() if server.script else server.default
                model = body.get("model", "?") if isinstance(body, dict) else "?"
                server._act(self, behaviour, model, n)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def push(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self.script.extend(behaviours)

    def _send(
        self, h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str]
    ) -> None:
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("x-request-id", f"req-{self.count}")
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def _act(self, h: BaseHTTPRequestHandler, b: Behaviour, model: str, n: int) -> None:
        if b.kind == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if b.kind == "drop_mid":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            h.wfile.write(b'{"id": "chatcmpl-cut", "choices": [')
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if b.kind == "slow":
            time.sleep(b.seconds)
        if b.kind == "status":
            self._send(h, b.status, b.body or b"{}", b.headers)
        elif b.kind == "raw":
            self._send(h, 200, b.body or b"", {})
        else:
            try:
                self._send(h, 200, completion(b.content, b.finish_reason, model, n), {})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (a slow reply past its timeout)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
