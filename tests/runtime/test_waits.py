"""A wait with a time limit: it returns when the event is set, and gives up on time."""

from __future__ import annotations

import asyncio
import time

from cdb_cli.runtime.waits import Backoff, wait_event


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


def test_backoff_doubles_up_to_its_last_pause_with_jitter_and_starts_over_on_reset() -> None:
    backoff = Backoff(0.5, 5.0)
    pauses = [backoff.next() for _ in range(8)]
    # each between half and all of 0.5, 1, 2, 4, 5, 5, 5, 5
    for pause, full in zip(pauses, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0], strict=True):
        assert full / 2 <= pause <= full
    assert len({round(p, 9) for p in pauses[4:]}) > 1  # jittered: not all alike
    backoff.reset()
    assert 0.25 <= backoff.next() <= 0.5
