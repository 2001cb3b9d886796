"""A component's inbox: it reads the next batch once the component took this one (or after a
while), paces a topic off the decision path, keeps one copy of an event, and can hand what came
to a handler in its own task."""

from __future__ import annotations

import asyncio
from typing import Any

from market_testkit import eventually, tick

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import Topic
from cdb_cli.engine.ports.bus import Delivery, Subscription
from cdb_cli.runtime.components.inbox import READ_AGAIN_S, READ_COUNT, Inbox


class CountedFetches:
    """A real in-process subscription whose fetches are counted; ``returned`` has the loop
    time at which each fetch returned."""

    def __init__(self, inner: Subscription) -> None:
        self.inner = inner
        self.fetches = 0
        self.started: list[float] = []
        self.returned: list[float] = []

    async def fetch(self, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        self.fetches += 1
        self.started.append(asyncio.get_running_loop().time())
        got = await self.inner.fetch(max_count, timeout_s)
        self.returned.append(asyncio.get_running_loop().time())
        return got

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_inbox_reads_again_once_its_batch_is_taken_or_after_a_while() -> None:
    async def scenario() -> None:
        bus = InMemoryBus()
        subscription = CountedFetches(await bus.subscribe(Topic.MARKET_DATA, "g", "c"))
        wake = asyncio.Event()
        inbox = Inbox(subscription, wake)  # type: ignore[arg-type]
        stop = asyncio.Event()
        pump = asyncio.create_task(inbox.run(stop))
        # the first round reclaims, then a fetch waits
        await eventually(lambda: subscription.fetches == 1, what="the first fetch")
        await bus.publish_many([(Topic.MARKET_DATA, tick(n)) for n in (1, 2)])
        await asyncio.wait_for(wake.wait(), 2)
        assert subscription.fetches == 1  # the batch is not taken: no read yet
        assert [inbox.pop()[0].event.ts_event for _ in range(2)] == [1, 2]
        await eventually(lambda: subscription.fetches == 2)  # taken: the next read is out
        taken_to_read = subscription.started[1] - subscription.returned[0]
        assert taken_to_read < READ_AGAIN_S  # at once, not after a while
        await bus.publish(Topic.MARKET_DATA, tick(3))
        # not taken: the inbox reads again after a while
        await eventually(lambda: subscription.fetches == 3, what="the read after a while")
        assert subscription.started[2] - subscription.returned[1] >= READ_AGAIN_S * 0.9
        assert len(inbox.queue) == 1
        stop.set()
        await asyncio.wait_for(pump, 2)

    asyncio.run(scenario())


class RedeliversOnce(CountedFetches):
    """Gives its first non-empty batch a second time (a reread of the pending list)."""

    def __init__(self, inner: Subscription) -> None:
        super().__init__(inner)
        self.first: list[Delivery] | None = None

    async def fetch(self, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        if self.first:
            again, self.first = self.first, []
            return again
        got = await super().fetch(max_count, timeout_s)
        if got and self.first is None:
            self.first = got
        return got


def test_an_inbox_does_not_queue_again_what_it_still_holds() -> None:
    async def scenario() -> None:
        bus = InMemoryBus()
        subscription = RedeliversOnce(await bus.subscribe(Topic.MARKET_DATA, "g", "c"))
        inbox = Inbox(subscription, asyncio.Event())  # type: ignore[arg-type]
        stop = asyncio.Event()
        pump = asyncio.create_task(inbox.run(stop))
        await bus.publish(Topic.MARKET_DATA, tick(1))
        # not taken: read again, the same delivery comes (and is queued, or not, at once)
        await eventually(lambda: subscription.first == [], what="the delivery given again")
        assert [d.event.ts_event for d in inbox.queue] == [1]
        stop.set()
        await asyncio.wait_for(pump, 2)

    asyncio.run(scenario())


def test_a_paced_inbox_lets_the_stream_fill_unless_it_is_behind() -> None:
    async def scenario() -> None:
        bus = InMemoryBus()
        subscription = CountedFetches(await bus.subscribe(Topic.MARKET_DATA, "g", "c"))
        wake = asyncio.Event()
        inbox = Inbox(subscription, wake, pace_s=0.3)  # type: ignore[arg-type]

        async def queued(count: int) -> None:
            while len(inbox.queue) < count:
                wake.clear()
                await asyncio.wait_for(wake.wait(), 2)

        stop = asyncio.Event()
        pump = asyncio.create_task(inbox.run(stop))
        started = asyncio.get_running_loop().time()
        for n in range(1, 4):  # the first round reclaims (nothing), then it waits 0.3 s
            await bus.publish(Topic.MARKET_DATA, tick(n))
            await asyncio.sleep(0.02)  # paces the publisher only
        await queued(3)
        assert subscription.fetches == 1  # one read took all three, not woken by each of them
        assert subscription.started[0] - started >= 0.3 * 0.9
        assert [d.event.ts_event for d in inbox.queue] == [1, 2, 3]
        while inbox.queue:
            inbox.pop()
        # Behind (a full read): the next read follows without the pace.
        await bus.publish_many([(Topic.MARKET_DATA, tick(n)) for n in range(READ_COUNT + 5)])
        loop = asyncio.get_running_loop()
        await queued(READ_COUNT)
        full_at = loop.time()
        await queued(READ_COUNT + 5)
        assert loop.time() - full_at < 0.2  # READ_AGAIN_S, not the 0.3 s pace
        stop.set()
        await asyncio.wait_for(pump, 2)

    asyncio.run(scenario())


class Batches:
    """A subscription that hands out the given batches and records what is acknowledged."""

    def __init__(self, batches: list[list[Delivery]]) -> None:
        self.batches = batches
        self.acked: list[str] = []

    async def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        return []

    async def fetch(self, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(0.01)
        return []

    async def ack(self, *deliveries: Delivery) -> None:
        self.acked += [delivery.message_id for delivery in deliveries]


def test_an_inbox_acknowledges_a_copy_of_a_held_event_under_another_message_id() -> None:
    """A publish retried after its reply was lost puts the same event in the stream twice. The
    copy is not handled again, and it is acknowledged at once: the handling of the entry held
    acknowledges only that entry."""
    event = tick(1)
    first = Delivery(Topic.MARKET_DATA, "1-0", event)
    copy = Delivery(Topic.MARKET_DATA, "2-0", event)

    async def scenario() -> None:
        subscription = Batches([[first, copy], [first]])  # then the held entry read again
        inbox = Inbox(subscription, asyncio.Event())  # type: ignore[arg-type]
        stop = asyncio.Event()
        pump = asyncio.create_task(inbox.run(stop))
        await eventually(lambda: not subscription.batches, what="both batches read")
        assert [d.message_id for d in inbox.queue] == ["1-0"]
        assert subscription.acked == ["2-0"]  # the copy; the entry read again is still held
        delivery, _ = inbox.pop()
        inbox.done(delivery)
        await inbox.ack()
        assert subscription.acked == ["2-0", "1-0"]
        stop.set()
        await asyncio.wait_for(pump, 2)

    asyncio.run(scenario())


def test_an_inbox_with_a_handler_hands_it_what_came_without_waking_the_step() -> None:
    """The pump awaits the handler itself, batch by batch; the step is not woken."""
    deliveries = [Delivery(Topic.MARKET_DATA, f"{n}-0", tick(n)) for n in (1, 2, 3)]

    async def scenario() -> None:
        handled: list[list[int]] = []
        wake = asyncio.Event()

        async def handle() -> None:
            batch = [inbox.pop()[0] for _ in range(len(inbox.queue))]
            handled.append([delivery.event.ts_event for delivery in batch])
            for delivery in batch:
                inbox.done(delivery)

        subscription = Batches([deliveries[:1], deliveries[1:]])
        inbox = Inbox(subscription, wake, handle=handle)  # type: ignore[arg-type]
        stop = asyncio.Event()
        pump = asyncio.create_task(inbox.run(stop))
        await eventually(lambda: len(handled) == 2, what="both batches handled")
        assert handled == [[1], [2, 3]]
        assert not inbox.queue
        assert not wake.is_set()
        await inbox.ack()
        assert subscription.acked == ["1-0", "2-0", "3-0"]
        stop.set()
        await asyncio.wait_for(pump, 2)

    asyncio.run(scenario())
