"""What the component tests share: a writer's rounds seen from a test (``WriterRounds``), and
the risk component with the events that `signals` and `execution` would send it.
``pythonpath`` in pyproject.toml makes this module importable from every test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from market_testkit import SYMBOL, eventually

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.errors import DependencyError
from cdb_cli.engine.events import (
    Bar,
    Event,
    ExecutionReport,
    Side,
    SignalSide,
    Topic,
    TradingSignal,
)
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.ports.bus import Delivery, Subscription
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import OrderRecord
from cdb_cli.runtime.components.base import Component
from cdb_cli.runtime.components.risk import RiskComponent
from cdb_cli.settings import Settings

SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND


class Acknowledged:
    """From now on, what ``component`` acknowledges on ``topic`` (``acked``: the event ids, in
    order, whether the writer acknowledges them once their batch is stored or the inbox a copy
    at once), what each round of its writer took to acknowledge (``rounds``), and what each
    read of the topic, begun from now on, delivered (``reads``)."""

    def __init__(self, component: Component, topic: Topic) -> None:
        self.rounds: list[list[Delivery]] = []
        self.acked: list[str] = []
        self.reads: list[list[str]] = []
        inbox = component.inboxes[topic]
        subscription = inbox.subscription
        take_done, ack, fetch = inbox.take_done, subscription.ack, subscription.fetch

        def counted() -> list[Delivery]:
            done = take_done()
            self.rounds.append(done)
            return done

        async def acking(*deliveries: Delivery) -> None:
            await ack(*deliveries)
            self.acked += [delivery.event.event_id for delivery in deliveries]

        async def reading(max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
            got = await fetch(max_count, timeout_s)
            self.reads.append([delivery.event.event_id for delivery in got])
            return got

        inbox.take_done = counted  # type: ignore[method-assign]
        subscription.ack = acking  # type: ignore[method-assign]
        subscription.fetch = reading  # type: ignore[method-assign]

    def delivered(self) -> list[str]:
        """The ids of the events the reads delivered, in order."""
        return [event_id for read in self.reads for event_id in read]

    async def until(self, check: Callable[[list[str]], bool], what: str) -> None:
        """Wait until ``check(acked)`` holds."""
        await eventually(lambda: check(self.acked), what=what)


class RecordingBus(InMemoryBus):
    """The in-process bus, recording for each consumer group and topic, from its first
    subscription on, what it was delivered (``delivered[(topic, group)]``) and what it
    acknowledged (``acked[(topic, group)]``), as event ids in order."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: dict[tuple[Topic, str], list[str]] = {}
        self.acked: dict[tuple[Topic, str], list[str]] = {}

    async def subscribe(self, topic: Topic, group: str, consumer: str) -> Subscription:
        subscription = await super().subscribe(topic, group, consumer)
        delivered = self.delivered.setdefault((topic, group), [])
        acked = self.acked.setdefault((topic, group), [])
        ack, fetch, reclaim = subscription.ack, subscription.fetch, subscription.reclaim

        async def acking(*deliveries: Delivery) -> None:
            await ack(*deliveries)
            acked.extend(delivery.event.event_id for delivery in deliveries)

        async def fetching(max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
            got = await fetch(max_count, timeout_s)
            delivered.extend(delivery.event.event_id for delivery in got)
            return got

        async def reclaiming(min_idle_s: float, max_count: int = 100) -> list[Delivery]:
            got = await reclaim(min_idle_s, max_count)
            delivered.extend(delivery.event.event_id for delivery in got)
            return got

        subscription.ack = acking  # type: ignore[method-assign]
        subscription.fetch = fetching  # type: ignore[method-assign]
        subscription.reclaim = reclaiming  # type: ignore[method-assign]
        return subscription


def at_head(component: Component, topic: Topic, event: Event) -> bool:
    """``event`` is the next of ``topic`` to handle: everything before it is handled."""
    queue = component.inboxes[topic].queue
    return bool(queue) and queue[0].event.event_id == event.event_id


def risk_on(
    settings: Settings, store: Store, bus: InMemoryBus, run_id: str, **options: float
) -> RiskComponent:
    """The risk component of ``SYMBOL`` on ``store`` and ``bus``, as in its own process."""
    return RiskComponent(
        settings,
        store=store,
        bus=bus,
        symbols=[SYMBOL],
        instruments={SYMBOL: default_instrument(SYMBOL)},
        run_id=run_id,
        **options,  # type: ignore[arg-type]
    )


def buy_signal(closed: Bar) -> TradingSignal:
    """What `signals` published for the bar: a buy."""
    return TradingSignal(
        event_id=f"sig-{closed.event_id}",
        symbol=SYMBOL,
        ts_event=closed.closed_at,
        source="ema_cross",
        side=SignalSide.BUY,
        strategy="ema_cross",
        price=Decimal(100),
        strength=0.8,
        bar_id=closed.event_id,
    )


def working_order() -> OrderRecord:
    """A buy approved before a restart, still working in the store."""
    return OrderRecord(
        client_order_id="pold-3",
        decision_id="pold-2",
        symbol=SYMBOL,
        side=Side.BUY,
        order_type="MARKET",
        quote_amount=Decimal(500),
        status="NEW",
        ts_created=T0,
        ts_updated=T0,
        mode="paper",
    )


def fill_report(order: OrderRecord, ts: int) -> ExecutionReport:
    """The execution's report of ``order`` filled at the trade at ``ts``."""
    return ExecutionReport(
        event_id=f"{order.client_order_id}-pexecr1",
        symbol=SYMBOL,
        ts_event=ts,
        source="paper",
        client_order_id=order.client_order_id,
        side=Side.BUY,
        status="FILLED",
        last_quantity=Decimal("4.99"),
        last_price=Decimal("100.01"),
        fee=Decimal("0.2495499"),
        fee_asset="USDT",
    )


async def collect(subscription: object, count: int, timeout_s: float = 5.0) -> list[Event]:
    events: list[Event] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(events) < count and asyncio.get_running_loop().time() < deadline:
        for delivery in await subscription.fetch(100, 0.1):  # type: ignore[attr-defined]
            events.append(delivery.event)
    return events


class PublicationsBus(InMemoryBus):
    """The in-process bus, keeping each publication's events (one call, one publication) and
    which were sent at once (``publish_soon``). With ``fail_soon``, the first of those fails
    without writing anything (a connection lost with the write)."""

    def __init__(self, *, fail_soon: bool = False) -> None:
        super().__init__()
        self.publications: list[list[Event]] = []
        self.soon: list[list[Event]] = []
        self.fail_soon = fail_soon

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        self.publications.append([event for _, event in items])
        return await super().publish_many(items)

    def publish_soon(self, items: Sequence[tuple[Topic, Event]]) -> Awaitable[list[str]]:
        if self.fail_soon:
            self.fail_soon = False
            failed: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
            failed.set_exception(DependencyError("Redis at 127.0.0.1:6379 is unreachable"))
            return failed
        self.publications.append([event for _, event in items])
        self.soon.append([event for _, event in items])
        return super().publish_soon(items)


def held_report_risk(settings: Settings, store: Store, bus: InMemoryBus) -> RiskComponent:
    """A risk component that checks the store for held fills every 50 ms."""
    risk = risk_on(settings, store, bus, "ptestrisk4", flush_interval_s=0.05, wait_timeout_s=0.5)
    risk.confirm_interval_s = 0.05
    return risk
