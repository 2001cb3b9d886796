"""MEXC as the paper runtime's market: klines warm it up, MexcDataClient feeds it (simulator)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from market_testkit import eventually

from cdb_cli.adapters.clock import LiveClock
from cdb_cli.adapters.mexc.history import kline_warm_up
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.ws import MexcDataClient, book_ticker_topic, deals_topic
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import QuoteTick, TradeTick
from cdb_cli.kernel import open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.paper import PaperVenue
from cdb_cli.settings import Settings

pytestmark = pytest.mark.anyio

BTC = "BTCUSDT"


async def test_paper_runtime_stores_mexc_events_once_through_drops_and_duplicates(
    sim_config: SimConfig, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'paper.db'}", symbols=[BTC])
    store = open_store(settings, create_if_new=True)
    config = replace(sim_config, tick_interval=0.05)
    try:
        async with (
            SimServer(SimExchange(config)) as sim,
            MexcHttpClient(sim.rest_url) as rest,
        ):
            sim.exchange.faults.update({"ws_duplicate_rate": 0.5})
            feed = MexcDataClient(
                sim.ws_url,
                [deals_topic(BTC), book_ticker_topic(BTC)],
                backoff_base=0.05,
                backoff_max=0.2,
            )
            runtime = TradingLoop(
                settings,
                venue=PaperVenue(),
                store=store,
                bus=InMemoryBus(),
                feed=feed,
                clock=LiveClock(),
                symbols=[BTC],
                warm_up=kline_warm_up(rest, bars=60),  # indicators warmed from MEXC klines
                flush_interval_s=0.05,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(runtime.run(stop))
            try:
                async with asyncio.timeout(10):
                    await runtime.started.wait()
                await eventually(lambda: runtime.summary.market_events >= 10, what="events")
                before = runtime.summary.market_events
                sim.drop_connections()
                await eventually(
                    lambda: (
                        feed.counters["reconnects"] >= 1
                        and runtime.summary.market_events >= before + 10
                        and feed.streams.stats(deals_topic(BTC)).duplicates > 0
                        and len(store.events(TradeTick, symbol=BTC)) >= 10
                    ),
                    what="events after the reconnect, duplicates among them, trades stored",
                )
            finally:
                stop.set()
                summary = await asyncio.wait_for(task, 10)
        trades = store.events(TradeTick, symbol=BTC)
        quotes = store.events(QuoteTick, symbol=BTC)
    finally:
        store.close()
    assert summary.market_events >= 20
    assert feed.counters["reconnects"] >= 1
    assert feed.streams.stats(deals_topic(BTC)).duplicates > 0  # sent twice, stored once
    assert len(trades) >= 10
    assert quotes
    assert len({t.trade_id for t in trades}) == len(trades)
    assert {t.source for t in trades} == {"mexc"}
