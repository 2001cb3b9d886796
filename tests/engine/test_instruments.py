"""Instruments: MEXC precisions become exact steps, rounding never exceeds what was asked."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cdb_cli.engine.instruments import Instrument, default_instrument, split_symbol


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("BTCUSDT", ("BTC", "USDT")),
        ("UNITTESTBTC", ("UNITTEST", "BTC")),
        ("XRPETH", ("XRP", "ETH")),
    ],
)
def test_split_symbol_known_quotes(symbol: str, expected: tuple[str, str]) -> None:
    assert split_symbol(symbol) == expected


def test_split_symbol_unknown_quote_is_refused() -> None:
    with pytest.raises(ValueError, match="quote currency of 'FOOBAR'"):
        split_symbol("FOOBAR")


def test_from_precisions_gives_exact_steps() -> None:
    inst = Instrument.from_precisions("BTCUSDT", base_asset_precision=6, quote_precision=2)
    assert (inst.step_size, inst.tick_size) == (D("0.000001"), D("0.01"))
    assert (inst.base_asset, inst.quote_asset) == ("BTC", "USDT")


def test_quantity_rounds_down_to_the_step() -> None:
    inst = Instrument.from_precisions("BTCUSDT", base_asset_precision=3, quote_precision=2)
    assert inst.round_quantity(D("1.23999")) == D("1.239")
    assert inst.round_quantity(D("0.0009")) == 0
    assert inst.round_quantity(D("-1")) == 0


def test_price_rounding_directions() -> None:
    inst = Instrument.from_precisions("BTCUSDT", base_asset_precision=3, quote_precision=2)
    assert inst.round_price(D("100.001"), up=True) == D("100.01")
    assert inst.round_price(D("100.009"), up=False) == D("100.00")
    assert inst.round_price(D("100.005")) == D("100.00")  # half-even
    assert inst.round_price(D("0.001")) == D("0.01")  # never 0: the smallest tick


def test_check_order_names_the_filter() -> None:
    inst = Instrument.from_precisions(
        "BTCUSDT",
        base_asset_precision=4,
        quote_precision=2,
        min_quantity=D("0.001"),
        min_notional=D("5"),
        max_notional=D("1000"),
    )
    assert inst.check_order(D("0.01"), D("1000")) is None
    assert "rounds to 0" in (inst.check_order(D(0), D("1000")) or "")
    assert "below the minimum 0.001" in (inst.check_order(D("0.0005"), D("100000")) or "")
    assert "notional 4.000 is below the minimum 5" in (
        inst.check_order(D("0.004"), D("1000")) or ""
    )
    assert "above the maximum 1000" in (inst.check_order(D("2"), D("1000")) or "")


def test_default_instrument_is_conservative() -> None:
    inst = default_instrument("ETHUSDT", taker_fee=D("0.001"))
    assert inst.step_size == inst.tick_size == D("1e-8")
    assert inst.min_notional == 5
    assert inst.taker_fee == D("0.001")
    assert default_instrument("XRPETH").min_notional == 0


@pytest.mark.parametrize("field", ["step_size", "tick_size"])
def test_non_positive_steps_are_refused(field: str) -> None:
    values = {"step_size": D("0.1"), "tick_size": D("0.1"), field: D(0)}
    with pytest.raises(ValueError, match=f"{field} must be above 0"):
        Instrument(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", **values)
