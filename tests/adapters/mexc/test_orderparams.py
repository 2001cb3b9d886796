"""The request sent for an approved order, from hand-built records and filters (no simulator)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.orderparams import (
    OrderRequest,
    Refused,
    check_at_market,
    floor_to_step,
    order_request,
)
from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.records import OrderRecord, OrderType

BTC = Instrument(
    symbol="BTCUSDT",
    base_asset="BTC",
    quote_asset="USDT",
    step_size=Decimal("0.000001"),
    tick_size=Decimal("0.01"),
    min_quantity=Decimal("0.00001"),
    min_notional=Decimal(1),
    max_notional=Decimal(2_000_000),
)


def record(
    side: Side,
    order_type: OrderType = "MARKET",
    *,
    quantity: str | None = None,
    price: str | None = None,
    quote: str | None = None,
) -> OrderRecord:
    return OrderRecord(
        client_order_id="cdb-1",
        decision_id="d-1",
        symbol="BTCUSDT",
        side=side,
        order_type=order_type,
        quantity=None if quantity is None else Decimal(quantity),
        price=None if price is None else Decimal(price),
        quote_amount=None if quote is None else Decimal(quote),
        status="PENDING_NEW",
        ts_created=1,
        ts_updated=1,
        mode="live",
    )


def refusal(order: OrderRecord) -> str:
    with pytest.raises(Refused) as caught:
        order_request(order, BTC)
    return str(caught.value)


def test_a_limit_buy_rounds_its_price_up_and_its_quantity_down() -> None:
    got = order_request(record(Side.BUY, "LIMIT", quantity="0.0123456789", price="50000.001"), BTC)
    assert got == OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type="LIMIT",
        client_order_id="cdb-1",  # sent as newClientOrderId
        quantity=Decimal("0.012345"),
        price=Decimal("50000.01"),
    )
    assert not got.needs_market_price


def test_a_limit_sell_rounds_its_price_down() -> None:
    got = order_request(record(Side.SELL, "LIMIT", quantity="0.01", price="50000.019"), BTC)
    assert (got.price, got.quantity, got.side) == (Decimal("50000.01"), Decimal("0.01"), Side.SELL)


def test_a_limit_order_sized_by_quote_gets_the_quantity_at_the_rounded_price() -> None:
    got = order_request(record(Side.BUY, "LIMIT", quote="100", price="30000.001"), BTC)
    assert got.price == Decimal("30000.01")
    assert got.quantity == Decimal("0.003333")  # 100 / 30000.01, rounded down to the step
    assert got.quote_order_qty is None


def test_a_limit_order_breaking_a_filter_is_refused() -> None:
    assert "notional" in refusal(record(Side.BUY, "LIMIT", quantity="0.00001", price="10"))
    assert "rounds to 0" in refusal(record(Side.BUY, "LIMIT", quantity="0.0000001", price="10"))
    assert "above the maximum" in refusal(record(Side.BUY, "LIMIT", quantity="100", price="50000"))


def test_a_market_buy_by_quote_goes_by_quote_order_qty_rounded_down() -> None:
    got = order_request(record(Side.BUY, quote="100.129"), BTC)
    assert (got.quote_order_qty, got.quantity, got.price) == (Decimal("100.12"), None, None)
    assert not got.needs_market_price  # MEXC spends the quote: no notional to check


def test_a_market_buy_by_quote_outside_the_notional_limits_is_refused() -> None:
    assert "below the minimum 1" in refusal(record(Side.BUY, quote="0.999"))
    assert "below the minimum" in refusal(record(Side.BUY, quote="0.001"))  # rounds to 0
    assert "above the maximum 2000000" in refusal(record(Side.BUY, quote="2000000.01"))


def test_market_orders_by_quantity_are_checked_at_the_best_price() -> None:
    sell = order_request(record(Side.SELL, quantity="0.0123456789"), BTC)
    assert (sell.quantity, sell.quote_order_qty, sell.price) == (Decimal("0.012345"), None, None)
    assert sell.needs_market_price
    buy = order_request(record(Side.BUY, quantity="0.5"), BTC)  # a buy sized by quantity
    assert (buy.quantity, buy.needs_market_price) == (Decimal("0.5"), True)
    check_at_market(sell, BTC, Decimal(50_000))  # 617 USDT: passes
    check_at_market(sell, BTC, None)  # no best price: MEXC's own filter decides
    with pytest.raises(Refused, match=r"notional 0\.617250 is below the minimum 1"):
        check_at_market(sell, BTC, Decimal(50))
    with pytest.raises(Refused, match="above the maximum"):
        check_at_market(buy, BTC, Decimal(5_000_000))


def test_a_market_sell_needs_a_quantity_at_least_the_minimum() -> None:
    assert "needs a quantity" in refusal(record(Side.SELL, quote="50"))
    assert "quantity 0.000009 is below the minimum 0.00001" in refusal(
        record(Side.SELL, quantity="0.0000099")
    )
    assert "quantity 0.000000 is below" in refusal(record(Side.SELL, quantity="0.0000001"))


def test_floor_to_step() -> None:
    assert floor_to_step(Decimal("100.129"), Decimal("0.01")) == Decimal("100.12")
    assert floor_to_step(Decimal("7"), Decimal("5")) == Decimal("5")
    assert floor_to_step(Decimal("0.004"), Decimal("0.01")) == Decimal(0)
