"""A strategy's exceptions during a run (cdb_cli.engine.strategies.guard, in the pipeline): caught
per bar, logged with the bar, counted, the strategy disabled at the maximum; the position it
left stays marked and under risk's loss limits."""

from __future__ import annotations

import logging
import random
from decimal import Decimal as D

import pytest

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import SignalSide, StrategyTrace
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.risk import RiskEngine, RiskLimits, TradingState
from cdb_cli.engine.signals import SignalIntent, StrategyView
from cdb_cli.engine.strategies.guard import DisabledStrategy
from cdb_cli.engine.traces import Tracer

SYMBOL = "BTCUSDT"
MINUTE = 60_000_000_000
INSTRUMENT = default_instrument(SYMBOL)


class BuysThenBreaks:
    """Buys on its first bar, then raises on every bar from ``breaks_at`` on (or returns
    ``wrong`` there instead, when given)."""

    name = "breaks"
    warmup = 0

    def __init__(self, breaks_at: int = 2, wrong: object = None) -> None:
        self.bars = 0
        self.breaks_at = breaks_at
        self.wrong = wrong

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        self.bars += 1
        if self.bars == 1:
            return SignalIntent(SignalSide.BUY, 1.0, {"close": close})
        if self.bars >= self.breaks_at:
            if self.wrong is not None:
                return self.wrong  # type: ignore[return-value]
            raise ZeroDivisionError("float division by zero")
        return None

    def explain(self, close: float, volume: float) -> StrategyView:
        if self.bars >= self.breaks_at:
            raise KeyError("rsi")
        return StrategyView("evaluated", 0, (), {})


def build(
    strategy: object, *, max_errors: int = 3, limits: RiskLimits | None = None
) -> tuple[TradingPipeline, TestClock, MemoryRecorder]:
    clock = TestClock()
    recorder = MemoryRecorder()
    pipeline = TradingPipeline(
        strategies={SYMBOL: strategy},  # type: ignore[dict-item]
        risk=RiskEngine(limits or RiskLimits(circuit_breaker_pct=D(10))),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=0),
            {SYMBOL: INSTRUMENT},
            random.Random(1),
            id_prefix="p",
        ),
        portfolio=Portfolio(D(10000)),
        clock=clock,
        recorder=recorder,
        run_id="test",
        tracer=Tracer(recorder, run_id="test", interval_ns=MINUTE, source="signals"),
        max_strategy_errors=max_errors,
    )
    return pipeline, clock, recorder


def bars(pipeline: TradingPipeline, clock: TestClock, prices: list[float], start: int = 0) -> None:
    previous = prices[0]
    for i, price in enumerate(prices, start=start):
        clock.set_time((i + 1) * MINUTE)
        pipeline.on_bar(SYMBOL, i * MINUTE, (i + 1) * MINUTE, previous, price, 1.0)
        previous = price


def test_errors_are_counted_logged_with_the_bar_and_disable_the_strategy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = BuysThenBreaks()
    pipeline, clock, recorder = build(strategy, max_errors=3)
    with caplog.at_level(logging.WARNING, logger="cdb_cli.engine.strategy"):
        bars(pipeline, clock, [100.0] * 10)
    # bar 1 bought, bars 2..4 raised, then the strategy was never asked again
    assert strategy.bars == 4
    assert pipeline.snapshot_stats().strategy_errors == 3
    assert pipeline.strategy_errors.counts == {SYMBOL: 3}
    assert SYMBOL in pipeline.strategy_errors.disabled
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 3
    assert "Strategy breaks failed on the BTCUSDT bar of 1970-01-01T00:02:00+00:00" in (
        failures[0].getMessage()
    )
    assert "ZeroDivisionError: float division by zero" in failures[0].getMessage()
    assert failures[0].symbol == SYMBOL  # type: ignore[attr-defined]
    assert any("disabled after 3 errors" in r.getMessage() for r in caplog.records)
    # the traces go on: the bars that raised say why, the later ones that it is disabled
    traces = [e for _, e in recorder.events if isinstance(e, StrategyTrace)]
    assert len(traces) == 10
    assert traces[1].conditions[0].name == "error"
    assert "KeyError" in traces[1].conditions[0].text
    assert traces[-1].conditions[0].name == "disabled"
    assert traces[-1].strategy == "breaks"


def test_the_position_it_left_stays_under_the_loss_limits() -> None:
    pipeline, clock, _ = build(BuysThenBreaks(), max_errors=2)
    bars(pipeline, clock, [100.0, 100.0, 100.0])
    held = pipeline.portfolio.quantity(SYMBOL)
    assert held > 0
    assert isinstance(pipeline._symbols[SYMBOL].strategy, DisabledStrategy)
    price, i = 100.0, 3
    while pipeline.trading_state is not TradingState.HALTED and i < 200:
        price *= 0.99
        bars(pipeline, clock, [price], start=i)
        i += 1
    assert pipeline.trading_state is TradingState.HALTED
    assert pipeline.marks()[SYMBOL] == D(repr(price))  # still marked at every bar
    # an operator's flatten still sells what the disabled strategy bought
    pipeline.flatten(clock.timestamp_ns(), "operator")
    bars(pipeline, clock, [price], start=i)
    assert pipeline.portfolio.quantity(SYMBOL) == 0


@pytest.mark.parametrize(
    "wrong",
    ["buy", SignalIntent("buy", 0.5, {}), SignalIntent(SignalSide.BUY, 2.0, {})],  # type: ignore[arg-type]
)
def test_a_wrong_return_value_counts_as_an_error(wrong: object) -> None:
    strategy = BuysThenBreaks(wrong=wrong)
    pipeline, clock, _ = build(strategy, max_errors=5)
    bars(pipeline, clock, [100.0] * 4)
    assert pipeline.snapshot_stats().strategy_errors == 3
    assert pipeline.snapshot_stats().signals == {"buy": 1}


def test_warm_up_errors_are_counted_too() -> None:
    strategy = BuysThenBreaks()
    pipeline, _, _ = build(strategy, max_errors=10)
    assert pipeline.warm_up(SYMBOL, [(i * MINUTE, 100.0, 1.0) for i in range(5)]) == 5
    assert pipeline.strategy_errors.counts == {SYMBOL: 4}
