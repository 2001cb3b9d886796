"""What every component shares: the run frame acknowledges a delivery once its outcome is stored
and freezes the start-up heap while it runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from market_testkit import eventually, tick
from outage_testkit import PrivateRedis

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.errors import DependencyError
from cdb_cli.engine.events import Topic, TradeTick
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.remote import progress_report
from cdb_cli.kernel import open_bus, open_store
from cdb_cli.runtime.components.base import Component
from cdb_cli.settings import Settings


class DownAfterStart:
    """The real SQLite store, whose batch writes fail once ``down`` is set (a database outage)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False

    def save_batch(self, **parts: Any) -> None:
        if self.down:
            raise DependencyError("the database is down")
        self.inner.save_batch(**parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Recorder(Component):
    """Stores every market event it is given, then marks it handled."""

    name = "recorder"
    topics = (Topic.MARKET_DATA,)

    async def step(self) -> None:
        inbox = self.inboxes[Topic.MARKET_DATA]
        if not inbox.queue:
            await self.idle()
        while inbox.queue:
            delivery, _ = inbox.pop()
            self.outbox.event(Topic.MARKET_DATA, delivery.event)
            inbox.done(delivery)


def recorder_on(
    settings: Settings, store: Any, bus: InMemoryBus, run_id: str, flush_interval_s: float = 0.25
) -> Recorder:
    """A recorder on ``store`` (a real one, or a wrapper of it) and ``bus``."""
    return Recorder(
        settings,
        store=store,
        bus=bus,
        symbols=["BTCUSDT"],
        instruments={},
        run_id=run_id,
        flush_interval_s=flush_interval_s,
    )


async def pending(bus: InMemoryBus) -> list[int]:
    """The times of the recorder's trades still unacknowledged (claimed by a probe)."""
    probe = await bus.subscribe(Topic.MARKET_DATA, "recorder", "probe")
    return sorted(d.event.ts_event for d in await probe.reclaim(0.0))


@pytest.mark.parametrize("down", [False, True])
def test_at_stop_a_delivery_is_acknowledged_only_if_its_outcome_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, down: bool
) -> None:
    """The last batch at stop: stored, its deliveries are acknowledged; the store down (spilled
    to a file after 5 s of retries), they are left pending, so a restart handles them again."""
    monkeypatch.chdir(tmp_path)  # where a spilled batch goes
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}", bus_url="redis://127.0.0.1:6379/0"
    )

    async def scenario() -> None:
        store = DownAfterStart(open_store(settings, create_if_new=True))
        bus = InMemoryBus()
        component = recorder_on(settings, store, bus, "ptestbase", 60.0)  # writes at stop only
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        await asyncio.wait_for(component.started.wait(), 10)
        await bus.publish(Topic.MARKET_DATA, tick(1))
        await eventually(lambda: bool(component.outbox), what="trade 1 handled, not yet written")
        store.down = down
        stop.set()
        await asyncio.wait_for(task, 15)
        assert await pending(bus) == ([1] if down else [])
        store.inner.close()

    asyncio.run(scenario())
    assert len(list(settings.spill_dir.glob("cdb-unsaved-*.jsonl"))) == (1 if down else 0)


def test_a_component_freezes_the_heap_start_up_built_until_it_stops(tmp_path: Path) -> None:
    """Started, a component takes what start-up built out of the collector's full passes (a
    60-200 ms pause in the middle of a hop otherwise); stopped, it gives them back."""
    import gc

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}", bus_url="redis://127.0.0.1:6379/0"
    )

    async def scenario() -> int:
        store = open_store(settings, create_if_new=True)
        component = recorder_on(settings, store, InMemoryBus(), "ptestfreeze")
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        await asyncio.wait_for(component.started.wait(), 10)
        frozen = gc.get_freeze_count()
        stop.set()
        await asyncio.wait_for(task, 15)
        store.close()
        return frozen

    assert gc.get_freeze_count() == 0
    assert asyncio.run(scenario()) > 1000
    assert gc.get_freeze_count() == 0


class SlowWrites:
    """The real SQLite store, whose batch writes wait for the test to let each one through."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.writing = threading.Event()
        self.go = threading.Semaphore(0)

    def save_batch(self, **parts: Any) -> None:
        self.writing.set()
        assert self.go.acquire(timeout=10)
        self.inner.save_batch(**parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_delivery_handled_during_a_write_waits_for_the_batch_that_holds_its_outcome(
    tmp_path: Path,
) -> None:
    """The writer acknowledges what was handled when it took the batch, once that batch is
    stored: a trade handled while the write is under way has its outcome in the next batch, so
    it stays pending (a crash then hands it to the restart) until that batch is stored too."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}", bus_url="redis://127.0.0.1:6379/0"
    )

    async def scenario() -> None:
        store = SlowWrites(open_store(settings, create_if_new=True))
        bus = InMemoryBus()
        component = recorder_on(settings, store, bus, "ptestack", 0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        await asyncio.wait_for(component.started.wait(), 10)
        await bus.publish(Topic.MARKET_DATA, tick(1))
        await asyncio.to_thread(store.writing.wait, 10)  # the batch with trade 1 is being written
        store.writing.clear()
        await bus.publish(Topic.MARKET_DATA, tick(2))
        # trade 2 handled: its outcome waits for the next batch
        await eventually(lambda: bool(component.outbox), what="trade 2 handled")
        store.go.release()  # the first batch is stored ...
        await asyncio.to_thread(store.writing.wait, 10)  # ... and the next one is being written
        assert await pending(bus) == [2]
        store.go.release(10)
        stop.set()
        await asyncio.wait_for(task, 15)
        assert await pending(bus) == []
        assert [e.ts_event for e in store.inner.events(TradeTick)] == [1, 2]
        store.inner.close()

    asyncio.run(scenario())


def test_a_bus_outage_is_waited_out_and_nothing_is_lost(tmp_path: Path) -> None:
    """The test's own Redis stops under a running component: it does not exit, says ``bus
    down`` on /ready, and when Redis is back it takes what came meanwhile and acknowledges all
    of it (it exited within 3 s before, issue 22)."""
    redis = PrivateRedis(tmp_path)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", bus_url=redis.url)

    async def scenario() -> None:
        store = open_store(settings, create_if_new=True)
        async with open_bus(settings) as bus:
            component = recorder_on(settings, store, bus, "ptestbus", 0.05)  # type: ignore[arg-type]
            stop = asyncio.Event()
            task = asyncio.create_task(component.run(stop))
            await asyncio.wait_for(component.started.wait(), 10)
            await bus.publish(Topic.MARKET_DATA, tick(1))
            await eventually(lambda: len(store.events(TradeTick)) == 1)
            await asyncio.to_thread(redis.stop)
            await eventually(lambda: "bus down" in component.readiness(), what="bus down")
            await asyncio.to_thread(redis.start)
            assert not task.done()  # the outage did not end it
            await eventually(lambda: component.readiness() == [], 30, "the bus answers again")
            await bus.publish(Topic.MARKET_DATA, tick(2))
            await eventually(lambda: len(store.events(TradeTick)) == 2)
            stop.set()
            await asyncio.wait_for(task, 15)  # a clean stop, no error
            assert await pending(bus) == []  # every delivery acknowledged
        store.close()

    try:
        redis.start()
        asyncio.run(scenario())
    finally:
        redis.close()


class Waiter(Component):
    """At each market event, waits (0.5 s at most) for an event on a side topic."""

    name = "waiter"
    topics = (Topic.MARKET_DATA, Topic.TRADING_SIGNALS)
    waiting = False
    waited: bool | None = None

    async def step(self) -> None:
        market = self.inboxes[Topic.MARKET_DATA]
        if not market.queue:
            await self.idle()
            return
        delivery, _ = market.pop()
        self.waiting = True
        side = self.inboxes[Topic.TRADING_SIGNALS]
        self.waited = await self.wait_for(lambda: bool(side.queue), "the side event", 0.5)
        while side.queue:  # taken (an inbox holding something wakes the step at once)
            side.done(side.pop()[0])
        market.done(delivery)


def test_a_wait_does_not_time_out_while_the_bus_is_down(tmp_path: Path) -> None:
    """What a component waits for cannot come while Redis is down: the test's own Redis stops
    for three times the wait's timeout, and the wait goes on until what it waits for comes
    after Redis is back (it gave up during the outage before, issue 22)."""
    redis = PrivateRedis(tmp_path)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", bus_url=redis.url)

    async def scenario() -> dict[str, int]:
        store = open_store(settings, create_if_new=True)
        async with open_bus(settings) as bus:
            component = Waiter(
                settings, store=store, bus=bus, symbols=["BTCUSDT"], instruments={}, run_id="pw"
            )
            stop = asyncio.Event()
            task = asyncio.create_task(component.run(stop))
            await asyncio.wait_for(component.started.wait(), 10)
            await bus.publish(Topic.MARKET_DATA, tick(1))
            await eventually(lambda: component.waiting, what="the wait begun")
            await asyncio.to_thread(redis.stop)
            await eventually(lambda: "bus down" in component.readiness(), what="bus down")
            clock = asyncio.get_running_loop().time
            went = clock()
            await eventually(lambda: clock() - went > 1.5, what="three timeouts of outage")
            await asyncio.to_thread(redis.start)
            await eventually(lambda: component.readiness() == [], 30, "the bus answers again")
            assert component.waited is None  # still waiting
            side = progress_report("signals", symbol="BTCUSDT", bar_id="b1", ts=2, count=0)
            await bus.publish(Topic.TRADING_SIGNALS, side)
            await eventually(lambda: component.waited is not None, what="the wait's end")
            assert component.waited is True
            stop.set()
            counts = await asyncio.wait_for(task, 15)
        store.close()
        return counts

    try:
        redis.start()
        assert asyncio.run(scenario()).get("wait_timeouts", 0) == 0
    finally:
        redis.close()
