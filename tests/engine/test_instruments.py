"""Instrument precision helpers: rounding towards safety and the filter check."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument, format_decimal

BTC = Instrument(
    symbol="BTCUSDT",
    base_asset="BTC",
    quote_asset="USDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.000001"),
    min_quantity=Decimal("0.000001"),
    min_notional=Decimal("1"),
)


def test_round_quantity_always_down_to_the_step() -> None:
    assert BTC.round_quantity(Decimal("0.1234569")) == Decimal("0.123456")
    assert BTC.round_quantity(Decimal("0.0000009")) == Decimal("0")


@pytest.mark.parametrize(
    ("side", "expected"), [(Side.BUY, Decimal("100.12")), (Side.SELL, Decimal("100.13"))]
)
def test_round_price_never_worse_than_asked(side: Side, expected: Decimal) -> None:
    assert BTC.round_price(Decimal("100.123"), side) == expected


def test_quantity_for_quote_stays_within_budget() -> None:
    quantity = BTC.quantity_for_quote(Decimal("100"), Decimal("30000.01"))
    assert quantity * Decimal("30000.01") <= Decimal("100")
    assert quantity == Decimal("0.003333")


@pytest.mark.parametrize(
    ("price", "quantity", "problem"),
    [
        (Decimal("100"), Decimal("0.5"), None),
        (Decimal("100.001"), Decimal("0.5"), "tick size"),
        (Decimal("100"), Decimal("0.0000001"), "step size"),
        (Decimal("100"), Decimal("0.001"), "notional"),
        (Decimal("100"), Decimal("0"), "positive"),
    ],
)
def test_check_order_names_the_violated_filter(
    price: Decimal, quantity: Decimal, problem: str | None
) -> None:
    result = BTC.check_order(price, quantity)
    if problem is None:
        assert result is None
    else:
        assert result is not None
        assert problem in result


def test_format_decimal_is_plain() -> None:
    assert format_decimal(Decimal("1E+1")) == "10"
    assert format_decimal(Decimal("0.00010000")) == "0.0001"
    assert format_decimal(Decimal("-0")) == "0"


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), places=9),
    st.sampled_from([Side.BUY, Side.SELL]),
)
def test_rounding_properties(value: Decimal, side: Side) -> None:
    quantity = BTC.round_quantity(value)
    assert Decimal(0) <= quantity <= value
    assert value - quantity < BTC.step_size
    assert quantity % BTC.step_size == 0
    price = BTC.round_price(value, side)
    assert price % BTC.tick_size == 0
    assert abs(price - value) < BTC.tick_size
    assert (price <= value) if side is Side.BUY else (price >= value)
