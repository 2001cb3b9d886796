"""Numbers for people: 18-28 digit Decimals rounded to what the instrument means, None as a dash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cdb_cli.engine.display import (
    DASH,
    instrument_of,
    money,
    percent,
    price,
    quantity,
    quote_of,
    ratio,
    text,
)
from cdb_cli.engine.instruments import Instrument

BTC = Instrument.from_precisions("BTCUSDT", base_asset_precision=6, quote_precision=2)


def test_money_is_two_places_in_a_usdt_like_quote_and_eight_in_crypto() -> None:
    assert money("10.08711714092844659917945924") == "10.09"
    assert money(Decimal("-18.945000000000000001")) == "-18.95"
    assert money("0.0050000000000000000001", "EUR") == "0.01"
    assert money("-0.001") == "0.00"  # no negative zero
    assert money(Decimal("0.000123456789"), "BTC") == "0.00012346"
    assert money(12) == "12.00"
    assert money(None) == DASH


def test_prices_go_to_the_tick_and_quantities_to_the_step() -> None:
    assert price("7400.1249999999999", BTC) == "7400.12"
    assert price("7400.1", BTC) == "7400.10"
    assert quantity("0.123456789", BTC) == "0.123457"
    assert quantity("2.000000", BTC) == "2"
    stand_in = instrument_of("BTCUSDT")  # 8-decimal tick and step: trailing zeros dropped
    assert price("7400.12000000", stand_in) == "7400.12"
    assert price("0.0000123456789", stand_in) == "0.00001235"
    assert quantity("0.50000000", stand_in) == "0.5"
    assert instrument_of("NOQUOTE") is None
    assert price("1.123456789", None) == "1.12345679"


def test_percentages_ratios_and_missing_values() -> None:
    assert percent("-3.14159") == "-3.14"
    assert percent(Decimal("12.5"), 4) == "12.5000"
    assert ratio(0.555555) == "55.6 %"
    assert ratio(0) == "0.0 %"
    assert ratio(None) == DASH == "\u2013"
    assert text(None) == DASH
    assert text(3) == "3"


def test_the_quote_of_symbols_that_share_it() -> None:
    assert quote_of("ETHBTC") == "BTC"
    assert quote_of(["BTCUSDT", "ETHUSDT"]) == "USDT"
    assert quote_of(["BTCUSDT", "ETHBTC"]) == ""
    assert quote_of("NOQUOTE") == ""


def test_what_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        money("ten")
