"""Waits with a time limit: they return what came, give up on time, and lose nothing."""

from __future__ import annotations

import asyncio
import time

from cdb_cli.runtime.waits import get_within, wait_event


def test_wait_event_returns_when_set_and_gives_up_on_time() -> None:
    async def scenario() -> None:
        event = asyncio.Event()
        started = time.monotonic()
        assert await wait_event(event, 0.05) is False
        assert time.monotonic() - started >= 0.04
        asyncio.get_running_loop().call_later(0.01, event.set)
        started = time.monotonic()
        assert await wait_event(event, 5.0) is True
        assert time.monotonic() - started < 1.0
        assert await wait_event(event, 0) is True  # already set: no wait at all

    asyncio.run(scenario())


def test_get_within_takes_what_is_there_waits_for_more_and_loses_nothing() -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        queue.put_nowait(1)
        assert await get_within(queue, 0) == 1
        assert await get_within(queue, 0.02) is None
        asyncio.get_running_loop().call_later(0.01, queue.put_nowait, 2)
        assert await get_within(queue, 5.0) == 2
        # An item that comes as the wait gives up stays queued for the next get.
        loop = asyncio.get_running_loop()
        loop.call_later(0.03, queue.put_nowait, 3)
        got = await get_within(queue, 0.03)
        assert got == 3 or (got is None and await get_within(queue, 1.0) == 3)
        assert queue.empty()

    asyncio.run(scenario())
