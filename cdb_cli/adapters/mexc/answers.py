"""The readers of MEXC's REST answers: one per kind of answer, each checking the body's shape
and raising ``MalformedEvent`` (and nothing else) when it is not what MEXC documents;
:func:`~cdb_cli.adapters.mexc.errors.read_answer` turns that into the client's documented error.
:data:`READERS` names the reader of every request the client makes (the fuzz suite feeds them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdb_cli.adapters.mexc.models import (
    Balance,
    BookTicker,
    Depth,
    Fields,
    Fill,
    Kline,
    MexcSymbol,
    Order,
    array,
    symbol_from_json,
    text,
)
from cdb_cli.engine.errors import MalformedEvent

__all__ = ["READERS"]


def read_empty(body: Any) -> None:
    """``{}`` or any object (ping, test order, listenKey keep-alive and close)."""
    Fields(body, "answer")


def read_server_time(body: Any) -> int:
    return Fields(body, "time answer").integer("serverTime")


def read_symbols(body: Any) -> dict[str, MexcSymbol]:
    raw_symbols = Fields(body, "exchangeInfo answer").array("symbols")
    parsed = (symbol_from_json(raw) for raw in raw_symbols)
    return {s.instrument.symbol: s for s in parsed}


def read_default_symbols(body: Any) -> frozenset[str]:
    """``{"code":200,"data":["GENE1USDT",…],"msg":null}``: the symbols tradable over the API."""
    return frozenset(
        text(name, "symbol") for name in Fields(body, "defaultSymbols answer").array("data")
    )


def read_klines(body: Any) -> list[Kline]:
    return [Kline.from_row(row) for row in array(body, "klines answer")]


def read_balances(body: Any) -> dict[str, Balance]:
    balances = {}
    for raw in Fields(body, "account answer").array("balances"):
        f = Fields(raw, "balance")
        asset = f.text("asset")
        balances[asset] = Balance(asset, f.decimal("free"), f.decimal("locked"))
    return balances


def read_permissions(body: Any) -> tuple[bool, tuple[str, ...]]:
    f = Fields(body, "account answer")
    if not f.has("canTrade"):
        raise MalformedEvent("MEXC account answer lacks field 'canTrade'")
    return f.flag("canTrade"), tuple(f.texts("permissions") if f.has("permissions") else ())


def read_order(body: Any) -> Order:
    """A placement or cancel answer (side and status may be missing)."""
    return Order.from_json(body)


def read_order_state(body: Any) -> Order:
    """A query answer: side and status are required."""
    return Order.from_json(body, complete=True)


def read_canceled_orders(body: Any) -> list[Order]:
    return [Order.from_json(o) for o in array(body, "openOrders answer")]


def read_open_orders(body: Any) -> list[Order]:
    return [Order.from_json(o, complete=True) for o in array(body, "openOrders answer")]


def read_listen_key(body: Any) -> str:
    return Fields(body, "userDataStream answer").text("listenKey")


def read_trades(body: Any) -> list[Fill]:
    return [Fill.from_json(t) for t in array(body, "myTrades answer")]


READERS: dict[str, Callable[[Any], Any]] = {
    "GET /api/v3/ping": read_empty,
    "GET /api/v3/time": read_server_time,
    "GET /api/v3/exchangeInfo": read_symbols,
    "GET /api/v3/defaultSymbols": read_default_symbols,
    "GET /api/v3/klines": read_klines,
    "GET /api/v3/depth": Depth.from_json,
    "GET /api/v3/ticker/bookTicker": BookTicker.from_json,
    "GET /api/v3/account": read_balances,
    "GET /api/v3/account (permissions)": read_permissions,
    "POST /api/v3/order": read_order,
    "POST /api/v3/order/test": read_empty,
    "DELETE /api/v3/order": read_order,
    "DELETE /api/v3/openOrders": read_canceled_orders,
    "GET /api/v3/order": read_order_state,
    "GET /api/v3/openOrders": read_open_orders,
    "POST /api/v3/userDataStream": read_listen_key,
    "PUT /api/v3/userDataStream": read_empty,
    "DELETE /api/v3/userDataStream": read_empty,
    "GET /api/v3/myTrades": read_trades,
}
"""The reader of each answer the client reads, by request (what the fuzz suite feeds)."""
