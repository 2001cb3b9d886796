"""Strategy traces: one per closed bar the pipeline runs, linked both ways to the signal it raised,
with the intervals missing before it counted, and none when the pipeline keeps no traces."""

from __future__ import annotations

import random
from decimal import Decimal as D

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import StrategyTrace, Topic, TradingSignal
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.risk import RiskEngine, RiskLimits
from cdb_cli.engine.signals import EmaCrossStrategy, SignalConfig
from cdb_cli.engine.traces import Tracer, trace_bar_close, trace_id

SYMBOL = "BTCUSDT"
MINUTE = 60 * 1_000_000_000
FAST = SignalConfig(ema_fast=2, ema_slow=4, rsi_period=2, volume_period=3, volume_factor=0.5)
INSTRUMENT = Instrument.from_precisions(
    SYMBOL, base_asset_precision=6, quote_precision=2, min_notional=D(5)
)


def pipeline(*, traced: bool) -> tuple[TradingPipeline, MemoryRecorder]:
    recorder = MemoryRecorder()
    tracer = Tracer(recorder, run_id="r1", interval_ns=MINUTE, source="signals")
    built = TradingPipeline(
        strategies={SYMBOL: EmaCrossStrategy(FAST)},
        risk=RiskEngine(RiskLimits()),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=0), {SYMBOL: INSTRUMENT}, random.Random(1)
        ),
        portfolio=Portfolio(D(10_000)),
        clock=TestClock(),
        recorder=recorder,
        run_id="r1",
        tracer=tracer if traced else None,
    )
    return built, recorder


def zigzag(n: int) -> list[float]:
    prices, price = [], 100.0
    for i in range(n):
        price *= 1.01 if (i // 5) % 2 == 0 else 0.99
        prices.append(price)
    return prices


def run(built: TradingPipeline, closes: list[float], skip: frozenset[int] = frozenset()) -> None:
    previous = closes[0]
    for i, close in enumerate(closes):
        if i not in skip:  # a minute without a trade makes no bar
            assert isinstance(built.clock, TestClock)
            built.clock.set_time((i + 1) * MINUTE)
            built.on_bar(SYMBOL, i * MINUTE, (i + 1) * MINUTE, previous, close, 5.0 + i % 3)
        previous = close


def traces_of(recorder: MemoryRecorder) -> list[StrategyTrace]:
    return [e for t, e in recorder.events if t is Topic.STRATEGY_TRACES]  # type: ignore[misc]


def test_every_bar_has_a_trace_and_signals_link_both_ways() -> None:
    built, recorder = pipeline(traced=True)
    run(built, zigzag(60))

    traces = traces_of(recorder)
    assert [t.ts_event for t in traces] == [(i + 1) * MINUTE for i in range(60)]
    assert all(isinstance(t, StrategyTrace) for t in traces)
    signals = [e for _, e in recorder.events if isinstance(e, TradingSignal)]
    assert len(signals) >= 4  # the zigzag crosses both ways several times
    by_id = {t.event_id: t for t in traces}
    for signal in signals:
        trace = by_id[signal.trace_id]
        assert trace.signal_id == signal.event_id
        assert trace.signal == signal.side
        assert trace.ts_event == signal.ts_event
    assert sum(1 for t in traces if t.signal) == len(signals)
    assert traces[0].status == "warming_up"
    assert traces[0].bars_needed == 4
    assert traces[-1].status == "evaluated"
    assert traces[-1].conditions
    assert built.tracer is not None
    assert built.tracer.latest[SYMBOL] == traces[-1]


def test_a_gap_in_the_bars_is_counted_on_the_next_trace() -> None:
    built, recorder = pipeline(traced=True)
    run(built, zigzag(20), skip=frozenset({7, 8, 9}))

    gaps = {t.ts_event // MINUTE: t.gap_bars for t in traces_of(recorder) if t.gap_bars}
    assert gaps == {11: 3}  # the bar closing at minute 11 came after three empty minutes


def test_without_a_tracer_the_same_run_keeps_no_trace_and_the_same_signals() -> None:
    traced, with_traces = pipeline(traced=True)
    plain, without = pipeline(traced=False)
    closes = zigzag(60)
    run(traced, closes)
    run(plain, closes)

    assert traces_of(without) == []

    def signals(recorder: MemoryRecorder) -> list[tuple[int, str]]:
        return [(e.ts_event, e.side) for _, e in recorder.events if isinstance(e, TradingSignal)]

    assert signals(with_traces) == signals(without) != []


def test_trace_ids_start_with_the_run_and_fit_the_store() -> None:
    ident = trace_id("r927b004d6f78", "VERYLONGSYMBOLNAMEUSDT", 1_510_000_000 * 10**9)
    assert ident.startswith("r927b004d6f78-")
    assert len(ident) <= 64
    assert trace_id("r1", SYMBOL, MINUTE) == trace_id("r1", SYMBOL, MINUTE)


def test_the_warm_up_shows_what_the_strategy_waits_for_without_storing_a_trace() -> None:
    built, recorder = pipeline(traced=True)
    history = [((i + 1) * MINUTE, close, 5.0) for i, close in enumerate(zigzag(30))]

    assert built.warm_up(SYMBOL, history) == 30

    assert traces_of(recorder) == []  # history is not the run's: nothing stored, nothing counted
    assert built.tracer is not None
    latest = built.tracer.latest[SYMBOL]
    assert latest.ts_event == 30 * MINUTE
    assert latest.status == "evaluated"
    assert [c.name for c in latest.conditions] == ["cross_up", "rsi", "volume", "cross_down"]
    assert built.tracer.counts == {}


def test_deferred_traces_wait_for_the_flush_and_equal_the_immediate_ones() -> None:
    immediate, at_once = pipeline(traced=True)
    deferred, later = pipeline(traced=True)
    assert deferred.tracer is not None
    deferred.tracer.deferred = True
    closes = zigzag(12)

    run(immediate, closes[:6])
    run(deferred, closes[:6])  # six bars of one symbol: each explains the one before it
    assert len(traces_of(later)) == 5
    assert deferred.tracer.pending
    assert [t.ts_event for t in deferred.tracer.flush()] == [6 * MINUTE]
    assert not deferred.tracer.pending
    assert traces_of(later) == traces_of(at_once)


def test_a_trace_id_names_its_bar_close() -> None:
    close = 1_704_067_260_000_000_000
    assert trace_bar_close(trace_id("p1a2b3c4d5e6", "BTCUSDT", close)) == close
    assert trace_bar_close("sig-bar-BTCUSDT-1") is None
