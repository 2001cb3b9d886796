"""The decision path on real objects: the risk inputs it builds (quote or assumed spread, working
buys, the trading state brought up first), and an intent decided, sent and recorded in order."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.decisions import Decisions
from cdb_cli.engine.events import (
    ExecutionReport,
    OrderApproved,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
    TradingSignal,
)
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.pipeline import SymbolState, TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.risk import RiskEngine, RiskLimits, TradingState
from cdb_cli.engine.signals import SignalIntent

BTC = "BTCUSDT"
MINUTE = 60 * 1_000_000_000
BUY = SignalIntent(SignalSide.BUY, 1.0, {"close": 100.0})


class Quiet:
    """A strategy that never signals: the tests hand the intents over themselves."""

    name = "quiet"

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        return None


def build(
    portfolio: Portfolio | None = None, latency_ms: int = 0
) -> tuple[Decisions, SymbolState, TradingPipeline, MemoryRecorder]:
    """Decisions for one symbol over a pipeline's venue, risk, ledger and recorder."""
    recorder = MemoryRecorder()
    clock = TestClock()
    clock.set_time(MINUTE)
    pipeline = TradingPipeline(
        strategies={},
        risk=RiskEngine(RiskLimits(max_exposure_pct=D(80))),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=latency_ms),
            {
                BTC: Instrument.from_precisions(
                    BTC, base_asset_precision=6, quote_precision=2, min_notional=D(5)
                )
            },
            random.Random(1),
            id_prefix="p",
        ),
        portfolio=portfolio or Portfolio(D(10_000)),
        clock=clock,
        recorder=recorder,
        run_id="t",
    )
    state = SymbolState(BTC, Quiet())
    state.mark, state.last_ts = 100.0, MINUTE - 5

    def sync(*, held_only: bool = False) -> None:
        pipeline.portfolio.mark_all({BTC: D(repr(state.mark))}, update_peak=False)

    decisions = Decisions(
        pipeline, symbols={BTC: state}, sync=sync, assumed_spread_pct=D("0.05"), run_id="t"
    )
    return decisions, state, pipeline, recorder


def test_inputs_take_the_latest_quote_or_widen_the_price_by_the_assumed_spread() -> None:
    decisions, state, _, _ = build()
    inputs = decisions.inputs(state, D(100), MINUTE)
    assert (inputs.bid, inputs.ask) == (D("99.975"), D("100.025"))  # 0.05 % around the price
    assert inputs.last_price_age_ns == 5
    assert (inputs.equity, inputs.exposure_quote) == (D(10_000), D(0))
    state.bid, state.ask = D("99.95"), D("100.02")
    inputs = decisions.symbol_inputs(BTC, D(100), MINUTE)
    assert (inputs.bid, inputs.ask) == (D("99.95"), D("100.02"))


def test_working_buys_count_as_exposure() -> None:
    decisions, state, pipeline, _ = build(latency_ms=10_000)
    decisions.on_signal(state, BUY, MINUTE)
    (working,) = pipeline.execution.working_orders()
    state.working = True  # what the pipeline notes after the venue's answer
    inputs = decisions.inputs(state, D(100), MINUTE)
    assert inputs.exposure_quote == pipeline.execution.pending_buy_quote(BTC) > 0
    assert working.side is Side.BUY


def test_a_decision_beyond_a_limit_moves_the_trading_state_first() -> None:
    portfolio = Portfolio(D(10_000))
    portfolio.peak_equity = D(20_000)  # a restored ledger: half of its peak is gone
    decisions, state, pipeline, _ = build(portfolio)
    inputs = decisions.inputs(state, D(100), MINUTE)
    assert inputs.trading_state is TradingState.HALTED
    assert pipeline.trading_state is TradingState.HALTED
    ((ts, new, why),) = pipeline.stats.state_changes
    assert (ts, new) == (MINUTE, "halted")
    assert "(circuit breaker)" in why


def test_an_approved_intent_is_sent_then_recorded_in_its_logical_order() -> None:
    decisions, state, pipeline, recorder = build()
    signal_id = decisions.on_signal(state, BUY, MINUTE)
    kinds = [(topic, type(event)) for topic, event in recorder.events]
    assert kinds == [
        (Topic.TRADING_SIGNALS, TradingSignal),
        (Topic.RISK_EVENTS, RiskDecision),
        (Topic.RISK_APPROVED_TRADES, OrderApproved),
        (Topic.EXECUTION_EVENTS, ExecutionReport),
    ]
    signal, decision, approval = (event for _, event in recorder.events[:3])
    assert (signal.event_id, decision.event_id, approval.event_id) == ("t-1", "t-2", "t-3")
    assert signal_id == signal.event_id == decision.signal_id
    assert approval.decision_id == decision.event_id
    assert (signal.strategy, decision.verdict, approval.side) == ("quiet", "approved", Side.BUY)
    (order,) = recorder.orders.values()
    assert order.decision_id == decision.event_id
    assert pipeline.stats.signals == {"buy": 1}
    assert pipeline.stats.verdicts == {"approved": 1}
    assert decisions.next_id() == "t-4"  # one count for the whole run


def test_a_rejected_intent_places_nothing_and_counts_the_rules_that_refused_it() -> None:
    decisions, state, pipeline, recorder = build()
    state.bid, state.ask = D(90), D(110)  # a 20 % spread
    decisions.on_signal(state, BUY, MINUTE)
    (decision,) = [e for _, e in recorder.events if isinstance(e, RiskDecision)]
    assert decision.verdict == "rejected"
    assert not [e for _, e in recorder.events if isinstance(e, OrderApproved)]
    assert recorder.orders == {}
    assert pipeline.stats.failed_rules == {"spread": 1}
    assert pipeline.stats.verdicts == {"rejected": 1}


def test_the_assumed_spread_must_be_positive() -> None:
    _, _, pipeline, _ = build()
    with pytest.raises(ValueError, match="assumed_spread_pct must be above 0"):
        Decisions(pipeline, symbols={}, sync=pipeline.finish, assumed_spread_pct=D(0), run_id="x")
