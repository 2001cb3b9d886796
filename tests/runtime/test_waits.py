"""A wait with a time limit: it returns when the event is set, and gives up on time."""

from __future__ import annotations

import asyncio
import time

from cdb_cli.runtime.waits import wait_event


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
