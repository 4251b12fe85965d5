"""``run_async`` in the three situations sync code finds itself in: no event loop, an
idle loop (set for the thread, not running), and a running loop; with a timeout in each."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from proctor.runs.bridge import run_async

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


async def answer(value: int, delay: float = 0.0) -> tuple[int, str, int]:
    """The value, the loop's thread name, and the loop's id (to tell loops apart)."""
    await asyncio.sleep(delay)
    return value, threading.current_thread().name, id(asyncio.get_running_loop())


async def fails() -> None:
    await asyncio.sleep(0)
    raise KeyError("inside")


async def slow(finished: list[str]) -> None:
    try:
        await asyncio.sleep(30)
    finally:
        finished.append("cleanup ran")


def test_no_loop_runs_on_a_private_loop_and_leaves_none_behind() -> None:
    value, thread, _ = run_async(answer, 7)
    assert (value, thread) == (7, threading.current_thread().name)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    # asyncio.run() would leave the policy's loop set to None; the bridge changes nothing.
    assert run_async(answer(8))[0] == 8


def test_idle_loop_is_left_alone() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        ran: list[str] = []
        loop.call_soon(ran.append, "owner's callback")
        value, _, loop_id = run_async(answer, 1)
        assert value == 1
        assert loop_id != id(loop)  # not run on the owner's loop...
        assert ran == []  # ...so the owner's pending callback did not run
        assert not loop.is_closed()
        assert asyncio.get_event_loop_policy().get_event_loop() is loop  # still current
        loop.run_until_complete(asyncio.sleep(0))
        assert ran == ["owner's callback"]
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_running_loop_goes_to_a_worker_thread() -> None:
    async def caller() -> tuple[int, str, int, int]:
        # Sync code called from a coroutine: asyncio.run() here would raise.
        value, thread, loop_id = run_async(answer, 3)
        return value, thread, loop_id, id(asyncio.get_running_loop())

    value, thread, inner_loop, outer_loop = asyncio.run(caller())
    assert value == 3
    assert thread == "proctor-run-async"
    assert inner_loop != outer_loop


def test_context_variables_reach_the_worker_thread() -> None:
    async def read() -> str:
        return where.get()

    async def caller() -> str:
        where.set("caller's value")
        return run_async(read)

    assert asyncio.run(caller()) == "caller's value"


@pytest.mark.parametrize("situation", ["no loop", "idle loop", "running loop"])
def test_timeout_cancels_the_coroutine(situation: str) -> None:
    finished: list[str] = []

    def call() -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            run_async(slow, finished, timeout=0.2)
        assert time.monotonic() - started < 5

    if situation == "no loop":
        call()
    elif situation == "idle loop":
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            call()
            assert not loop.is_closed()
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    else:

        async def caller() -> None:
            call()

        asyncio.run(caller())
    assert finished == ["cleanup ran"]


@pytest.mark.parametrize("situation", ["no loop", "running loop"])
def test_exceptions_come_back_as_they_are(situation: str) -> None:
    if situation == "no loop":
        with pytest.raises(KeyError, match="inside"):
            run_async(fails)
        return

    async def caller() -> None:
        with pytest.raises(KeyError, match="inside"):
            run_async(fails)

    asyncio.run(caller())


def test_within_timeout_returns_the_value_and_bad_timeouts_are_refused() -> None:
    assert run_async(answer, 5, 0.01, timeout=5)[0] == 5
    with pytest.raises(ValueError, match="positive"):
        run_async(answer, 1, timeout=0)
    with pytest.raises(TypeError):
        run_async(answer(1), 2)  # type: ignore[call-overload]
