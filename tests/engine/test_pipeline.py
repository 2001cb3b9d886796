"""The trading pipeline: signal → risk → paper fill → portfolio, with the ledger's invariants
checked after every fill on random markets (hypothesis), and the loss limits on exact paths."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    Event,
    OrderApproved,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
    TradingSignal,
)
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import NS_PER_DAY, Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.records import FillRecord
from cdb_cli.engine.risk import RiskEngine, RiskLimits, TradingState
from cdb_cli.engine.signals import EmaCrossStrategy, SignalConfig, SignalIntent, Strategy

SYMBOL = "BTCUSDT"
MINUTE = 60 * 1_000_000_000
SECOND_NS = 1_000_000_000
FAST = SignalConfig(ema_fast=2, ema_slow=4, rsi_period=2, volume_period=3, volume_factor=0.5)
INSTRUMENT = Instrument.from_precisions(
    SYMBOL, base_asset_precision=6, quote_precision=2, min_notional=D(5)
)


@dataclass
class CheckingRecorder(MemoryRecorder):
    """A recorder that checks the ledger's invariants every time a fill is booked."""

    pipeline: TradingPipeline | None = None
    checked: int = 0
    decisions: dict[str, RiskDecision] = field(default_factory=dict)

    def event(self, topic: Topic, event: Event) -> None:
        super().event(topic, event)
        if isinstance(event, RiskDecision):
            self.decisions[event.event_id] = event

    def fill(self, fill: FillRecord) -> None:
        super().fill(fill)
        assert self.pipeline is not None
        portfolio = self.pipeline.portfolio
        # cash + Σ position value = equity, exactly
        values = sum((portfolio.position_value(s) for s in portfolio.positions), D(0))
        assert portfolio.cash + values == portfolio.equity()
        assert portfolio.cash >= 0
        # Σ fills = position
        net = sum((f.quantity if f.side is Side.BUY else -f.quantity for f in self.fills), D(0))
        assert net == portfolio.quantity(SYMBOL) >= 0
        # no fill without an order, no order without an approved decision
        order = self.orders[fill.client_order_id]
        decision = self.decisions[order.decision_id]
        assert decision.verdict in {"approved", "reduced"}
        self.checked += 1


def build(
    *,
    limits: RiskLimits | None = None,
    execution: PaperExecutionConfig | None = None,
    spread: str = "0.05",
    seed: int = 1,
    recorder: MemoryRecorder | None = None,
    cash: str = "10000",
    signal: SignalConfig = FAST,
    strategy: Strategy | None = None,
) -> tuple[TradingPipeline, TestClock, MemoryRecorder]:
    clock = TestClock()
    chosen = recorder if recorder is not None else MemoryRecorder()
    pipeline = TradingPipeline(
        strategies={SYMBOL: strategy or EmaCrossStrategy(signal)},
        risk=RiskEngine(limits or RiskLimits()),
        execution=SimulatedExecution(
            execution or PaperExecutionConfig(latency_ms=0),
            {SYMBOL: INSTRUMENT},
            random.Random(seed),
            id_prefix="p",
        ),
        portfolio=Portfolio(D(cash)),
        clock=clock,
        recorder=chosen,
        assumed_spread_pct=D(spread),
        run_id="test",
        record_curve=True,
    )
    return pipeline, clock, chosen


def feed(
    pipeline: TradingPipeline, clock: TestClock, closes: list[float], volumes: list[float]
) -> None:
    previous = closes[0]
    for i, (close, volume) in enumerate(zip(closes, volumes, strict=True)):
        clock.set_time((i + 1) * MINUTE)
        pipeline.on_bar(SYMBOL, i * MINUTE, (i + 1) * MINUTE, previous, close, volume)
        previous = close
    pipeline.finish()


def zigzag(n: int = 400) -> Iterator[float]:
    price = 100.0
    for i in range(n):
        price *= 1.01 if (i // 7) % 2 == 0 else 0.992
        yield price


# --- the invariants on random markets ------------------------------------------------------------

returns = st.lists(st.floats(min_value=-0.03, max_value=0.03), min_size=30, max_size=160)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    moves=returns,
    volumes=st.lists(st.floats(min_value=0.1, max_value=50.0), min_size=160, max_size=160),
    partial=st.sampled_from(["0", "5", "50"]),
    exposure=st.sampled_from(["30", "60", "100"]),
    seed=st.integers(min_value=0, max_value=3),
)
def test_ledger_invariants_hold_after_every_fill(
    moves: list[float], volumes: list[float], partial: str, exposure: str, seed: int
) -> None:
    recorder = CheckingRecorder()
    pipeline, clock, _ = build(
        limits=RiskLimits(max_exposure_pct=D(exposure), circuit_breaker_pct=D(100)),
        execution=PaperExecutionConfig(latency_ms=0, partial_fill_pct=D(partial)),
        seed=seed,
        recorder=recorder,
    )
    recorder.pipeline = pipeline
    closes, price = [], 100.0
    for move in moves:
        price *= 1 + move
        closes.append(price)
    feed(pipeline, clock, closes, volumes[: len(closes)])
    stats = pipeline.snapshot_stats()
    assert recorder.checked == stats.fills == len(recorder.fills)
    signals = [e for t, e in recorder.events if isinstance(e, TradingSignal)]
    assert len(signals) == sum(stats.signals.values()) == len(recorder.decisions)


def test_a_zigzag_market_trades_round_trips() -> None:
    recorder = CheckingRecorder()
    pipeline, clock, _ = build(recorder=recorder, limits=RiskLimits(circuit_breaker_pct=D(50)))
    recorder.pipeline = pipeline
    closes = list(zigzag())
    feed(pipeline, clock, closes, [1.0] * len(closes))
    stats = pipeline.snapshot_stats()
    assert stats.signals["buy"] > 5
    assert stats.signals["exit"] > 5
    assert stats.fills >= 10
    assert recorder.checked == stats.fills
    sides = [f.side for f in recorder.fills]
    assert sides[0] is Side.BUY
    assert all(a is not b for a, b in itertools.pairwise(sides))  # buy, sell, buy, ...
    # Every buy is sized by the risk engine: at most the exposure cap of the equity it saw.
    for topic, event in recorder.events:
        if isinstance(event, RiskDecision) and event.side == "buy" and event.verdict != "rejected":
            assert event.final_quote <= D(event.state["equity"]) * D("0.3")
            assert topic is Topic.RISK_EVENTS


def test_wide_spread_blocks_every_entry_and_no_order_is_placed() -> None:
    # The seed's failure: 0.12 % spread against a 0.1 % limit.
    pipeline, clock, recorder = build(spread="0.12")
    closes = list(zigzag())
    feed(pipeline, clock, closes, [1.0] * len(closes))
    stats = pipeline.snapshot_stats()
    assert stats.signals["buy"] > 0
    assert stats.orders == stats.fills == 0
    # every buy refused by the spread; the exits had nothing to sell
    assert stats.failed_rules == {"spread": stats.signals["buy"]}
    assert stats.verdicts == {
        "rejected": stats.signals["buy"],
        "nothing_held": stats.signals["exit"],
    }
    assert recorder.orders == {}


def test_exit_without_a_position_is_nothing_held_and_places_no_order() -> None:
    # A volume factor of 5 over a 3-bar mean that includes the bar itself can never confirm a
    # buy: only exits fire.
    pipeline, clock, recorder = build(signal=FAST.model_copy(update={"volume_factor": 5.0}))
    closes = [100.0 - i for i in range(10)] + [90.0 + 2 * i for i in range(10)]
    closes += [110.0 - 3 * i for i in range(10)]
    feed(pipeline, clock, closes, [1.0] * len(closes))
    stats = pipeline.snapshot_stats()
    assert stats.signals["buy"] == 0
    assert stats.signals["exit"] >= 1
    assert stats.verdicts == {"nothing_held": stats.signals["exit"]}  # not rejections
    assert stats.failed_rules == {}  # no rule failed
    assert stats.orders == 0
    assert recorder.orders == {}
    assert not [e for _, e in recorder.events if isinstance(e, OrderApproved)]


class BuyOnce:
    """A test strategy: one buy on its first bar, never an exit (so a crash hits the limits)."""

    name = "buy_once"

    def __init__(self) -> None:
        self.done = False

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        if self.done:
            return None
        self.done = True
        return SignalIntent(SignalSide.BUY, 1.0, {"close": close})


def crash(
    pipeline: TradingPipeline, clock: TestClock, start: int, price: float, until: TradingState
) -> tuple[int, float, int | None]:
    """Lower the price 1 % a bar until the state is ``until``; return (bar, price, expected ts).

    The expected ts is computed independently from the float ledger: the first bar whose equity
    is beyond the limit that ``until`` stands for.
    """
    limits = pipeline.risk.limits
    held = float(pipeline.portfolio.quantity(SYMBOL))
    cash = float(pipeline.portfolio.cash)
    peak = max(e for _, e in pipeline.equity_curve)
    day_start = float(pipeline.portfolio.day_start_equity)
    expected = None
    i = start
    while pipeline.trading_state is not until and i < start + 400:
        price *= 0.99
        clock.set_time((i + 1) * MINUTE)
        pipeline.on_bar(SYMBOL, i * MINUTE, (i + 1) * MINUTE, price, price, 1.0)
        equity = cash + held * price
        if until is TradingState.HALTED:
            beyond = (peak - equity) / peak * 100 > float(limits.circuit_breaker_pct)
        else:
            beyond = (day_start - equity) / day_start * 100 > float(limits.daily_drawdown_pct)
        if expected is None and beyond:
            expected = (i + 1) * MINUTE
        i += 1
    return i, price, expected


def test_circuit_breaker_trips_at_the_first_bar_beyond_the_limit_and_sticks() -> None:
    limits = RiskLimits(circuit_breaker_pct=D(10), daily_drawdown_pct=D(50))
    pipeline, clock, _ = build(limits=limits, strategy=BuyOnce())
    feed(pipeline, clock, [100.0, 100.0, 100.0], [1.0] * 3)
    assert pipeline.portfolio.quantity(SYMBOL) > 0
    i, price, expected = crash(pipeline, clock, 3, 100.0, TradingState.HALTED)
    assert pipeline.trading_state is TradingState.HALTED
    assert expected is not None
    ((ts, state, reason),) = pipeline.snapshot_stats().state_changes
    assert (ts, state) == (expected, "halted")
    assert "above 10 % (circuit breaker)" in reason
    # a recovery does not un-halt: only an audited reset does
    for j in range(i, i + 20):
        price *= 1.02
        clock.set_time((j + 1) * MINUTE)
        pipeline.on_bar(SYMBOL, j * MINUTE, (j + 1) * MINUTE, price, price, 1.0)
    assert pipeline.trading_state is TradingState.HALTED
    pipeline.reset_breaker(clock.timestamp_ns())
    assert pipeline.trading_state is TradingState.ACTIVE
    assert pipeline.portfolio.peak_equity == pipeline.portfolio.equity()


def test_daily_drawdown_reduces_until_the_next_utc_day() -> None:
    limits = RiskLimits(daily_drawdown_pct=D(2), circuit_breaker_pct=D(50))
    pipeline, clock, _ = build(limits=limits, strategy=BuyOnce())
    feed(pipeline, clock, [100.0, 100.0, 100.0], [1.0] * 3)
    _, price, expected = crash(pipeline, clock, 3, 100.0, TradingState.REDUCING)
    assert pipeline.trading_state is TradingState.REDUCING
    ((ts, state, reason),) = pipeline.snapshot_stats().state_changes
    assert (ts, state) == (expected, "reducing")
    assert "only exits today" in reason
    next_day = (clock.timestamp_ns() // NS_PER_DAY + 1) * NS_PER_DAY
    clock.set_time(next_day)
    pipeline.on_bar(SYMBOL, next_day - MINUTE, next_day, price, price, 1.0)
    assert pipeline.trading_state is TradingState.ACTIVE
    assert pipeline.portfolio.day_start_equity == pipeline.portfolio.equity()


def test_trades_fill_working_orders_after_the_latency() -> None:
    pipeline, clock, recorder = build(
        execution=PaperExecutionConfig(latency_ms=500), strategy=BuyOnce()
    )
    clock.set_time(MINUTE)
    pipeline.on_bar_close(SYMBOL, MINUTE, 100.0, 1.0)  # the buy is decided at this close
    (order,) = recorder.orders.values()
    assert order.status == "NEW"
    pipeline.on_trade(SYMBOL, MINUTE + 1, 100.5, 0.5)  # inside the latency: no fill
    assert recorder.fills == []
    pipeline.on_trade(SYMBOL, MINUTE + 500_000_000, 101.0, 0.5)
    (fill,) = recorder.fills
    assert fill.ts_event == MINUTE + 500_000_000
    assert D("101") < fill.price <= D("101") * D("1.005") + D("0.01")
    assert recorder.orders[order.client_order_id].status == "FILLED"
    assert pipeline.marks()[SYMBOL] == D("101.0")


def test_bar_replay_fills_at_the_next_open_once_the_latency_has_passed() -> None:
    pipeline, clock, recorder = build(
        execution=PaperExecutionConfig(latency_ms=500), strategy=BuyOnce()
    )
    feed(pipeline, clock, [100.0, 104.0, 108.0], [1.0] * 3)  # decided at the first close
    (fill,) = recorder.fills
    assert fill.ts_event == MINUTE + 500_000_000  # the next bar's open, after the latency
    assert D("100") * D("1.001") <= fill.price <= D("100") * D("1.005") + D("0.01")  # its open


# --- regressions found in review ------------------------------------------------------------------


def test_a_restored_position_is_valued_before_its_first_price() -> None:
    day = 20_000 * NS_PER_DAY
    held = FillRecord(
        fill_id="f1",
        client_order_id="p1",
        symbol="AAAUSDT",
        side=Side.BUY,
        quantity=D(80),
        price=D(100),
        fee_asset="USDT",
        ts_event=day,
        liquidity="taker",
    )
    portfolio = Portfolio.restore(D(10_000), [], None, [held], marks={"AAAUSDT": D(100)})
    symbols = ("AAAUSDT", "BBBUSDT")
    pipeline = TradingPipeline(
        strategies={s: BuyOnce() for s in symbols},
        risk=RiskEngine(RiskLimits()),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=0),
            {
                s: Instrument.from_precisions(s, base_asset_precision=6, quote_precision=2)
                for s in symbols
            },
            random.Random(1),
            id_prefix="p",
        ),
        portfolio=portfolio,
        clock=TestClock(),
        recorder=MemoryRecorder(),
        run_id="t",
    )
    t = day + 3600 * SECOND_NS
    pipeline.on_trade("BBBUSDT", t, 50.0, 1.0)  # another symbol's price comes first
    assert pipeline.snapshot_stats().max_drawdown == 0.0
    for i, price in enumerate((100, 95, 90, 85, 80)):  # then AAA falls 20 %: equity -16 %
        pipeline.on_trade("AAAUSDT", t + 1 + i, float(price), 1.0)
    assert pipeline.trading_state is TradingState.HALTED
