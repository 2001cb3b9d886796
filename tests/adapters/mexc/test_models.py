"""Lenient parsing of MEXC REST payloads, interval names, and the protobuf gencode pin."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from cdb_cli.adapters.mexc.intervals import interval
from cdb_cli.adapters.mexc.models import (
    Kline,
    Order,
    format_decimal,
    instrument_from_symbol,
    symbol_from_json,
)
from cdb_cli.engine.errors import MalformedEvent

REPO = Path(__file__).resolve().parents[3]

# The documented symbol object (mexc_api.md §2.1) with today's string status.
SYMBOL = {
    "symbol": "TOMO3LUSDT", "status": "1", "baseAsset": "TOMO3L", "baseAssetPrecision": 2,
    "quoteAsset": "USDT", "quotePrecision": 3, "quoteAssetPrecision": 3,
    "orderTypes": ["LIMIT", "LIMIT_MAKER"], "isSpotTradingAllowed": True,
    "quoteAmountPrecision": "5", "baseSizePrecision": "0.0001", "permissions": ["SPOT"],
    "filters": [], "maxQuoteAmount": "5000000", "makerCommission": "0.002",
    "takerCommission": "0.002",
}  # fmt: skip


def test_instrument_from_the_documented_symbol() -> None:
    inst = instrument_from_symbol(SYMBOL)
    assert (inst.tick_size, inst.step_size) == (Decimal("0.001"), Decimal("0.01"))
    assert (inst.min_quantity, inst.min_notional) == (Decimal("0.0001"), Decimal(5))
    assert (inst.maker_fee, inst.taker_fee) == (Decimal("0.002"), Decimal("0.002"))
    details = symbol_from_json(SYMBOL)
    assert details.order_types == ("LIMIT", "LIMIT_MAKER")
    assert details.tradable


@pytest.mark.parametrize(
    "change", [{"status": "2"}, {"isSpotTradingAllowed": False}, {"permissions": []}]
)
def test_paused_or_non_spot_symbols_are_not_tradable(change: dict[str, object]) -> None:
    assert not symbol_from_json({**SYMBOL, **change}).tradable


def test_missing_fields_are_malformed_not_key_errors() -> None:
    with pytest.raises(MalformedEvent, match="quotePrecision"):
        instrument_from_symbol({k: v for k, v in SYMBOL.items() if k != "quotePrecision"})


def test_order_numbers_as_strings_are_accepted() -> None:
    # A real capture (mexc_api.md §2.2): time and orderListId as strings, clientOrderId null.
    order = Order.from_json(
        {
            "symbol": "ATLASUSDT", "orderId": "C02__385413065019117569043", "orderListId": "-1",
            "clientOrderId": None, "price": "0.004327", "origQty": "1220", "executedQty": "1220",
            "cummulativeQuoteQty": "5.54124", "status": "FILLED", "type": "MARKET",
            "side": "SELL", "time": "1707671871000",
        }
    )  # fmt: skip
    assert (order.time_ms, order.executed_qty) == (1707671871000, Decimal(1220))


def test_kline_rows_must_have_eight_columns() -> None:
    row = [1640804880000, "47482.36", "47482.36", "47416.57", "47436.1", "3.55", 1640804940000, "1"]
    assert Kline.from_row(row).close == Decimal("47436.1")
    with pytest.raises(MalformedEvent):
        Kline.from_row(row[:5])
    with pytest.raises(MalformedEvent):
        Kline.from_row([*row[:1], "NaN?", *row[2:]])


@pytest.mark.parametrize(
    ("name", "rest", "ws"),
    [
        ("1h", "60m", "Min60"),
        ("60m", "60m", "Min60"),
        ("Min1", "1m", "Min1"),
        ("1w", "1W", "Week1"),
    ],
)
def test_interval_names(name: str, rest: str, ws: str) -> None:
    found = interval(name)
    assert (found.rest, found.ws) == (rest, ws)


def test_unknown_interval() -> None:
    with pytest.raises(ValueError, match="Unknown kline interval"):
        interval("7m")


def test_committed_gencode_is_supported_by_the_pinned_protobuf_runtime() -> None:
    gencode = (REPO / "cdb_cli/adapters/mexc/proto/mexc_push_pb2.py").read_text()
    written = re.search(r"Protobuf Python Version: (\d+)\.(\d+)\.(\d+)", gencode)
    pinned = re.search(
        r'"protobuf>=(\d+)\.(\d+)\.(\d+),<(\d+)"', (REPO / "pyproject.toml").read_text()
    )
    assert written is not None
    assert pinned is not None
    version = tuple(map(int, written.groups()))
    floor = tuple(map(int, pinned.groups()[:3]))
    assert version <= floor  # the runtime is never older than the code generator
    assert int(pinned.group(4)) == version[0] + 1  # and of the same major version


def test_format_decimal_is_plain() -> None:
    assert format_decimal(Decimal("1E+1")) == "10"
    assert format_decimal(Decimal("0.00010000")) == "0.0001"
    assert format_decimal(Decimal("-0")) == "0"


def test_order_types_and_trade_side_of_an_exchange_info_symbol() -> None:
    """MARKET missing from ``orderTypes`` (the documented example lists LIMIT and LIMIT_MAKER) or
    ``quoteOrderQtyMarketAllowed`` false: no MARKET orders; an absent list says nothing.
    ``tradeSideType`` may come as a number (hummingbot's captures)."""
    documented = {
        "symbol": "TOMO3LUSDT", "status": "1", "baseAsset": "TOMO3L", "baseAssetPrecision": 2,
        "quoteAsset": "USDT", "quotePrecision": 3, "orderTypes": ["LIMIT", "LIMIT_MAKER"],
        "quoteOrderQtyMarketAllowed": False, "isSpotTradingAllowed": True,
        "permissions": ["SPOT"], "baseSizePrecision": "0.0001", "quoteAmountPrecision": "5",
        "tradeSideType": "2",
    }  # fmt: skip
    limit_only = symbol_from_json(documented)
    assert limit_only.instrument.market_orders is False
    assert limit_only.trade_side == "2"
    assert limit_only.sides_problem is not None
    assert limit_only.sides_problem.startswith("takes buy orders only")
    market = {**documented, "orderTypes": ["LIMIT", "MARKET"], "tradeSideType": 1}
    market.pop("quoteOrderQtyMarketAllowed")
    both = symbol_from_json(market)
    assert (both.instrument.market_orders, both.trade_side, both.sides_problem) == (True, "1", None)
    silent = {k: v for k, v in market.items() if k not in ("orderTypes", "tradeSideType")}
    assert symbol_from_json(silent).instrument.market_orders is True
    by_quote_refused = {**market, "quoteOrderQtyMarketAllowed": False}
    assert symbol_from_json(by_quote_refused).instrument.market_orders is False
