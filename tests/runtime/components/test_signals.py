"""``signals``: each closed bar's strategy trace is stored with the component's batch (not
published), the signal it raises carries the id of its bar's trace, and the component's own
records take the time of the clock it was given."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from market_testkit import eventually

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import Bar, Event, StrategyTrace, Topic, TradingSignal
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.signals import SignalsComponent
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND
CLOCK_NS = 1_700_000_000 * SECOND


class PublicationsBus(InMemoryBus):
    """The in-process bus, keeping every (topic, event) it was asked to publish."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[Topic, Event]] = []

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        self.published += items
        return await super().publish_many(items)


def bar(i: int, close: float) -> Bar:
    price = Decimal(repr(close))
    return Bar(
        event_id=f"bar-{SYMBOL}-{T0 + i * SECOND}",
        symbol=SYMBOL,
        ts_event=T0 + i * SECOND,
        source="marketdata",
        interval="1s",
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(1 + i % 3),
        closed_at=T0 + (i + 1) * SECOND,
    )


def test_every_bar_is_traced_in_the_store_and_the_signal_names_its_trace(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'signals.db'}",
        bar_seconds=1,
        ema_fast=2,
        ema_slow=4,
        rsi_period=2,
        volume_period=3,
        volume_factor=0.01,
    )
    closes = [
        100.0,
        99.0,
        98.0,
        97.0,
        96.0,
        95.0,
        97.0,
        99.0,
        101.0,
        103.0,
    ]  # down, then a cross up

    async def scenario() -> tuple[list[StrategyTrace], list[TradingSignal], list[Topic]]:
        store = open_store(settings, create_if_new=True)
        bus = PublicationsBus()
        signals = SignalsComponent(
            settings,  # type: ignore[arg-type]
            store=store,
            bus=bus,
            symbols=[SYMBOL],
            instruments={SYMBOL: default_instrument(SYMBOL)},
            run_id="ptestsig",
            clock=TestClock(CLOCK_NS),  # the component's own time, not the wall's
        )
        stop = asyncio.Event()
        task = asyncio.create_task(signals.run(stop))
        await asyncio.wait_for(signals.started.wait(), 10)
        await bus.publish_many([(Topic.MARKET_BARS, bar(i, c)) for i, c in enumerate(closes)])
        await eventually(lambda: len(store.events(StrategyTrace)) == len(closes), 15)
        stop.set()
        await asyncio.wait_for(task, 10)
        traces, sent = store.events(StrategyTrace), store.events(TradingSignal)
        audits = store.audits()
        store.close()
        assert [(a.action, a.ts_event) for a in audits] == [
            ("run_start", CLOCK_NS),
            ("run_stop", CLOCK_NS),
        ]
        return traces, sent, [topic for topic, _ in bus.published]

    traces, sent, topics = asyncio.run(scenario())
    assert [t.ts_event for t in traces] == [T0 + (i + 1) * SECOND for i in range(len(closes))]
    assert all(t.event_id.startswith("ptestsig-") for t in traces)
    [buy] = sent
    [traced] = [t for t in traces if t.signal]
    assert buy.trace_id == traced.event_id
    assert traced.signal_id == buy.event_id
    assert traced.signal == "buy"
    buy_conditions = [c for c in traced.conditions if c.side == "buy"]
    assert buy_conditions
    assert all(c.passed for c in buy_conditions)
    assert Topic.STRATEGY_TRACES not in topics  # stored, not published
