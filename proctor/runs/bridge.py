"""``run_async``: call an async function from sync code, wherever that code finds itself.

The run log speaks SQLAlchemy's async engine and the sandbox has an async variant, while
the CLI, scripts and ``Workspace.run`` are synchronous. Three situations need three
answers, and getting one wrong either crashes (``asyncio.run`` inside a running loop) or
quietly breaks the caller (``asyncio.run`` resets the thread's current loop to None,
which an application that set one and runs it later does not expect):

- no loop in this thread: a private loop, created for the call and closed after it;
- an idle loop (set for this thread, not running): left alone, neither run nor replaced
  nor closed, since tasks waiting on it belong to its owner; the call gets a private
  loop as above, made without touching the thread's current loop;
- a running loop (sync code called from a coroutine, a notebook cell): the call cannot
  use it without deadlocking it, so it runs on a private loop in a worker thread while
  this thread waits.

A ``timeout`` cancels the coroutine when it runs out and raises ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_async"]

T = TypeVar("T")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


def _run_private(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    # A loop_factory makes asyncio.Runner leave the thread's current loop as it was.
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        return runner.run(_bounded(coro, timeout))


def _run_in_thread(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(_run_private, coro, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="proctor-run-async", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def run_async(
    func: Callable[..., Coroutine[Any, Any, T]] | Coroutine[Any, Any, T],
    *args: Any,
    timeout: float | None = None,
    **kwargs: Any,
) -> T:
    """Run ``func(*args, **kwargs)`` (or an already made coroutine) to completion.

    ``timeout`` is the bridge's own keyword: a coroutine function that takes one of its
    own is called as ``run_async(func(..., timeout=t))``. Returns its value or raises
    its exception; ``TimeoutError`` once ``timeout``
    seconds have passed (the coroutine is cancelled first, so its ``finally`` blocks
    run). Safe from any thread, with or without an event loop: see the module docstring.
    """
    if asyncio.iscoroutine(func):
        if args or kwargs or (timeout is not None and timeout <= 0):
            func.close()  # refused: never awaited, and no warning saying so later
        if args or kwargs:
            raise TypeError("arguments go with a coroutine function, not a coroutine")
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    coro = func if asyncio.iscoroutine(func) else func(*args, **kwargs)
    if _running_loop() is not None:
        return _run_in_thread(coro, timeout)
    return _run_private(coro, timeout)
