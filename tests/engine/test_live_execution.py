"""LiveExecution: sizing to the venue's filters, queueing, and booking the venue's reports once."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import OrderApproved, Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.live_execution import LiveExecution, client_order_id_prefix, market_refused
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.ports.execution import ExecutionVenue, VenueFill, VenueOrderState
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.risk import RiskEngine, RiskLimits
from cdb_cli.engine.signals import EmaCrossStrategy, SignalConfig

BTC = Instrument.from_precisions(
    "BTCUSDT",
    base_asset_precision=6,
    quote_precision=2,
    min_quantity=Decimal("0.000001"),
    min_notional=Decimal("5"),
    taker_fee=Decimal("0.0005"),
)
T0 = 1_704_067_200_000_000_000


def approved(side: Side, quote: str = "100.129", price: str = "42000") -> OrderApproved:
    return OrderApproved(
        symbol="BTCUSDT",
        ts_event=T0,
        source="risk",
        decision_id="d1",
        side=side,
        quote_amount=Decimal(quote),
        reference_price=Decimal(price),
    )


def state(order_id: str, status: str, filled: str = "0", side: Side = Side.BUY) -> VenueOrderState:
    return VenueOrderState(
        client_order_id=order_id,
        venue_order_id="V1",
        symbol="BTCUSDT",
        side=side,
        status=status,  # type: ignore[arg-type]
        filled_quantity=Decimal(filled),
        filled_quote=Decimal(0),
        ts_ns=T0 + 5,
    )


def fill(order_id: str, fill_id: str, qty: str, price: str = "42000") -> VenueFill:
    return VenueFill(
        fill_id=fill_id,
        client_order_id=order_id,
        venue_order_id="V1",
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(qty) * Decimal("0.0005"),
        fee_asset="BTC",
        ts_ns=T0 + 6,
        liquidity="taker",
    )


def venue() -> LiveExecution:
    return LiveExecution({"BTCUSDT": BTC}, id_prefix=client_order_id_prefix("l0123456789a"))


def test_is_an_execution_venue() -> None:
    chosen: ExecutionVenue = venue()
    assert chosen.id_prefix == "l0123456789a"


def test_a_buy_is_queued_pending_new_by_quote_amount_rounded_down_to_the_tick() -> None:
    execution = venue()
    result = execution.submit(approved(Side.BUY), ts_ns=T0, position=Decimal(0))
    (record,) = result.orders
    assert record.status == "PENDING_NEW"
    assert record.client_order_id == "l0123456789a0000000001"
    assert len(record.client_order_id) <= 32
    assert record.quote_amount == Decimal("100.12")
    assert record.quantity is None
    assert record.mode == "live"
    assert execution.take_outgoing() == [record]
    assert execution.take_outgoing() == []  # each order is handed over once
    assert execution.has_working("BTCUSDT")
    assert execution.pending_buy_quote("BTCUSDT") == Decimal("100.12")


def test_orders_below_the_filters_are_rejected_and_never_queued() -> None:
    execution = venue()
    result = execution.submit(approved(Side.BUY, quote="4.99"), ts_ns=T0, position=Decimal(0))
    assert result.orders[0].status == "REJECTED"
    assert "minimum notional" in result.reports[0].reason
    sell = execution.submit(approved(Side.SELL), ts_ns=T0, position=Decimal("0.0000001"))
    assert sell.orders[0].status == "REJECTED"
    assert "nothing to sell" in sell.reports[0].reason
    dust = execution.submit(approved(Side.SELL), ts_ns=T0, position=Decimal("0.0001"))
    assert "below the minimum notional" in dust.reports[0].reason  # 0.0001 x 42000 = 4.2
    assert execution.take_outgoing() == []
    assert not execution.has_working("BTCUSDT")


def test_an_exit_sells_the_position_rounded_down_to_the_step() -> None:
    execution = venue()
    (record,) = execution.submit(
        approved(Side.SELL), ts_ns=T0, position=Decimal("0.0123456789")
    ).orders
    assert record.quantity == Decimal("0.012345")
    assert record.quote_amount is None


def test_reports_are_booked_once_fills_after_the_final_state_too() -> None:
    execution = venue()
    (record,) = execution.submit(approved(Side.BUY), ts_ns=T0, position=Decimal(0)).orders
    cid = record.client_order_id
    accepted = execution.on_update(state(cid, "NEW"))
    assert [o.status for o in accepted.orders] == ["NEW"]
    assert accepted.orders[0].venue_order_id == "V1"
    assert execution.on_update(state(cid, "NEW")).orders == []  # from stream and poll: once
    first = execution.on_update(fill(cid, "t1", "0.001"))
    assert [f.fill_id for f in first.fills] == ["t1"]
    assert first.reports[0].status == "PARTIALLY_FILLED"
    assert execution.on_update(fill(cid, "t1", "0.001")).fills == []
    done = execution.on_update(state(cid, "FILLED", "0.002"))
    assert done.orders[0].status == "FILLED"
    assert not execution.has_working("BTCUSDT")
    late = execution.on_update(fill(cid, "t2", "0.001"))  # MEXC pushes the order before its deal
    assert [f.fill_id for f in late.fills] == ["t2"]
    assert late.fills[0].fee_asset == "BTC"
    stale = execution.on_update(state(cid, "PARTIALLY_FILLED", "0.001"))
    assert stale.orders == []  # a late poll answer never reopens a finished order
    assert execution.on_update(fill("someone-else", "t9", "1")).fills == []


def test_restore_continues_the_counter_and_requeues_nothing_sent() -> None:
    execution = venue()
    (record,) = execution.submit(approved(Side.BUY), ts_ns=T0, position=Decimal(0)).orders
    open_record = record.model_copy(update={"status": "NEW", "venue_order_id": "V1"})
    fresh = venue()
    fresh.restore(open_record, [])
    assert fresh.has_working("BTCUSDT")
    assert fresh.take_outgoing() == []
    (next_record,) = fresh.submit(approved(Side.BUY), ts_ns=T0, position=Decimal(0)).orders
    assert next_record.client_order_id == "l0123456789a0000000002"
    with pytest.raises(ValueError, match="not open"):
        fresh.restore(open_record.model_copy(update={"status": "FILLED"}), [])


def test_the_pipeline_books_live_fills_with_the_base_asset_commission() -> None:
    execution = venue()
    recorder = MemoryRecorder()
    pipeline = TradingPipeline(
        strategies={"BTCUSDT": EmaCrossStrategy(SignalConfig())},
        risk=RiskEngine(RiskLimits()),
        execution=execution,
        portfolio=Portfolio(Decimal(1000)),
        clock=TestClock(T0),
        recorder=recorder,
    )
    (record,) = execution.submit(approved(Side.BUY), ts_ns=T0, position=Decimal(0)).orders
    cid = record.client_order_id
    pipeline.apply_execution(execution.on_update(state(cid, "NEW")))
    pipeline.apply_execution(execution.on_update(fill(cid, "t1", "0.002")))
    pipeline.apply_execution(execution.on_update(state(cid, "FILLED", "0.002")))
    portfolio = pipeline.portfolio
    assert portfolio.quantity("BTCUSDT") == Decimal("0.002") - Decimal("0.000001")
    assert portfolio.cash == Decimal(1000) - Decimal("84")
    assert [f.fill_id for f in recorder.fills] == ["t1"]
    assert recorder.orders[cid].status == "FILLED"
    assert not execution.has_working("BTCUSDT")


def test_a_limit_entry_buys_at_the_decision_price_and_times_out() -> None:
    execution = LiveExecution(
        {"BTCUSDT": BTC},
        id_prefix="l0123456789a",
        entry="LIMIT",
        limit_timeout_ns=30_000_000_000,
    )
    (record,) = execution.submit(
        approved(Side.BUY, quote="100", price="42000.567"), ts_ns=T0, position=Decimal(0)
    ).orders
    assert (record.order_type, record.price, record.quantity) == (
        "LIMIT",
        Decimal("42000.56"),
        Decimal("0.002380"),
    )
    assert record.quote_amount is None
    assert execution.pending_buy_quote("BTCUSDT") == Decimal("0.002380") * Decimal("42000.56")
    execution.take_outgoing()
    execution.on_update(state(record.client_order_id, "NEW"))
    assert execution.expired(T0 + 29_000_000_000) == 0
    assert execution.expired(T0 + 30_000_000_000) == 1
    assert execution.expired(T0 + 31_000_000_000) == 0  # asked once
    assert execution.take_cancels() == [execution.order(record.client_order_id)]
    execution.on_update(fill(record.client_order_id, "t1", "0.001"))
    done = execution.on_update(state(record.client_order_id, "PARTIALLY_CANCELED", "0.001"))
    assert done.reports[0].status == "PARTIALLY_CANCELED"
    assert not execution.has_working("BTCUSDT")


def test_a_late_answer_never_moves_an_order_back() -> None:
    """The stream said PARTIALLY_FILLED; place() then returns NEW with nothing filled."""
    execution = venue()
    (record,) = execution.submit(approved(Side.BUY), ts_ns=T0, position=Decimal(0)).orders
    cid = record.client_order_id
    execution.on_update(state(cid, "PARTIALLY_FILLED", "0.001"))
    assert execution.on_update(state(cid, "NEW")).orders == []
    assert execution.order(cid).status == "PARTIALLY_FILLED"  # type: ignore[union-attr]


def test_without_market_orders_entries_and_exits_go_limit_within_the_allowance(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """orderTypes without MARKET: a buy crosses at most 0.5 % above the decision's price, a sell
    at most 0.5 % below; the reports say why; the switch is logged once; the timeout cancels."""
    no_market = dataclasses.replace(BTC, market_orders=False)
    execution = LiveExecution(
        {"BTCUSDT": no_market},
        id_prefix="l0123456789a",
        limit_timeout_ns=30_000_000_000,
        fallback_slippage_pct=Decimal("0.5"),
    )
    with caplog.at_level("WARNING", logger="cdb_cli.engine.live_execution"):
        (buy,) = execution.submit(
            approved(Side.BUY, quote="100", price="42000"), ts_ns=T0, position=Decimal(0)
        ).orders
        (sell,) = execution.submit(
            approved(Side.SELL, price="42001"), ts_ns=T0, position=Decimal("0.0023809")
        ).orders
    assert (buy.order_type, buy.price, buy.quantity, buy.quote_amount) == (
        "LIMIT",
        Decimal("42210.00"),  # 42000 * 1.005
        Decimal("0.002369"),  # 100 / 42210, down to the step
        None,
    )
    assert (sell.order_type, sell.price, sell.quantity) == (
        "LIMIT",
        Decimal("41790.99"),  # 42001 * 0.995 = 41790.995, down to the tick
        Decimal("0.002380"),
    )
    assert [r.message for r in caplog.records if "LIMIT instead of MARKET" in r.message] == [
        "LIMIT instead of MARKET: BTCUSDT takes no MARKET orders (its orderTypes lack MARKET); "
        "at most 0.5 % from the decision's price, canceled after 30 s"
    ]
    assert execution.take_outgoing() == [buy, sell]
    (report,) = execution.on_update(state(buy.client_order_id, "NEW")).reports
    assert report.reason.startswith("LIMIT instead of MARKET: BTCUSDT takes no MARKET orders")
    assert execution.expired(T0 + 30_000_000_000) == 1  # the sell is still PENDING_NEW
    assert execution.take_cancels() == [execution.order(buy.client_order_id)]


def test_a_market_order_refused_for_its_type_is_sent_again_as_limit_and_so_are_later_ones() -> None:
    execution = venue()
    (market,) = execution.submit(
        approved(Side.BUY, quote="100", price="42000"), ts_ns=T0, position=Decimal(0)
    ).orders
    assert market.order_type == "MARKET"
    execution.take_outgoing()
    refused = VenueOrderState(
        client_order_id=market.client_order_id,
        venue_order_id="",
        symbol="BTCUSDT",
        side=Side.BUY,
        status="REJECTED",
        filled_quantity=Decimal(0),
        filled_quote=Decimal(0),
        ts_ns=T0 + 5,
        reason=market_refused(
            "MEXC rejected POST /api/v3/order: 30051 api market order is disabled"
        ),
    )
    result = execution.on_update(refused)
    rejected, again = result.orders
    assert (rejected.client_order_id, rejected.status) == (market.client_order_id, "REJECTED")
    assert "30051 api market order is disabled" in result.reports[0].reason
    assert (again.order_type, again.status, again.decision_id) == ("LIMIT", "PENDING_NEW", "d1")
    assert (again.price, again.quantity) == (Decimal("42210.00"), Decimal("0.002369"))
    assert again.client_order_id != market.client_order_id
    assert execution.take_outgoing() == [again]
    assert execution.has_working("BTCUSDT")
    (report,) = execution.on_update(state(again.client_order_id, "FILLED", "0.002369")).reports
    assert report.reason.startswith("LIMIT instead of MARKET: BTCUSDT takes no MARKET orders")
    assert "30051 api market order is disabled" in report.reason
    (later,) = execution.submit(
        approved(Side.SELL, price="42000"), ts_ns=T0 + 9, position=Decimal("0.002369")
    ).orders
    assert (later.order_type, later.price) == ("LIMIT", Decimal("41790.00"))
    assert execution.on_update(refused).orders == []  # a repeat changes nothing
