"""The marketdata and signals components in process (in-process bus, SQLite store): a closed bar
goes to ``market_data`` just before the trade that closed it, and first, alone, to
``market_bars``, the only topic ``signals`` reads (it is not woken by trades)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cdb_testkit import QueueFeed
from market_testkit import SYMBOL, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import Bar, Event, HealthReport, Topic, TradeTick
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.marketdata import MarketDataComponent
from cdb_cli.runtime.components.signals import SignalsComponent

SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND


class PublicationsBus(InMemoryBus):
    """The in-process bus, keeping each publication's (topic, event) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.publications: list[list[tuple[Topic, Event]]] = []

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        self.publications.append(list(items))
        return await super().publish_many(items)


def test_bars_go_first_to_market_bars_and_signals_reads_only_them(tmp_path: Path) -> None:
    from cdb_cli.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'md.db'}",
        bus_url="redis://127.0.0.1:6379/0",  # what component mode asks for; the test passes a bus
        bar_seconds=1,
    )

    async def scenario() -> None:
        store = open_store(settings, create_if_new=True)
        bus = PublicationsBus()
        feed = QueueFeed()
        common = {
            "store": store,
            "bus": bus,
            "symbols": [SYMBOL],
            "instruments": {SYMBOL: default_instrument(SYMBOL)},
            "run_id": "ptestmd",
        }
        signals = SignalsComponent(settings, **common)  # type: ignore[arg-type]
        marketdata = MarketDataComponent(settings, feed=feed, **common)  # type: ignore[arg-type]
        progress = await bus.subscribe(Topic.TRADING_SIGNALS, "test", "t")
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in (signals, marketdata)]
        await asyncio.wait_for(marketdata.started.wait(), 10)
        await asyncio.wait_for(signals.started.wait(), 10)
        # 2.5 s of trades
        ticks = [trade(T0 + n * SECOND // 4, str(100 + n), quantity="1") for n in range(10)]
        for tick in ticks:
            feed.events.put_nowait(tick)
        reports: list[Event] = []
        for _ in range(50):
            reports += [d.event for d in await progress.fetch(100, 0.1)]
            if len(reports) >= 3:
                break
        stop.set()
        await asyncio.gather(*tasks)
        store.close()

        published = [pair for publication in bus.publications for pair in publication]
        bars = [event for topic, event in published if topic is Topic.MARKET_BARS]
        # two bars closed by trades, the last by the clock (its end is long past)
        assert [bar.ts_event for bar in bars] == [T0, T0 + SECOND, T0 + 2 * SECOND]  # type: ignore[attr-defined]
        assert all(isinstance(bar, Bar) and bar.closed_at for bar in bars)
        # Each closed bar alone on market_bars first (that wakes only signals), then in the next
        # publication on market_data, before the trade that closed it.
        publications = iter(bus.publications)
        for publication in publications:
            topics = {topic for topic, _ in publication}
            if Topic.MARKET_BARS in topics:
                assert topics == {Topic.MARKET_BARS}
                market = next(publications)
                assert {topic for topic, _ in market} == {Topic.MARKET_DATA}
                assert [e for _, e in publication] == [e for _, e in market if isinstance(e, Bar)]
            else:
                assert not any(isinstance(e, Bar) for _, e in publication)
        market = [event for topic, event in published if topic is Topic.MARKET_DATA]
        assert [e.ts_event for e in market if isinstance(e, TradeTick)] == [
            t.ts_event for t in ticks
        ]
        # signals saw the three bars (a progress report each), and no trade
        assert [type(e) for e in reports] == [HealthReport] * 3
        assert signals.counts.get("bars") == 3
        assert marketdata.counts.get("market_events") == len(ticks)

    asyncio.run(scenario())
