"""What is particular to the in-process bus and the shared consumer helpers.

The behaviour shared with the Redis bus is proven in tests/contract/test_bus_contract.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import pytest
from market_testkit import tick

from cdb_cli.engine.bus import InMemoryBus, check_publication
from cdb_cli.engine.consumer import DedupWindow
from cdb_cli.engine.errors import MalformedEvent, StateError
from cdb_cli.engine.events import Side, Topic, TradeTick
from cdb_cli.engine.ports.bus import Delivery

MD = Topic.MARKET_DATA
SECOND = 1_000_000_000


class SettableClock:
    """Monotonic nanoseconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_memory_bus_reclaims_only_after_the_idle_time_on_its_clock() -> None:
    clock = SettableClock()

    async def scenario() -> None:
        async with InMemoryBus(clock=clock) as bus:
            dead = await bus.subscribe(MD, "g", "dead")
            alive = await bus.subscribe(MD, "g", "alive")
            sent = tick(1)
            await bus.publish(MD, sent)
            clock.now = 100 * SECOND
            assert len(await dead.fetch(10, 0)) == 1
            clock.now += 30 * SECOND - 1
            assert await alive.reclaim(min_idle_s=30) == []
            clock.now += 1
            assert [d.event for d in await alive.reclaim(min_idle_s=30)] == [sent]
            # Reclaiming restarts the idle time: the new owner gets its own 30 s.
            assert await dead.reclaim(min_idle_s=30) == []

    run(scenario)


def test_memory_bus_waiting_fetch_wakes_on_publish() -> None:
    async def scenario() -> None:
        async with InMemoryBus() as bus:
            sub = await bus.subscribe(MD, "g", "c")
            assert await sub.fetch(10, timeout_s=0) == []  # the backlog pass is behind us
            waiting = asyncio.create_task(sub.fetch(10, timeout_s=60))
            await asyncio.sleep(0)  # let the fetch start waiting
            sent = tick(1)
            await bus.publish(MD, sent)
            assert [d.event for d in await asyncio.wait_for(waiting, 5)] == [sent]

    run(scenario)


def test_memory_bus_close_releases_waiting_fetch_and_refuses_more_work() -> None:
    async def scenario() -> None:
        bus = InMemoryBus()
        sub = await bus.subscribe(MD, "g", "c")
        await sub.fetch(10, timeout_s=0)
        waiting = asyncio.create_task(sub.fetch(10, timeout_s=60))
        await asyncio.sleep(0)
        await bus.close()
        assert await asyncio.wait_for(waiting, 5) == []
        with pytest.raises(StateError, match="closed"):
            await bus.publish(MD, tick())
        with pytest.raises(StateError):
            await sub.fetch(10, 0)

    run(scenario)


def test_memory_bus_group_behind_by_maxlen_loses_the_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with InMemoryBus(maxlen=3) as bus:
            sub = await bus.subscribe(MD, "slow", "c")
            sent = [tick(n) for n in range(5)]
            for event in sent:
                await bus.publish(MD, event)
            assert [d.event for d in await sub.fetch(10, 0)] == sent[2:]

    run(scenario)
    assert len([r for r in caplog.records if "behind" in r.getMessage()]) == 1  # not per drop


def test_memory_bus_dead_letters_an_event_that_does_not_decode() -> None:
    # A producer that bypassed validation: it encodes, but no reader can accept it.
    broken = TradeTick.model_construct(
        event_id="bad",
        symbol="X",
        ts_event=1,
        source="t",
        price=Decimal(-1),
        quantity=Decimal(1),
        aggressor=Side.BUY,
        trade_id="",
    )

    async def scenario() -> None:
        async with InMemoryBus() as bus:
            sub = await bus.subscribe(MD, "g", "c")
            good = tick(2)
            await bus.publish(MD, broken)
            await bus.publish(MD, good)
            got = await sub.fetch(10, 0)
            assert [d.event for d in got] == [good]
            await sub.ack(*got)
            assert sub.dead_lettered == 1
            (letter,) = bus.dead_letters(MD)
            assert letter.group == "g"
            assert "price" in letter.error
            assert b'"event_id":"bad"' in letter.payload
            assert await sub.reclaim(min_idle_s=0) == []  # acknowledged, not pending

    run(scenario)


def test_memory_bus_ack_refuses_a_delivery_of_another_topic() -> None:
    async def scenario() -> None:
        async with InMemoryBus() as bus:
            sub = await bus.subscribe(MD, "g", "c")
            with pytest.raises(ValueError, match="acked on"):
                await sub.ack(Delivery(Topic.SYSTEM_HEALTH, "0-1", tick()))

    run(scenario)


def test_dedup_window_forgets_the_oldest_beyond_its_capacity() -> None:
    window = DedupWindow(capacity=3)
    for event_id in ["a", "b", "c", "a", "d"]:
        window.add(event_id)
    assert len(window) == 3
    assert "a" not in window
    assert all(event_id in window for event_id in ["b", "c", "d"])
    with pytest.raises(ValueError, match="at least 1"):
        DedupWindow(capacity=0)


@pytest.mark.parametrize(
    ("topic", "message"),
    [("no_such_topic", "Unknown topic 'no_such_topic'"), (Topic.RISK_EVENTS, "RiskDecision")],
)
def test_check_publication_names_the_problem(topic: str, message: str) -> None:
    with pytest.raises(MalformedEvent, match=message):
        check_publication(topic, tick())
    assert check_publication("market_data", tick()) is MD
