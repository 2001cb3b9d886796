"""Ledger records refuse what the store could not keep exactly or what makes no sense."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from cdb_cli.engine.records import OrderRecord, PositionRecord, check_config_key

ORDER: dict[str, Any] = {
    "client_order_id": "cdb-1",
    "decision_id": "decision-1",
    "symbol": "BTCUSDT",
    "side": "BUY",
    "order_type": "MARKET",
    "quote_amount": Decimal("100"),
    "status": "PENDING_NEW",
    "ts_created": 1,
    "ts_updated": 1,
    "mode": "paper",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quote_amount": None}, "quantity or a quote_amount"),
        ({"order_type": "LIMIT", "quantity": Decimal(1)}, "LIMIT order needs a price"),
        ({"client_order_id": "x" * 33}, "at most 32 characters"),
        ({"quote_amount": Decimal("0.0000000000000000001")}, "18 decimal places"),
        ({"quote_amount": Decimal("1" * 21)}, "20 digits before the decimal point"),
        ({"status": "OPEN"}, "PENDING_NEW"),
        ({"mode": "backtest"}, "replay"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_order_record_refuses_invalid_orders(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OrderRecord.model_validate({**ORDER, **change})


def test_order_record_is_frozen_and_keeps_decimals() -> None:
    record = OrderRecord.model_validate({**ORDER, "quote_amount": Decimal("0.000000012345678901")})
    assert record.quote_amount == Decimal("0.000000012345678901")
    with pytest.raises(ValidationError, match="frozen"):
        record.status = "NEW"  # type: ignore[misc]


def test_position_quantity_is_never_negative() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        PositionRecord(
            symbol="BTCUSDT",
            quantity=Decimal(-1),
            average_price=Decimal(1),
            realized_pnl=Decimal(0),
            ts_updated=0,
        )


@pytest.mark.parametrize("key", ["", "k" * 129])
def test_config_key_length_is_checked(key: str) -> None:
    with pytest.raises(ValueError, match="1 to 128 characters"):
        check_config_key(key)
