"""A real webhook receiver on 127.0.0.1 for the side-effect tests: an http.server in a
thread that answers from a script (status, headers) and records every request."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


def free_port() -> int:
    """A port nobody listens on now (so a receiver can be 'down', then start there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """Answers each POST with the next scripted (status, headers), then ``default``."""

    def __init__(
        self,
        port: int = 0,
        script: list[tuple[int, dict[str, str]]] | None = None,
        default: int = 204,
    ) -> None:
        self.requests: list[Request] = []
        self.script = list(script or [])
        self.default = default
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(
                        Request(time.monotonic(), self.path, dict(self.headers.items()), body)
                    )
                    status, headers = (
                        receiver.script.pop(0) if receiver.script else (receiver.default, {})
                    )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def keys(self) -> list[str]:
        return [r.headers.get("Idempotency-Key", "") for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
