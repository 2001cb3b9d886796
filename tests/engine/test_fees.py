from __future__ import annotations

from decimal import Decimal as D

import pytest
from market_testkit import fill as kit_fill

from cdb_cli.engine.events import Side
from cdb_cli.engine.fees import FeeParts, describe_other, fee_parts, fees_in_quote, other_fees
from cdb_cli.engine.records import FillRecord


def fill(fee: str, asset: str, *, symbol: str = "ETHUSDT", price: str = "2000") -> FillRecord:
    return kit_fill(Side.BUY, "1", price, fill_id=f"f-{fee}-{asset}", symbol=symbol, fee=fee,
                    fee_asset=asset)  # fmt: skip


@pytest.mark.parametrize(
    ("record", "parts"),
    [
        (fill("1", "USDT"), FeeParts(quote=D("1"))),
        (fill("0.001", "ETH"), FeeParts(base=D("0.001"))),
        (fill("0.4", "MX"), FeeParts(other=D("0.4"), other_asset="MX")),
        (fill("0", ""), FeeParts()),
        (fill("0.1", "MX", symbol="MXUSDT"), FeeParts(base=D("0.1"))),  # MX is the base here
    ],
)
def test_a_fee_is_split_by_the_asset_it_was_paid_in(record: FillRecord, parts: FeeParts) -> None:
    assert fee_parts(record) == parts


def test_the_quote_can_be_named_for_a_symbol_with_an_unknown_quote() -> None:
    record = fill("0.5", "XYZ", symbol="ABCXYZ")
    assert fee_parts(record) == FeeParts(other=D("0.5"), other_asset="XYZ")
    assert fee_parts(record, "XYZ") == FeeParts(quote=D("0.5"))


def test_a_fee_in_no_named_asset_was_paid_in_the_quote() -> None:
    assert fee_parts(fill("0.1", "")) == FeeParts(quote=D("0.1"))


def test_totals_value_base_fees_at_the_fill_price_and_keep_third_assets_apart() -> None:
    fills = [fill("1", "USDT"), fill("0.001", "ETH"), fill("0.4", "MX"), fill("0.2", "MX")]
    assert fees_in_quote(fills) == D("3")  # 1 + 0.001 * 2000
    assert other_fees(fills) == {"MX": "0.6"}
    assert describe_other(other_fees(fills)) == " (+ 0.6 MX apart)"
    assert describe_other({}) == ""
