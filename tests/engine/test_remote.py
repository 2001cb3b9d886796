"""The engine's side of component mode: the risk process's venue (``RemoteExecution``) mirrors the
execution process's simulated venue from its reports; the strategy stand-in; progress reports."""

from __future__ import annotations

import random
from decimal import Decimal

from cdb_cli.engine.events import HealthReport, OrderApproved, Side, SignalSide
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.remote import (
    ApprovalIdExecution,
    RemoteExecution,
    RemoteStrategy,
    progress_report,
    read_progress,
    report_fill,
)
from cdb_cli.engine.signals import SignalIntent

SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
INSTRUMENTS = {SYMBOL: default_instrument(SYMBOL, taker_fee=Decimal("0.0005"))}


def approval(n: int, side: Side, ts: int, quote: str = "500") -> OrderApproved:
    return OrderApproved(
        event_id=f"prisk-{n}",
        symbol=SYMBOL,
        ts_event=ts,
        source="risk",
        decision_id=f"prisk-d{n}",
        side=side,
        quote_amount=Decimal(quote),
        reference_price=Decimal(100),
    )


def venue(latency_ms: int = 100) -> ApprovalIdExecution:
    config = PaperExecutionConfig(latency_ms=latency_ms)
    return ApprovalIdExecution(config, INSTRUMENTS, random.Random(1), id_prefix="pexec")


def test_progress_reports_round_trip_and_other_reports_are_not_progress() -> None:
    report = progress_report("signals", symbol=SYMBOL, bar_id="bar-BTCUSDT-1", ts=T0, count=1)
    assert read_progress(report) == ("signals", "bar-BTCUSDT-1", 1)
    assert report.event_id == "signals-bar-BTCUSDT-1"
    other = HealthReport(symbol="*", ts_event=T0, source="x", component="x", status="ok")
    assert read_progress(other) is None


def test_remote_strategy_hands_over_the_expected_intent_once() -> None:
    strategy = RemoteStrategy()
    intent = SignalIntent(SignalSide.BUY, 0.5, {"rsi": 60.0})
    assert strategy.on_bar(T0, 100.0, 1.0) is None
    strategy.expect(intent, "ema_cross_fast")
    assert strategy.name == "ema_cross_fast"
    assert strategy.on_bar(T0, 100.0, 1.0) is intent
    assert strategy.on_bar(T0, 100.0, 1.0) is None


def test_the_execution_venue_names_orders_by_their_approval() -> None:
    result = venue().submit(approval(1, Side.BUY, T0), ts_ns=T0, position=Decimal(0))
    assert [o.client_order_id for o in result.orders] == ["prisk-1"]
    assert result.reports[0].client_order_id == "prisk-1"


def test_remote_execution_mirrors_the_venue_from_its_reports() -> None:
    """A buy, its fill, then an exit: the mirror's working orders, pending quote and fills follow
    the venue's reports, booked at the trade they filled at."""
    real, mirror = venue(), RemoteExecution(INSTRUMENTS, latency_ms=100)
    buy = approval(1, Side.BUY, T0)
    placed = mirror.submit(buy, ts_ns=T0, position=Decimal(0))
    assert [o.status for o in placed.orders] == ["NEW"]
    assert mirror.has_working(SYMBOL)
    assert mirror.pending_buy_quote(SYMBOL) == Decimal(500)
    for report in real.submit(buy, ts_ns=T0, position=Decimal(0)).reports:
        mirror.deliver(report)
    # Before the latency has passed nothing can fill: nothing to wait for.
    assert mirror.settled(SYMBOL, T0 + 50 * MS)
    # At a trade after it, the mirror must wait for the venue's word on that trade.
    trade = T0 + 150 * MS
    assert not mirror.settled(SYMBOL, trade)
    filled = real.on_price(SYMBOL, trade, Decimal(100), cash=Decimal(10_000), position=Decimal(0))
    assert filled.fills
    for report in filled.reports:
        mirror.deliver(report)
    assert mirror.settled(SYMBOL, trade)
    assert not mirror.book(SYMBOL, trade - 1).fills  # not before the trade it filled at
    booked = mirror.on_price(SYMBOL, trade, Decimal(100), cash=Decimal(0), position=Decimal(0))
    assert [(f.quantity, f.price, f.fee) for f in booked.fills] == [
        (f.quantity, f.price, f.fee) for f in filled.fills
    ]
    assert [o.status for o in booked.orders] == ["FILLED"]
    assert not mirror.has_working(SYMBOL)
    assert mirror.pending_buy_quote(SYMBOL) == 0
    held = booked.fills[0].quantity
    exit_ = approval(2, Side.SELL, trade + MS)
    assert [o.quantity for o in mirror.submit(exit_, ts_ns=trade + MS, position=held).orders] == [
        held
    ]
    assert mirror.has_working(SYMBOL)


def test_an_exit_ends_working_buys_and_nothing_to_sell_is_rejected_at_once() -> None:
    mirror = RemoteExecution(INSTRUMENTS, latency_ms=100)
    mirror.submit(approval(1, Side.BUY, T0), ts_ns=T0, position=Decimal(0))
    result = mirror.submit(approval(2, Side.SELL, T0 + MS), ts_ns=T0 + MS, position=Decimal(0))
    assert [(o.client_order_id, o.status) for o in result.orders] == [
        ("prisk-1", "CANCELED"),
        ("prisk-2", "REJECTED"),
    ]
    assert not mirror.has_working(SYMBOL)
    # the same on the real venue
    real = SimulatedExecution(
        PaperExecutionConfig(), INSTRUMENTS, random.Random(1), id_prefix="pexec"
    )
    real.submit(approval(1, Side.BUY, T0), ts_ns=T0, position=Decimal(0))
    statuses = real.submit(approval(2, Side.SELL, T0 + MS), ts_ns=T0 + MS, position=Decimal(0))
    assert [o.status for o in statuses.orders] == ["CANCELED", "REJECTED"]


def test_a_restored_order_keeps_what_its_fills_did_not_spend() -> None:
    real, mirror = venue(), RemoteExecution(INSTRUMENTS, latency_ms=100)
    buy = approval(1, Side.BUY, T0)
    order = real.submit(buy, ts_ns=T0, position=Decimal(0)).orders[0]
    mirror.restore(order, [])
    assert mirror.pending_buy_quote(SYMBOL) == Decimal(500)
    assert mirror.working_orders() == [order]


def test_report_fill_rebuilds_the_fill_a_report_carries() -> None:
    real = venue(latency_ms=0)
    real.submit(approval(1, Side.BUY, T0), ts_ns=T0, position=Decimal(0))
    filled = real.on_price(SYMBOL, T0, Decimal(100), cash=Decimal(10_000), position=Decimal(0))
    [report] = [r for r in filled.reports if r.last_quantity > 0]
    fill, original = report_fill(report), filled.fills[0]
    assert fill.model_dump(exclude={"liquidity"}) == original.model_dump(exclude={"liquidity"})
    assert fill.fill_id == original.fill_id  # the report names its fill: one fill on every side


def test_a_report_delivered_again_after_a_restart_does_not_book_its_stored_fill_twice() -> None:
    """risk restarts with a partly filled order and the fill execution stored (id ``…-f1``); the
    bus hands it the report of that fill again (id ``…-r2``): the order goes on, the fill is not
    booked a second time, and the next fill is."""
    config = PaperExecutionConfig(latency_ms=0, partial_fill_pct=Decimal(50))
    real = ApprovalIdExecution(config, INSTRUMENTS, random.Random(1), id_prefix="pexec")
    real.submit(approval(1, Side.BUY, T0), ts_ns=T0, position=Decimal(0))
    first = real.on_price(
        SYMBOL, T0, Decimal(100), volume=Decimal(2), cash=Decimal(10_000), position=Decimal(0)
    )
    [stored], [partly] = first.fills, [o for o in first.orders if o.status == "PARTIALLY_FILLED"]
    mirror = RemoteExecution(INSTRUMENTS, latency_ms=0)
    mirror.restore(partly, [stored])
    left = mirror.pending_buy_quote(SYMBOL)
    for report in first.reports:
        mirror.deliver(report)
    again = mirror.book(SYMBOL, T0)
    assert again.fills == []
    assert mirror.pending_buy_quote(SYMBOL) == left
    second = real.on_price(
        SYMBOL, T0 + MS, Decimal(100), volume=Decimal(100), cash=Decimal(9_000), position=Decimal(1)
    )
    for report in second.reports:
        mirror.deliver(report)
    assert [f.quantity for f in mirror.book(SYMBOL, T0 + MS).fills] == [
        f.quantity for f in second.fills
    ]
