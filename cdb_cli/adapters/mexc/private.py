"""Private push frames of the user data stream → typed records (mexc_api.md §4.4, §4.7).

``privateOrders`` → :class:`OrderUpdate`, ``privateDeals`` → :class:`FillUpdate`,
``privateAccount`` → :class:`BalanceUpdate`. These are venue records for the execution side (a
later ``MexcExecutionClient`` turns them into ``ExecutionReport`` events). Like the public decoder,
this one never raises: bad frames are counted per kind and logged once.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from google.protobuf.message import DecodeError

from cdb_cli.adapters.mexc.decoder import BadValue, non_negative_decimal, positive_decimal
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper

__all__ = ["BalanceUpdate", "FillUpdate", "OrderUpdate", "PrivateDecoder", "PrivateUpdate"]

logger = logging.getLogger(__name__)

ORDER_STATUS = {
    1: "NEW",
    2: "FILLED",
    3: "PARTIALLY_FILLED",
    4: "CANCELED",
    5: "PARTIALLY_CANCELED",
}
ORDER_TYPE = {
    1: "LIMIT",
    2: "LIMIT_MAKER",
    3: "IMMEDIATE_OR_CANCEL",
    4: "FILL_OR_KILL",
    5: "MARKET",
    100: "STOP_LIMIT",
}
SIDE = {1: "BUY", 2: "SELL"}


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's state after a change."""

    symbol: str
    order_id: str
    client_order_id: str
    side: str
    type: str
    status: str
    price: Decimal
    quantity: Decimal
    cumulative_quantity: Decimal
    cumulative_amount: Decimal
    avg_price: Decimal
    last_deal_quantity: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True)
class FillUpdate:
    """One of our fills."""

    symbol: str
    trade_id: str
    order_id: str
    client_order_id: str
    side: str
    price: Decimal
    quantity: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    """An asset's free (``balanceAmount``) and locked (``frozenAmount``) amounts after a change."""

    asset: str
    free: Decimal
    locked: Decimal
    free_change: Decimal
    locked_change: Decimal
    change_type: str
    time_ms: int


PrivateUpdate = OrderUpdate | FillUpdate | BalanceUpdate


def _signed(text: str, field: str) -> Decimal:
    """A change may be negative: ``-4.4022``."""
    return (
        -non_negative_decimal(text[1:], field)
        if text.startswith("-")
        else non_negative_decimal(text, field)
    )


def _lookup(table: dict[int, str], value: int, field: str) -> str:
    found = table.get(value)
    if found is None:
        raise BadValue(f"{field} {value} is not a known code")
    return found


class PrivateDecoder:
    """``decode(bytes)`` → ``(channel, update or None)``; counts bad frames per kind."""

    def __init__(self) -> None:
        self.bad: Counter[str] = Counter()
        self._logged: set[str] = set()

    def _reject(self, kind: str, channel: str, detail: str) -> None:
        self.bad[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning("Dropped a MEXC private frame (%s) on %r: %s", kind, channel, detail)

    def decode(self, data: bytes) -> tuple[str, PrivateUpdate | None]:
        wrapper = PushDataV3ApiWrapper()
        try:
            wrapper.ParseFromString(data)
        except (DecodeError, ValueError) as e:
            self._reject("malformed_protobuf", "", f"{type(e).__name__}: {e}")
            return "", None
        body = wrapper.WhichOneof("body")
        try:
            if body == "privateOrders":
                return wrapper.channel, _order(wrapper.privateOrders, wrapper.symbol)
            if body == "privateDeals":
                return wrapper.channel, _fill(wrapper.privateDeals, wrapper.symbol)
            if body == "privateAccount":
                return wrapper.channel, _balance(wrapper.privateAccount)
        except BadValue as e:
            self._reject("bad_value", wrapper.channel, str(e))
            return wrapper.channel, None
        self._reject("not_private", wrapper.channel, f"body {body!r}")
        return wrapper.channel, None


def _order(o: Any, symbol: str) -> OrderUpdate:
    return OrderUpdate(
        symbol=symbol,
        order_id=o.id,
        client_order_id=o.clientId,
        side=_lookup(SIDE, o.tradeType, "tradeType"),
        type=_lookup(ORDER_TYPE, o.orderType, "orderType"),
        status=_lookup(ORDER_STATUS, o.status, "status"),
        price=non_negative_decimal(o.price, "price"),
        quantity=non_negative_decimal(o.quantity, "quantity"),
        cumulative_quantity=non_negative_decimal(o.cumulativeQuantity, "cumulativeQuantity"),
        cumulative_amount=non_negative_decimal(o.cumulativeAmount, "cumulativeAmount"),
        avg_price=non_negative_decimal(o.avgPrice, "avgPrice"),
        last_deal_quantity=non_negative_decimal(o.lastDealQuantity, "lastDealQuantity"),
        time_ms=o.createTime,
    )


def _fill(d: Any, symbol: str) -> FillUpdate:
    return FillUpdate(
        symbol=symbol,
        trade_id=d.tradeId,
        order_id=d.orderId,
        client_order_id=d.clientOrderId,
        side=_lookup(SIDE, d.tradeType, "tradeType"),
        price=positive_decimal(d.price, "price"),
        quantity=positive_decimal(d.quantity, "quantity"),
        amount=non_negative_decimal(d.amount, "amount"),
        fee=non_negative_decimal(d.feeAmount, "feeAmount"),
        fee_asset=d.feeCurrency,
        is_maker=d.isMaker,
        time_ms=d.time,
    )


def _balance(a: Any) -> BalanceUpdate:
    return BalanceUpdate(
        asset=a.vcoinName,
        free=non_negative_decimal(a.balanceAmount, "balanceAmount"),
        locked=non_negative_decimal(a.frozenAmount, "frozenAmount"),
        free_change=_signed(a.balanceAmountChange, "balanceAmountChange"),
        locked_change=_signed(a.frozenAmountChange, "frozenAmountChange"),
        change_type=a.type,
        time_ms=a.time,
    )
