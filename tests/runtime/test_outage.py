"""The one-process loop rides out outages (issue 22): the test's own PostgreSQL is stopped for a
minute mid-trading, then the test's own Redis for a minute. The loop does not exit. While the
store is down risk refuses new entries (code ``store_down``), ``/ready`` says ``database down``
and the metrics show it; when it is back everything kept in memory is written. While Redis is
down only publications fail (the store has every event): ``/ready`` says ``bus down``. After
both, nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from cdb_testkit import QueueFeed
from market_testkit import eventually, trade
from outage_testkit import PrivatePostgres, PrivateRedis

from cdb_cli.adapters.metrics import Metrics
from cdb_cli.adapters.sql.migrations import upgrade
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import OrderApproved, RiskDecision, TradeTick
from cdb_cli.engine.ports.bus import MessageBus
from cdb_cli.engine.ports.store import Store
from cdb_cli.kernel import open_bus, open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.paper import PaperVenue
from cdb_cli.settings import Settings

SECOND = 1_000_000_000
T0 = 1_704_067_200 * SECOND
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
OUTAGE_S = float(os.environ.get("CDB_OUTAGE_SECONDS", "60"))

pytestmark = pytest.mark.infra


def settings_for(url: str, bus_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        bus_url=bus_url,
        spill_dir=tmp_path / "unsaved",
        paper_latency_ms=0,
        circuit_breaker_pct=Decimal(100),
        daily_drawdown_pct=Decimal(100),
        ema_fast=2,  # a fast cross on 10-second bars: entries and exits every few minutes
        ema_slow=4,
        rsi_period=3,
        volume_period=5,
        volume_factor=0.5,
        max_exposure_pct=Decimal(100),
        risk_per_trade_pct=Decimal(1),
        position_risk_pct=Decimal(50),
    )


class Market:
    """A seeded random walk of every symbol, a trade each 500 ms of the clock's time."""

    def __init__(self, feed: QueueFeed, clock: TestClock) -> None:
        self.feed, self.clock = feed, clock
        self.rng = random.Random(7)
        self.prices = dict.fromkeys(SYMBOLS, 100.0)
        self.ts = T0
        self.fed = 0

    async def step(self) -> None:
        self.ts += SECOND // 2
        self.clock.set_time(self.ts)
        for symbol in SYMBOLS:
            self.prices[symbol] *= math.exp(self.rng.gauss(0.0, 0.002))
            quantity = f"{self.rng.lognormvariate(0.0, 1.0):.4f}"
            self.feed.events.put_nowait(
                trade(self.ts, f"{self.prices[symbol]:.4f}", quantity=quantity, symbol=symbol)
            )
            self.fed += 1
        await eventually(self.feed.events.empty)


async def outage(market: Market) -> None:
    """The market goes on for OUTAGE_S seconds of wall time (the loop keeps it in memory)."""
    started = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - started < OUTAGE_S:
        await market.step()
        await asyncio.sleep(0.02)  # paces the market only: ~2 trades/s per symbol


def test_the_loop_rides_out_postgres_then_redis_outages(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    postgres, redis = private_postgres, private_redis
    settings = settings_for(postgres.url, redis.url, tmp_path)
    upgrade(settings.database_url)
    metrics = Metrics(run_id="poutage", symbols=list(SYMBOLS))

    async def scenario() -> Market:
        store = open_store(settings)
        try:
            async with open_bus(settings) as bus:
                servers = (postgres, redis)
                return await trade_through_outages(settings, servers, store, bus, metrics)
        finally:
            store.close()

    market = asyncio.run(scenario())
    store = open_store(settings)
    try:
        assert_nothing_lost_or_doubled(store, market)
    finally:
        store.close()


def assert_nothing_lost_or_doubled(store: Store, market: Market) -> None:
    """Every market event stored once; entries refused during the outage; each approval one
    order, each filled order its fills, the positions the sum of the fills."""
    assert store.count_events(TradeTick) == market.fed  # every market event, once
    decisions = store.events(RiskDecision)
    refused = [d for d in decisions if any(c.code == "store_down" for c in d.checks)]
    assert refused, "no entry came up during the outage"
    assert all(d.verdict == "rejected" for d in refused)
    approvals = store.events(OrderApproved)
    orders = store.orders()
    by_decision: dict[str, int] = defaultdict(int)
    for order in orders:
        by_decision[order.decision_id] += 1
    assert {a.decision_id for a in approvals} == set(by_decision)
    assert set(by_decision.values()) == {1}  # each approval one order
    fills = store.fills()
    filled = defaultdict(Decimal)
    held = defaultdict(Decimal)
    for f in fills:
        filled[f.client_order_id] += f.quantity
        held[f.symbol] += f.quantity if f.side == "BUY" else -f.quantity
    for order in orders:
        if order.status == "FILLED":
            assert filled[order.client_order_id] > 0, order
    positions = {p.symbol: p.quantity for p in store.positions()}
    for symbol in SYMBOLS:
        assert positions.get(symbol, Decimal(0)) == held[symbol], symbol
    assert len({f.fill_id for f in fills}) == len(fills)


async def trade_through_outages(
    settings: Settings,
    servers: tuple[PrivatePostgres, PrivateRedis],
    store: Store,
    bus: MessageBus,
    metrics: Metrics,
) -> Market:
    """Trade, stop PostgreSQL for OUTAGE_S, trade, stop Redis for OUTAGE_S, trade, stop."""
    postgres, redis = servers

    def up(dependency: str) -> float | None:
        return metrics.registry.get_sample_value("dependency_up", {"dependency": dependency})

    clock, feed = TestClock(T0), QueueFeed()
    loop = TradingLoop(
        settings,
        venue=PaperVenue(),
        store=store,
        bus=bus,
        feed=feed,
        clock=clock,
        symbols=SYMBOLS,
        metrics=metrics,
        bar_interval_ns=10 * SECOND,
        flush_interval_s=0.05,
    )
    market = Market(feed, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.wait_for(loop.started.wait(), 30)
    while not store.orders():  # trading before the outage
        await market.step()
    await asyncio.to_thread(postgres.stop)
    await outage(market)
    assert "database down" in loop.readiness()
    assert up("database") == 0
    assert not task.done()  # the outage did not end the run
    await asyncio.to_thread(postgres.start)
    await eventually(lambda: loop.database_up, timeout_s=60, what="writes after the outage")
    for _ in range(200):
        await market.step()
    assert loop.readiness() == []
    assert up("database") == 1
    await asyncio.to_thread(redis.stop)
    await outage(market)
    assert loop.readiness() == ["bus down"]
    assert up("redis") == 0
    assert not task.done()
    await asyncio.to_thread(redis.start)
    await eventually(lambda: loop.bus_up, timeout_s=60, what="publications after the outage")
    for _ in range(200):
        await market.step()
    assert loop.readiness() == []
    assert up("redis") == 1
    stop.set()
    await asyncio.wait_for(task, 60)  # a clean stop: no error raised
    return market
