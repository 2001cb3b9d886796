"""One contract for every MessageBus: the in-process bus and Redis Streams behave alike.

Each test runs once on ``InMemoryBus`` and once on ``RedisBus`` against the real server (marked
``infra``; a unique key prefix per test, deleted afterwards).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal

import pytest
from market_testkit import tick
from services_testkit import delete_keys, new_key_prefix

from cdb_cli.adapters.redis_bus import RedisBus
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.errors import MalformedEvent
from cdb_cli.engine.events import (
    Bar,
    Event,
    HealthReport,
    QuoteTick,
    Topic,
    TradeTick,
)
from cdb_cli.engine.ports.bus import MessageBus

MakeBus = Callable[[], MessageBus]
MD = Topic.MARKET_DATA


def run(make_bus: MakeBus, scenario: Callable[[MessageBus], Awaitable[None]]) -> None:
    async def main() -> None:
        async with make_bus() as bus:
            await scenario(bus)

    asyncio.run(main())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.infra)])
def make_bus(request: pytest.FixtureRequest) -> Iterator[MakeBus]:
    """A factory of fresh buses; for Redis they share this test's own key prefix."""
    if request.param == "memory":
        yield InMemoryBus
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = new_key_prefix()
    yield lambda: RedisBus(url, prefix=prefix)
    delete_keys(url, prefix)


def test_bus_round_trip_preserves_typed_events(make_bus: MakeBus) -> None:
    events: list[Event] = [
        tick(1).model_copy(update={"price": Decimal("0.000000012345678901234567890")}),
        QuoteTick(
            symbol="ETHUSDT",
            ts_event=2,
            source="ws",
            bid=Decimal("3000.10"),
            ask=Decimal("3000.20"),
            bid_size=Decimal("1.5000"),
            ask_size=Decimal("0"),
        ),
        Bar(
            symbol="ETHUSDT",
            ts_event=3,
            source="ws",
            open=Decimal("1"),
            high=Decimal("2.50"),
            low=Decimal("0.9"),
            close=Decimal("2.00"),
            volume=Decimal("10"),
            closed=False,
        ),
    ]

    async def scenario(bus: MessageBus) -> None:
        sub = await bus.subscribe(MD, "g", "c1")
        ids = [await bus.publish(MD, event) for event in events]
        got = await sub.fetch(10, timeout_s=1.0)
        assert [d.message_id for d in got] == ids
        assert [d.event for d in got] == events
        assert [type(d.event) for d in got] == [TradeTick, QuoteTick, Bar]
        assert str(got[0].event.price) == "1.2345678901234567890E-8"  # type: ignore[attr-defined]
        assert str(got[1].event.bid_size) == "1.5000"  # type: ignore[attr-defined]
        assert all(d.topic is MD for d in got)

    run(make_bus, scenario)


def test_bus_every_group_receives_every_event_published_after_it_joined(make_bus: MakeBus) -> None:
    async def scenario(bus: MessageBus) -> None:
        await bus.publish(MD, tick(0))  # before any group exists: nobody gets it
        risk = await bus.subscribe(MD, "risk", "r1")
        signals = await bus.subscribe(MD, "signals", "s1")
        sent = [tick(n) for n in range(1, 6)]
        for event in sent:
            await bus.publish(MD, event)
        late = await bus.subscribe(MD, "late", "l1")
        assert [d.event for d in await risk.fetch(10, 1.0)] == sent
        assert [d.event for d in await signals.fetch(10, 1.0)] == sent
        assert await late.fetch(10, timeout_s=0) == []

    run(make_bus, scenario)


def test_bus_consumers_in_one_group_split_events_without_duplicates(make_bus: MakeBus) -> None:
    async def scenario(bus: MessageBus) -> None:
        first = await bus.subscribe(MD, "risk", "c1")
        second = await bus.subscribe(MD, "risk", "c2")
        sent = [tick(n) for n in range(10)]
        for event in sent:
            await bus.publish(MD, event)
        a = await first.fetch(4, 1.0)
        b = await second.fetch(100, 1.0)
        assert len(a) == 4
        assert len(b) == 6
        assert sorted(d.event.event_id for d in a + b) == sorted(e.event_id for e in sent)
        await first.ack(*a)
        await second.ack(*b)
        assert await first.fetch(10, timeout_s=0) == []
        assert await second.fetch(10, timeout_s=0) == []

    run(make_bus, scenario)


def test_bus_event_left_unacknowledged_stays_pending_and_is_redelivered(
    make_bus: MakeBus,
) -> None:
    """What a handler that failed leaves behind: its event, unacknowledged, comes back by
    reclaim once idle long enough; the acknowledged ones do not."""
    sent = [tick(n) for n in range(3)]

    async def scenario(bus: MessageBus) -> None:
        sub = await bus.subscribe(MD, "portfolio", "p1")
        for event in sent:
            await bus.publish(MD, event)
        given = await sub.fetch(10, 1.0)
        assert [d.event for d in given] == sent
        await sub.ack(given[0], given[2])  # the handler of sent[1] failed
        assert await sub.reclaim(min_idle_s=60) == []  # not idle long enough yet
        again = await sub.reclaim(min_idle_s=0)
        assert [d.event for d in again] == [sent[1]]
        await sub.ack(*again)
        assert await sub.reclaim(min_idle_s=0) == []  # everything acknowledged

    run(make_bus, scenario)


def test_bus_dead_consumers_pending_events_are_reclaimed_by_another(make_bus: MakeBus) -> None:
    async def scenario(bus: MessageBus) -> None:
        dead = await bus.subscribe(MD, "execution", "dead")
        alive = await bus.subscribe(MD, "execution", "alive")
        sent = [tick(n) for n in range(3)]
        for event in sent:
            await bus.publish(MD, event)
        assert len(await dead.fetch(10, 1.0)) == 3  # ...and it crashes before acknowledging
        assert await alive.fetch(10, timeout_s=0) == []  # pending, not redelivered by itself
        assert await alive.reclaim(min_idle_s=60) == []
        taken = await alive.reclaim(min_idle_s=0)
        assert [d.event for d in taken] == sent
        await alive.ack(*taken)
        assert await alive.reclaim(min_idle_s=0) == []

    run(make_bus, scenario)


def test_bus_restarted_consumer_first_gets_what_it_never_acknowledged(make_bus: MakeBus) -> None:
    async def scenario(bus: MessageBus) -> None:
        before = await bus.subscribe(MD, "risk", "risk-1")
        sent = [tick(n) for n in range(4)]
        for event in sent[:3]:
            await bus.publish(MD, event)
        given = await before.fetch(10, 1.0)
        await before.ack(given[0])
        await bus.publish(MD, sent[3])
        after = await bus.subscribe(MD, "risk", "risk-1")  # same name: the restarted process
        assert [d.event for d in await after.fetch(1, 1.0)] == [sent[1]]
        assert [d.event for d in await after.fetch(10, 1.0)] == [sent[2]]
        assert [d.event for d in await after.fetch(10, 1.0)] == [sent[3]]

    run(make_bus, scenario)


def test_bus_delivers_an_event_published_twice_under_two_message_ids(make_bus: MakeBus) -> None:
    """At-least-once: the bus does not drop a retried publish; consumers drop the copy by event
    id (the components' inboxes, with a ``DedupWindow``)."""

    async def scenario(bus: MessageBus) -> None:
        sub = await bus.subscribe(MD, "risk", "r1")
        twice, other = tick(7, event_id="fixed-id"), tick(8)
        first_id = await bus.publish(MD, twice)
        await bus.publish(MD, other)
        second_id = await bus.publish(MD, twice)
        assert first_id != second_id
        given = await sub.fetch(10, 1.0)
        assert [d.event for d in given] == [twice, other, twice]
        assert [d.message_id for d in given] == [first_id, given[1].message_id, second_id]
        await sub.ack(*given)
        assert await sub.reclaim(min_idle_s=0) == []

    run(make_bus, scenario)


def test_bus_rejects_event_on_a_topic_that_does_not_carry_it(make_bus: MakeBus) -> None:
    health = HealthReport(symbol="*", ts_event=1, source="t", component="bus", status="ok")

    async def scenario(bus: MessageBus) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        with pytest.raises(MalformedEvent, match="cannot be published on 'trading_signals'"):
            await bus.publish(Topic.TRADING_SIGNALS, tick())
        with pytest.raises(MalformedEvent, match="HealthReport"):
            await bus.publish_many([(MD, tick(1)), (MD, health)])
        assert await sub.fetch(10, timeout_s=0) == []  # the valid first one was not written

    run(make_bus, scenario)


def test_bus_publish_many_writes_to_several_topics(make_bus: MakeBus) -> None:
    health = HealthReport(symbol="*", ts_event=1, source="t", component="bus", status="ok")

    async def scenario(bus: MessageBus) -> None:
        md = await bus.subscribe(MD, "g", "c")
        sh = await bus.subscribe(Topic.SYSTEM_HEALTH, "g", "c")
        one, two = tick(1), tick(2)
        ids = await bus.publish_many([(MD, one), (Topic.SYSTEM_HEALTH, health), (MD, two)])
        got = await md.fetch(10, 1.0)
        assert [d.event for d in got] == [one, two]
        assert [d.message_id for d in got] == [ids[0], ids[2]]
        assert [d.message_id for d in await sh.fetch(10, 1.0)] == [ids[1]]
        assert await bus.publish_many([]) == []

    run(make_bus, scenario)


def test_bus_delivers_in_publish_order_within_a_topic(make_bus: MakeBus) -> None:
    async def scenario(bus: MessageBus) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        sent = [tick(n) for n in range(50)]
        ids = [await bus.publish(MD, event) for event in sent[:20]]
        ids += await bus.publish_many([(MD, event) for event in sent[20:]])
        got = []
        while batch := await sub.fetch(7, timeout_s=0):
            got += batch
        assert [d.event for d in got] == sent
        assert [d.message_id for d in got] == ids

    run(make_bus, scenario)


def test_bus_dropped_group_forgets_its_pending_events(make_bus: MakeBus) -> None:
    async def scenario(bus: MessageBus) -> None:
        first, second, third = tick(1), tick(2), tick(3)
        tail = await bus.subscribe(MD, "tail", "t1")
        await bus.publish(MD, first)
        assert [d.event for d in await tail.fetch(10, 1.0)] == [first]  # pending, not acked
        await bus.drop_group(MD, "tail")
        await bus.drop_group(MD, "tail")  # again: no error
        await bus.drop_group(MD, "never-existed")
        await bus.publish(MD, second)
        again = await bus.subscribe(MD, "tail", "t1")  # a new group starts at the end
        assert await again.fetch(10, timeout_s=0.1) == []
        await bus.publish(MD, third)
        assert [d.event for d in await again.fetch(10, 1.0)] == [third]

    run(make_bus, scenario)


def test_bus_publish_soon_writes_before_it_returns(make_bus: MakeBus) -> None:
    """The events are on their way before the result is awaited (a reader gets them first);
    the result gives their ids; a bad event is refused at once and nothing is written."""
    health = HealthReport(symbol="*", ts_event=1, source="t", component="bus", status="ok")

    ticks = [tick(n) for n in range(5)]

    async def scenario(bus: MessageBus) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        await bus.publish(MD, ticks[1])  # the connection is open: the write cannot wait
        assert [d.event for d in await sub.fetch(10, timeout_s=1)] == [ticks[1]]
        ids = bus.publish_soon([(MD, ticks[2]), (MD, ticks[3])])
        got = await sub.fetch(10, timeout_s=2)
        assert [d.event for d in got] == ticks[2:4]
        assert await ids == [d.message_id for d in got]
        with pytest.raises(MalformedEvent, match="HealthReport"):
            bus.publish_soon([(MD, ticks[4]), (MD, health)])
        assert await sub.fetch(10, timeout_s=0) == []

    run(make_bus, scenario)
