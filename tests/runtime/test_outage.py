"""The one-process loop rides out a PostgreSQL outage (issue 22): the test's own cluster is
stopped for a minute mid-trading. The loop does not exit; while the store is down risk refuses
new entries (code ``store_down``), ``/ready`` says ``database down`` and the metrics show it;
when the store is back everything kept in memory is written, and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from cdb_testkit import QueueFeed
from market_testkit import eventually, trade
from outage_testkit import PrivatePostgres, postgres_bin

from cdb_cli.adapters.metrics import Metrics
from cdb_cli.adapters.sql.migrations import upgrade
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import OrderApproved, RiskDecision, TradeTick
from cdb_cli.kernel import open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.paper import PaperVenue
from cdb_cli.settings import Settings

SECOND = 1_000_000_000
T0 = 1_704_067_200 * SECOND
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
OUTAGE_S = float(os.environ.get("CDB_OUTAGE_SECONDS", "60"))

pytestmark = pytest.mark.infra


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if postgres_bin() is None:
        if os.environ.get("CDB_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL's server programs are not installed")
        pytest.skip("PostgreSQL's server programs are not installed")
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
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


def test_the_loop_rides_out_a_postgres_outage(postgres: PrivatePostgres, tmp_path: Path) -> None:
    settings = settings_for(postgres.url, tmp_path)
    upgrade(settings.database_url)
    metrics = Metrics(run_id="poutage", symbols=list(SYMBOLS))
    down = lambda: metrics.registry.get_sample_value(  # noqa: E731
        "dependency_up", {"dependency": "database"}
    )

    async def scenario() -> Market:
        store = open_store(settings)
        clock, feed = TestClock(T0), QueueFeed()
        loop = TradingLoop(
            settings,
            venue=PaperVenue(),
            store=store,
            bus=InMemoryBus(),
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
        started = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - started < OUTAGE_S:
            await market.step()  # the market goes on; the loop keeps it in memory
            await asyncio.sleep(0.02)  # paces the market only: ~2 trades/s per symbol
        assert "database down" in loop.readiness()
        assert down() == 0
        assert not task.done()  # the outage did not end the run
        await asyncio.to_thread(postgres.start)
        await eventually(lambda: loop.database_up, timeout_s=60, what="writes after the outage")
        for _ in range(200):
            await market.step()
        assert loop.readiness() == []
        assert down() == 1
        stop.set()
        await asyncio.wait_for(task, 60)  # a clean stop: no error raised
        store.close()
        return market

    market = asyncio.run(scenario())
    store = open_store(settings)
    try:
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
    finally:
        store.close()
