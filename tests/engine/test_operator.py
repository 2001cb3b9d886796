"""The operator's actions on a real pipeline: ``halt`` stops entries at once, ``flatten`` sells
every position through the normal execution path and records why."""

from __future__ import annotations

import random
from decimal import Decimal as D

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    OrderApproved,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
    TradingSignal,
)
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.operator import OPERATOR, Operator
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.risk import RiskEngine, RiskLimits, TradingState
from cdb_cli.engine.signals import SignalIntent

BTC, ETH = "BTCUSDT", "ETHUSDT"
MINUTE = 60 * 1_000_000_000
INSTRUMENTS = {
    s: Instrument.from_precisions(s, base_asset_precision=6, quote_precision=2, min_notional=D(5))
    for s in (BTC, ETH)
}


class BuyWhenAsked:
    """Buys on every bar while ``buy`` is set; never exits on its own."""

    name = "buy_when_asked"

    def __init__(self) -> None:
        self.buy = True

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        return SignalIntent(SignalSide.BUY, 1.0, {"close": close}) if self.buy else None


def build(
    latency_ms: int = 0, strategies: dict[str, BuyWhenAsked] | None = None
) -> tuple[TradingPipeline, TestClock, MemoryRecorder]:
    clock = TestClock()
    recorder = MemoryRecorder()
    pipeline = TradingPipeline(
        strategies=strategies or {BTC: BuyWhenAsked(), ETH: BuyWhenAsked()},
        risk=RiskEngine(RiskLimits(max_exposure_pct=D(80))),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=latency_ms),
            INSTRUMENTS,
            random.Random(1),
            id_prefix="p",
        ),
        portfolio=Portfolio(D(10_000)),
        clock=clock,
        recorder=recorder,
        run_id="halt",
    )
    return pipeline, clock, recorder


def bar(
    pipeline: TradingPipeline, clock: TestClock, symbol: str, minute: int, price: float
) -> None:
    clock.set_time((minute + 1) * MINUTE)
    pipeline.on_bar(symbol, minute * MINUTE, (minute + 1) * MINUTE, price, price, 1.0)


def of(recorder: MemoryRecorder, kind: type) -> list:  # type: ignore[type-arg]
    return [event for _, event in recorder.events if isinstance(event, kind)]


def test_halt_stops_new_entries_at_once_and_names_the_reason() -> None:
    pipeline, clock, recorder = build()
    operator = Operator(pipeline)
    bar(pipeline, clock, BTC, 0, 100.0)  # decided at the close, filled at the next open
    bar(pipeline, clock, BTC, 1, 100.0)
    assert pipeline.portfolio.quantity(BTC) > 0
    approved_before = len(of(recorder, OrderApproved))

    operator.halt(clock.timestamp_ns(), "halted by the operator: exchange incident")
    assert pipeline.trading_state is TradingState.HALTED
    assert pipeline.stats.state_changes[-1] == (
        clock.timestamp_ns(),
        "halted",
        "halted by the operator: exchange incident",
    )
    for minute in range(2, 10):
        bar(pipeline, clock, BTC, minute, 100.0 + minute)
        bar(pipeline, clock, ETH, minute, 50.0)
    assert len(of(recorder, OrderApproved)) == approved_before
    rejected = [d for d in of(recorder, RiskDecision) if d.ts_event > 2 * MINUTE]
    assert rejected
    assert {d.verdict for d in rejected} == {"rejected"}
    assert all(
        any(c.code == "circuit_breaker" and not c.passed for c in d.checks) for d in rejected
    )
    assert pipeline.portfolio.quantity(ETH) == 0

    operator.halt(clock.timestamp_ns(), "again")  # already halted: no second state change
    assert len(pipeline.stats.state_changes) == 1
    pipeline.reset_breaker(clock.timestamp_ns())
    assert pipeline.trading_state is TradingState.ACTIVE


def test_flatten_sells_every_position_and_records_why() -> None:
    strategies = {BTC: BuyWhenAsked(), ETH: BuyWhenAsked()}
    pipeline, clock, recorder = build(strategies=strategies)
    operator = Operator(pipeline)
    bar(pipeline, clock, BTC, 0, 100.0)
    bar(pipeline, clock, ETH, 0, 50.0)
    bar(pipeline, clock, BTC, 1, 100.0)
    bar(pipeline, clock, ETH, 1, 50.0)
    held = {s: pipeline.portfolio.quantity(s) for s in (BTC, ETH)}
    assert all(q > 0 for q in held.values())
    for strategy in strategies.values():  # the strategies stop asking
        strategy.buy = False
    now = clock.timestamp_ns()
    operator.halt(now, "operator halt")
    placed = operator.flatten(now, "risk review")
    assert set(placed) == {BTC, ETH}
    assert {o.status for o in placed.values()} == {"NEW"}
    assert {o.side for o in placed.values()} == {Side.SELL}
    assert {o.quantity for o in placed.values()} == set(held.values())
    # a second call while the exits are working places nothing
    assert operator.flatten(now, "risk review") == {}

    # the exits fill at the next price, like any exit
    bar(pipeline, clock, BTC, 2, 101.0)
    bar(pipeline, clock, ETH, 2, 49.0)
    assert pipeline.portfolio.quantity(BTC) == pipeline.portfolio.quantity(ETH) == 0
    sells = [f for f in recorder.fills if f.side is Side.SELL]
    assert {f.symbol: f.quantity for f in sells} == held
    assert pipeline.trading_state is TradingState.HALTED
    assert operator.flatten(clock.timestamp_ns(), "risk review") == {}  # flat: nothing to do

    # the paper trail: operator signal → decision (approved, the reason in its trace) → approval
    for symbol, order in placed.items():
        decision = next(d for d in of(recorder, RiskDecision) if d.event_id == order.decision_id)
        assert (decision.verdict, decision.side, decision.source) == (
            "approved",
            SignalSide.EXIT,
            OPERATOR,
        )
        (operator,) = decision.checks  # the rules did not decide it: only the operator did
        assert (operator.rule, operator.code, operator.passed) == (
            "operator",
            "operator_flatten",
            True,
        )
        assert operator.detail == "flatten by the operator (halted): risk review"
        assert decision.state["trading_state"] == "halted"
        assert D(decision.final_quote) > 0
        signal = next(s for s in of(recorder, TradingSignal) if s.event_id == decision.signal_id)
        assert (signal.strategy, signal.symbol) == ("operator", symbol)
        approval = next(
            a for a in of(recorder, OrderApproved) if a.decision_id == order.decision_id
        )
        assert approval.side is Side.SELL
        assert recorder.orders[order.client_order_id].status == "FILLED"
    topics = [topic for topic, _ in recorder.events]
    assert Topic.RISK_APPROVED_TRADES in topics


def test_flatten_cancels_the_working_buy_of_a_held_symbol_and_skips_what_it_is_told() -> None:
    pipeline, clock, recorder = build(latency_ms=10_000)
    operator = Operator(pipeline)
    bar(pipeline, clock, BTC, 0, 100.0)  # a buy, working for 10 s
    bar(pipeline, clock, BTC, 1, 100.0)  # it fills at this open; this close buys again
    assert pipeline.portfolio.quantity(BTC) > 0
    (working,) = pipeline.execution.working_orders()
    assert working.side is Side.BUY
    assert operator.flatten(clock.timestamp_ns(), "x", skip={BTC}) == {}
    placed = operator.flatten(clock.timestamp_ns(), "x")
    assert list(placed) == [BTC]
    assert recorder.orders[working.client_order_id].status == "CANCELED"
    assert [o.side for o in pipeline.execution.working_orders()] == [Side.SELL]


def test_flatten_works_while_active_and_leaves_the_state_alone() -> None:
    pipeline, clock, _ = build()
    operator = Operator(pipeline)
    bar(pipeline, clock, BTC, 0, 100.0)
    bar(pipeline, clock, BTC, 1, 100.0)
    placed = operator.flatten(clock.timestamp_ns(), "manual exit")
    assert list(placed) == [BTC]
    assert pipeline.trading_state is TradingState.ACTIVE


def test_the_pipelines_halt_and_flatten_are_its_operators() -> None:
    pipeline, clock, recorder = build()
    bar(pipeline, clock, BTC, 0, 100.0)
    bar(pipeline, clock, BTC, 1, 100.0)
    now = clock.timestamp_ns()
    pipeline.halt(now, "kill switch")
    assert pipeline.stats.state_changes == [(now, "halted", "kill switch")]
    (order,) = pipeline.flatten(now, "close out").values()
    assert (order.symbol, order.side) == (BTC, Side.SELL)
    decision = next(d for d in of(recorder, RiskDecision) if d.event_id == order.decision_id)
    assert decision.checks[0].detail == "flatten by the operator (halted): close out"
