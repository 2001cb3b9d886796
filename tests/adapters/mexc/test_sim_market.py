"""The simulated market behaves like a market: its live trades, aggregated the way the bot does,
have the statistics of the history it serves for warm-up, the default strategy signals on them about
as often as on real candles, and a restarted simulator carries on from where it was.

A simulated day is driven at full speed: the exchange's clock is a plain value the test advances,
with trades at seeded exponential gaps, as the server's ticker makes them.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import statistics
from dataclasses import dataclass
from decimal import Decimal

import pytest
from cdb_testkit import load_candles

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange
from cdb_cli.adapters.mexc.sim.market import Candle, PublicTrade
from cdb_cli.engine.bars import BarBuilder, ClosedBar
from cdb_cli.engine.events import SignalSide
from cdb_cli.engine.signals import EmaCrossStrategy, SignalConfig

SYMBOL = "BTCUSDT"
MINUTE_MS = 60_000
DAY_MINUTES = 1440
START_MS = 1_796_601_600_000 + 7 * 3_600_000  # 2026-12-07 07:00 UTC, a minute boundary
WARM_UP_BARS = 300  # what ``cdb run`` fetches (kline_warm_up's default)
REAL_BUYS, REAL_BARS = 58, 13_681  # the default strategy on tests/data/UNITTEST_BTC-1m.json
REAL_RATE = REAL_BUYS / REAL_BARS
SEEDS = (1, 2, 3, 4)


@dataclass
class ManualClock:
    """The simulator's clock, advanced by the test (no real waiting)."""

    ms: int

    def __call__(self) -> int:
        return self.ms


@dataclass(frozen=True)
class Day:
    """One simulated day of a seed: what the simulator served and streamed."""

    config: SimConfig
    created_price: Decimal
    history: list[Candle]
    """The 1-minute klines served for the day before the start (what a warm-up reads)."""
    trades: list[PublicTrade]
    bars: list[ClosedBar]
    """The live bars: the streamed trades aggregated by the bot's BarBuilder."""


def config_for(seed: int) -> SimConfig:
    return SimConfig(symbols=(SYMBOL,), seed=seed, tick_interval=None, history_minutes=DAY_MINUTES)


def served_klines(exchange: SimExchange, start_ms: int, end_ms: int) -> list[Candle]:
    """The ``/klines`` rows of ``[start_ms, end_ms)``, paged like a client pages them."""
    market = exchange.markets[SYMBOL]
    out: list[Candle] = []
    while start_ms < end_ms:
        rows = market.klines(MINUTE_MS, start_ms, end_ms, 1000)
        assert rows
        for row in rows:
            o, h, low, c, v = (Decimal(str(x)) for x in row[1:6])
            out.append(Candle(int(str(row[0])), o, h, low, c, v))
        start_ms = out[-1].open_ms + MINUTE_MS
    return out


def drive(
    exchange: SimExchange, clock: ManualClock, until_ms: int, mean_gap_ms: float, seed: int
) -> list[PublicTrade]:
    """Trade the symbol at seeded exponential gaps until ``until_ms`` (the ticker's schedule)."""
    rng = random.Random(f"{seed}:test-ticker")
    trades: list[PublicTrade] = []
    while True:
        clock.ms += max(1, round(rng.expovariate(1 / mean_gap_ms)))
        if clock.ms >= until_ms:
            clock.ms = until_ms
            return trades
        trades += exchange.step(symbols=[SYMBOL])


def bars_of(trades: list[PublicTrade], until_ms: int) -> list[ClosedBar]:
    builder = BarBuilder(MINUTE_MS * 1_000_000)
    bars: list[ClosedBar] = []
    for t in trades:
        closed = builder.on_trade(SYMBOL, t.time_ms * 1_000_000, float(t.price), float(t.quantity))
        if closed is not None:
            bars.append(closed)
    return bars + builder.close_due(until_ms * 1_000_000)


@functools.cache
def simulated_day(seed: int) -> Day:
    clock = ManualClock(START_MS)
    exchange = SimExchange(config_for(seed), clock_ms=clock)
    created = exchange.markets[SYMBOL].price
    history = served_klines(exchange, START_MS - DAY_MINUTES * MINUTE_MS, START_MS)
    end = START_MS + DAY_MINUTES * MINUTE_MS
    trades = drive(exchange, clock, end, 1000.0, seed)
    return Day(config_for(seed), created, history, trades, bars_of(trades, end))


def live_buy_rate(day: Day) -> float:
    """Buys per live bar of the default strategy, warmed up on the served history like the bot."""
    strategy = EmaCrossStrategy(SignalConfig())
    for candle in day.history[-WARM_UP_BARS:]:
        strategy.on_bar(candle.open_ms + MINUTE_MS, float(candle.close), float(candle.volume))
    buys = 0
    for bar in day.bars:
        intent = strategy.on_bar(bar.ts_close, bar.close, bar.volume)
        buys += intent is not None and intent.side is SignalSide.BUY
    return buys / len(day.bars)


def log_returns(closes: list[float]) -> list[float]:
    return [math.log(b / a) for a, b in itertools.pairwise(closes)]


def test_a_day_has_a_live_bar_every_minute_and_a_full_warm_up_history() -> None:
    day = simulated_day(SEEDS[0])
    assert len(day.history) == DAY_MINUTES
    assert len(day.bars) == DAY_MINUTES
    assert day.bars[0].ts_open == START_MS * 1_000_000
    assert all(b.low <= b.close <= b.high and b.volume > 0 for b in day.bars)


@pytest.mark.parametrize("seed", SEEDS)
def test_default_strategy_buys_on_live_bars_about_as_often_as_on_real_candles(seed: int) -> None:
    rate = live_buy_rate(simulated_day(seed))
    assert REAL_RATE / 3 <= rate <= REAL_RATE * 3, f"seed {seed}: {rate:.3%} vs {REAL_RATE:.3%}"


def test_default_strategy_buy_rate_over_several_days_is_close_to_the_real_one() -> None:
    rates = [live_buy_rate(simulated_day(seed)) for seed in SEEDS]
    pooled = statistics.fmean(rates)
    assert REAL_RATE / 1.5 <= pooled <= REAL_RATE * 1.5, f"{pooled:.3%} vs {REAL_RATE:.3%}"


def test_the_real_rate_is_the_default_strategys_on_the_real_candles() -> None:
    rows = load_candles()
    strategy = EmaCrossStrategy(SignalConfig())
    intents = [strategy.on_bar(int(r[0]), r[4], r[5]) for r in rows]
    buys = sum(1 for i in intents if i is not None and i.side is SignalSide.BUY)
    assert (buys, len(rows)) == (REAL_BUYS, REAL_BARS)


@pytest.mark.parametrize("seed", SEEDS)
def test_live_volume_level_matches_the_warm_up_history(seed: int) -> None:
    day = simulated_day(seed)
    history = statistics.median(float(c.volume) for c in day.history)
    live = statistics.median(b.volume for b in day.bars)
    assert 0.5 <= live / history <= 2.0, (live, history)


def test_live_bars_have_the_historys_volume_dispersion_and_volatility() -> None:
    days = [simulated_day(seed) for seed in SEEDS]
    history_volume = [math.log(c.volume) for d in days for c in d.history]
    live_volume = [math.log(b.volume) for d in days for b in d.bars]
    spread_ratio = statistics.pstdev(live_volume) / statistics.pstdev(history_volume)
    assert 0.8 <= spread_ratio <= 1.25
    assert statistics.pstdev(history_volume) > 0.5  # log-normal-ish and bursty, not constant
    history_returns = [r for d in days for r in log_returns([float(c.close) for c in d.history])]
    live_returns = [r for d in days for r in log_returns([b.close for b in d.bars])]
    volatility_ratio = statistics.pstdev(live_returns) / statistics.pstdev(history_returns)
    assert 0.8 <= volatility_ratio <= 1.25


def test_a_restart_continues_from_the_last_price_instead_of_rewinding() -> None:
    day = simulated_day(SEEDS[0])
    last = day.trades[-1]
    last_bar = day.bars[-1]
    clock = ManualClock(START_MS + DAY_MINUTES * MINUTE_MS + 2_000)
    restarted = SimExchange(day.config, clock_ms=clock)
    price = restarted.markets[SYMBOL].price
    one_bar = Decimal(repr(last_bar.high - last_bar.low))
    assert abs(price - last.price) <= one_bar
    moved = abs(last.price - day.created_price)
    assert moved > 10 * one_bar  # the day went somewhere: a rewind would be far from the last price
    assert abs(price - last.price) < moved / 10
    (first,) = restarted.step(symbols=[SYMBOL])
    assert abs(first.price - last.price) <= 2 * one_bar
    # the restarted simulator serves, for the day the first one streamed, the candles it streamed
    served = served_klines(restarted, START_MS, START_MS + DAY_MINUTES * MINUTE_MS)
    assert [c.open_ms * 1_000_000 for c in served] == [b.ts_open for b in day.bars]
    misses = [
        abs(float(c.close) - b.close) / (b.high - b.low or float(c.close) * 1e-6)
        for c, b in zip(served, day.bars, strict=True)
    ]
    assert statistics.median(misses) < 0.5  # closes within half the bar's own range, typically
    volumes = [b.volume / float(c.volume) for c, b in zip(served, day.bars, strict=True)]
    assert 0.9 <= statistics.median(volumes) <= 1.0


def test_a_fixed_seed_reproduces_a_run_exactly() -> None:
    def run(seed: int) -> tuple[list[PublicTrade], list[list[object]]]:
        clock = ManualClock(START_MS)
        exchange = SimExchange(config_for(seed), clock_ms=clock)
        trades = drive(exchange, clock, START_MS + 10 * MINUTE_MS, 500.0, 1)
        return trades, exchange.markets[SYMBOL].klines(MINUTE_MS, None, None, 1000)

    first, again, other = run(5), run(5), run(6)
    assert len(first[0]) > 1000
    assert first == again
    assert [t.price for t in first[0]] != [t.price for t in other[0]]


@pytest.mark.parametrize(("mean_gap_ms", "captured"), [(250.0, 0.98), (3000.0, 0.9)])
def test_a_minutes_trades_add_up_to_its_candle_whatever_the_tick_rate(
    mean_gap_ms: float, captured: float
) -> None:
    """The minute's volume is spread over its trades by elapsed time, and its trades stay inside
    its range: the tick rate changes how a minute is cut, not what it trades."""
    minutes = 30
    clock = ManualClock(START_MS)
    exchange = SimExchange(config_for(9), clock_ms=clock)
    end = START_MS + minutes * MINUTE_MS
    bars = bars_of(drive(exchange, clock, end, mean_gap_ms, 9), end)
    later = SimExchange(config_for(9), clock_ms=ManualClock(end))
    candles = served_klines(later, START_MS, end)  # the model's own candles for those minutes
    assert len(bars) == len(candles) == minutes
    ratio = sum(b.volume for b in bars) / sum(float(c.volume) for c in candles)
    assert captured <= ratio <= 1.0
    assert all(
        float(c.low) <= b.low <= b.high <= float(c.high) for b, c in zip(bars, candles, strict=True)
    )


def test_a_forced_price_moves_the_path_and_the_market_carries_on_from_it() -> None:
    clock = ManualClock(START_MS + 10_000)
    exchange = SimExchange(config_for(3), clock_ms=clock)
    forced = (exchange.markets[SYMBOL].price * Decimal("1.1")).quantize(Decimal("0.01"))
    (trade,) = exchange.step({SYMBOL: forced})
    assert trade.price == forced
    clock.ms += 1_000
    (after,) = exchange.step(symbols=[SYMBOL])
    assert abs(after.price / forced - 1) < Decimal("0.005")  # not back to the unforced path


def test_minutes_without_steps_are_filled_with_the_markets_own_candles() -> None:
    clock = ManualClock(START_MS + 5_000)
    exchange = SimExchange(config_for(3), clock_ms=clock)
    exchange.step(symbols=[SYMBOL])
    clock.ms += 10 * MINUTE_MS  # nobody stepped for ten minutes
    exchange.step(symbols=[SYMBOL])
    served = served_klines(exchange, START_MS, START_MS + 11 * MINUTE_MS)
    assert [c.open_ms for c in served] == [START_MS + i * MINUTE_MS for i in range(11)]
    fresh = SimExchange(config_for(3), clock_ms=ManualClock(START_MS + 10 * MINUTE_MS))
    assert served[1:10] == served_klines(fresh, START_MS + MINUTE_MS, START_MS + 10 * MINUTE_MS)
