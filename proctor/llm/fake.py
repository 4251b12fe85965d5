"""A backend scripted by a queue of replies, for tests (and the testing kit).

Each item is consumed by one call, in order: a string (a reply that finished normally),
a :class:`~proctor.llm.backends.Reply`, an exception instance (raised, so transport errors
can be scripted: ``BackendError("busy", status=429, retry_after=1)``), or a callable
taking the :class:`~proctor.llm.backends.Request` and returning any of those. Every request
is kept in ``requests`` so a test can assert what was sent.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

from proctor.llm.backends import Reply, Request, SyncBackend, Usage
from proctor.llm.errors import FakeExhausted

Scripted = Union[str, Reply, BaseException, Callable[[Request], Any]]  # noqa: UP007


class FakeBackend(SyncBackend):
    name = "fake"

    def __init__(self, script: Iterable[Scripted] = (), *, name: str = "fake") -> None:
        self.name = name
        self._queue: deque[Scripted] = deque(script)
        self._lock = threading.Lock()
        self.requests: list[Request] = []

    def configure(self, options: Mapping[str, Any]) -> FakeBackend:
        unknown = set(options) - {"replies"}
        if unknown:
            raise ValueError(f"fake backend: unknown options {sorted(unknown)}")
        return FakeBackend(options.get("replies", ()), name=self.name)

    def push(self, *items: Scripted) -> None:
        with self._lock:
            self._queue.extend(items)

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def complete(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if not self._queue:
                raise FakeExhausted(
                    f"fake backend has no scripted reply left (call {len(self.requests)})"
                )
            item = self._queue.popleft()
        for _ in range(3):  # a callable may return another scripted item
            if callable(item) and not isinstance(item, BaseException):
                item = item(request)
            else:
                break
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Reply):
            return item
        if isinstance(item, str):
            words = len(item.split())
            return Reply(
                text=item,
                finish_reason="stop",
                usage=Usage(prompt_tokens=0, completion_tokens=words, total_tokens=words),
                request_id=f"fake-{len(self.requests)}",
                model=request.model,
                backend=self.name,
            )
        raise TypeError(f"fake backend cannot reply with {type(item).__name__}")
