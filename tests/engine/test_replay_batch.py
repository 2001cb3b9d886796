"""A bar replay's fast path (a batch strategy's intents taken at once, flat stretches passed
over) against the same replay fed bar by bar: every order, fill, event, counter and the ledger
are the same."""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

import pytest

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.replay import BarSeries, replay_bars
from cdb_cli.engine.risk import RiskEngine, RiskLimits
from cdb_cli.engine.signals import (
    BatchStrategy,
    EmaCrossStrategy,
    SignalConfig,
    SignalIntent,
    Strategy,
    StrategyView,
)

MINUTE = 60 * 10**9
START = 1_700_000_000 * 10**9


def random_walk(n: int, seed: int) -> BarSeries:
    """Seeded 1-minute bars: log returns N(0, 0.1 %), log-normal volume (as the benchmark's)."""
    rng = random.Random(seed)
    series = BarSeries("BTCUSDT", MINUTE)
    price = 100.0
    for i in range(n):
        open_ = price
        price = open_ * math.exp(rng.gauss(0.0, 0.001))
        wick = abs(rng.gauss(0.0, 0.0005))
        series.ts.append(START + i * MINUTE)
        series.open.append(open_)
        series.close.append(price)
        series.high.append(max(open_, price) * (1 + wick))
        series.low.append(min(open_, price) * (1 - wick))
        series.volume.append(rng.lognormvariate(math.log(10.0), 0.8))
    return series


@dataclass
class OneByOne:
    """The same strategy without its batch method: the pipeline feeds it bar by bar."""

    inner: EmaCrossStrategy

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def warmup(self) -> int:
        return self.inner.warmup

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        return self.inner.on_bar(ts_event, close, volume)

    def explain(self, close: float, volume: float) -> StrategyView:
        return self.inner.explain(close, volume)


def pipeline_for(
    series: BarSeries, strategy: Strategy, limits: RiskLimits
) -> tuple[TradingPipeline, TestClock, MemoryRecorder]:
    clock, recorder = TestClock(), MemoryRecorder()
    pipeline = TradingPipeline(
        strategies={series.symbol: strategy},
        risk=RiskEngine(limits),
        execution=SimulatedExecution(
            PaperExecutionConfig(),
            {series.symbol: default_instrument(series.symbol)},
            random.Random(0),
            id_prefix="rb",
            mode="replay",
        ),
        portfolio=Portfolio(D(10_000), quote_currency="USDT"),
        clock=clock,
        recorder=recorder,
        run_id="rb",
    )
    return pipeline, clock, recorder


def replay(series: BarSeries, strategy: Strategy, limits: RiskLimits) -> dict[str, Any]:
    pipeline, clock, recorder = pipeline_for(series, strategy, limits)
    replay_bars(pipeline, series, clock)
    stats = pipeline.snapshot_stats()
    portfolio = pipeline.portfolio
    return {
        "events": recorder.events,
        "orders": list(recorder.orders.values()),
        "fills": recorder.fills,
        "stats": stats,
        "cash": portfolio.cash,
        "positions": portfolio.positions,
        "peak": portfolio.peak_equity,
        "day_start": portfolio.day_start_equity,
        "marks": pipeline.marks(),
        "state": pipeline.trading_state,
        "snapshots": pipeline.snapshots,
        "clock": clock.timestamp_ns(),
    }


LIMITS_OFF = RiskLimits(circuit_breaker_pct=D(100), daily_drawdown_pct=D(100))


@pytest.fixture(scope="module")
def series() -> BarSeries:
    return random_walk(150_000, seed=11)  # more than two of the loop's 65,536-bar chunks


@pytest.mark.parametrize(
    ("config", "limits"),
    [
        (SignalConfig(), RiskLimits()),
        (SignalConfig(), LIMITS_OFF),
        (SignalConfig(trend_filter=True, trend_period=120), LIMITS_OFF),
        (SignalConfig(ema_fast=4, ema_slow=9, rsi_period=5, volume_factor=1.1), LIMITS_OFF),
    ],
    ids=["default", "limits-off", "trend-filter", "fast"],
)
def test_the_fast_path_replays_exactly_as_bar_by_bar(
    series: BarSeries, config: SignalConfig, limits: RiskLimits
) -> None:
    assert isinstance(EmaCrossStrategy(config), BatchStrategy)
    fast = replay(series, EmaCrossStrategy(config), limits)
    slow = replay(series, OneByOne(EmaCrossStrategy(config)), limits)
    assert fast["stats"].fills > 10, "a test of the fills needs fills"
    assert fast["stats"].signals["exit"] > 100
    for key in slow:
        assert fast[key] == slow[key], key


def test_replays_of_one_series_share_its_indicators(series: BarSeries) -> None:
    """A second replay of the same series (a sweep's next configuration) takes the EMAs and the
    RSI its periods need from the series' cache, and replays exactly as a fresh series does."""
    config = SignalConfig(ema_fast=8)
    first = replay(series, EmaCrossStrategy(config), LIMITS_OFF)
    cached = {key[:2] for key in series.cache}
    assert {("ema", 8), ("ema", 26), ("rsi", 14)} <= cached
    again = replay(series, EmaCrossStrategy(config), LIMITS_OFF)
    fresh = BarSeries(
        series.symbol,
        series.interval_ns,
        array("q", series.ts),
        array("d", series.open),
        array("d", series.high),
        array("d", series.low),
        array("d", series.close),
        array("d", series.volume),
    )
    alone = replay(fresh, EmaCrossStrategy(config), LIMITS_OFF)
    assert first["stats"].fills > 0
    for key in first:
        assert again[key] == first[key] == alone[key], key


def test_a_batch_strategy_that_raises_is_disabled_and_the_run_goes_on(
    series: BarSeries, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(EmaCrossStrategy):
        def on_bars(self, bars: Any) -> list[tuple[int, SignalIntent]]:
            raise ZeroDivisionError("bad batch")

    result = replay(series, Broken(), RiskLimits())
    assert result["stats"].strategy_errors == 1
    assert result["stats"].bars == len(series)
    assert sum(result["stats"].signals.values()) == 0
    assert "disabled after 1 errors" in caplog.text
    assert "bad batch" in caplog.text


def test_a_finished_replay_is_collected(series: BarSeries) -> None:
    """The replay pauses the collector, never freezes what it made: a finished run, whose
    pipeline and parts point at each other, is freed by the collector (a sweep worker replays
    a thousand runs; a frozen one kept every one of them)."""
    import gc
    import weakref

    frozen = gc.get_freeze_count()
    pipeline, clock, _ = pipeline_for(series, EmaCrossStrategy(), LIMITS_OFF)
    replay_bars(pipeline, series, clock)
    assert pipeline.snapshot_stats().fills > 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    collected = weakref.ref(pipeline)
    del pipeline
    gc.collect()
    assert collected() is None
