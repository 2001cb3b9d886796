"""The simulator's signed read-only answers and batch placement: order and trade history with
MEXC's paging, the commission of a symbol, the wallet's coin list, and ``batchOrders``.

As documented (spot v3 "Spot Account/Trade", "Wallet Endpoints"; mexc_api.md §2.2):

- ``allOrders``: ``startTime``/``endTime`` optional, by default the last 24 hours, at most the last
  7 days; ``limit`` default 500, max 1000.
- ``myTrades``: ``orderId``, ``startTime``, ``endTime`` optional, only the last month; ``limit``
  default 100, max 100.
- Both page the same way: with ``startTime`` the first ``limit`` rows from it, else the latest
  ``limit`` rows; oldest first; the bounds are inclusive ms.
- ``tradeFee``: ``{"data": {"makerCommission", "takerCommission"}, "code": 0, "msg": "success",
  "timestamp"}`` with the rates as JSON numbers.
- ``batchOrders``: a JSON list of at most 20 orders of one symbol; each answers as its own
  placement or ``{"newClientOrderId", "msg", "code"}`` when it fails.

Not settled by the documentation, chosen here: a batch of more than 20 orders or of several
symbols is refused whole with 33333; a ``startTime`` older than the reachable window is clipped to
it, not refused; the networks, fees and limits of ``capital/config/getall`` are illustrative.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from cdb_cli.adapters.mexc.sim.auth import ApiError
from cdb_cli.adapters.mexc.sim.model import MINUTE_MS
from cdb_cli.adapters.mexc.sim.orders import Account

if TYPE_CHECKING:
    from cdb_cli.adapters.mexc.sim.exchange import SimExchange

__all__ = ["all_orders", "batch_orders", "coin_config", "my_trades", "trade_fee"]

DAY_MS = 24 * 60 * MINUTE_MS
ALL_ORDERS_DEFAULT_MS = DAY_MS
ALL_ORDERS_MAX_MS = 7 * DAY_MS
MY_TRADES_MAX_MS = 30 * DAY_MS
MAX_BATCH = 20

Row = dict[str, object]


def number(p: dict[str, str], name: str) -> int | None:
    """An optional non-negative integer parameter (33333 when it is not one)."""
    text = p.get(name)
    if text in (None, ""):
        return None
    if not str(text).isdigit():
        raise ApiError(33333, "param is error")
    return int(str(text))


def _limit(p: dict[str, str], default: int, maximum: int) -> int:
    return min(maximum, number(p, "limit") or default)


def _page(
    rows: list[Row], time_of: Callable[[Row], int], p: dict[str, str], floor: int, limit: int
) -> list[Row]:
    start, end = number(p, "startTime"), number(p, "endTime")
    low = max(floor, start) if start is not None else floor
    chosen = [r for r in rows if time_of(r) >= low and (end is None or time_of(r) <= end)]
    return chosen[:limit] if start is not None else chosen[-limit:]


def all_orders(exchange: SimExchange, account: Account, p: dict[str, str]) -> list[Row]:
    """``GET /api/v3/allOrders``: every order of a symbol (open, canceled, filled)."""
    symbol = exchange.market(p.get("symbol")).symbol
    now = exchange.clock_ms()
    given = p.get("startTime") or p.get("endTime")
    floor = now - (ALL_ORDERS_MAX_MS if given else ALL_ORDERS_DEFAULT_MS)
    rows = [o.as_json() for o in account.orders.values() if o.symbol == symbol]
    rows.sort(key=lambda r: int(str(r["time"])))
    return _page(rows, lambda r: int(str(r["time"])), p, floor, _limit(p, 500, 1000))


def my_trades(exchange: SimExchange, account: Account, p: dict[str, str]) -> list[Row]:
    """``GET /api/v3/myTrades``: the account's fills of a symbol (of one order with ``orderId``)."""
    symbol = exchange.market(p.get("symbol")).symbol
    order_id = p.get("orderId")
    rows = [
        t
        for t in account.trades
        if t["symbol"] == symbol and (not order_id or t["orderId"] == order_id)
    ]
    floor = exchange.clock_ms() - MY_TRADES_MAX_MS
    chosen = _page(rows, lambda t: int(str(t["time"])), p, floor, _limit(p, 100, 100))
    if exchange.faults.hide_client_ids:  # as in real captures: "clientOrderId": null
        return [{**t, "clientOrderId": None} for t in chosen]
    return chosen


def trade_fee(exchange: SimExchange, p: dict[str, str]) -> Row:
    """``GET /api/v3/tradeFee``: the symbol's commission rates in MEXC's envelope."""
    inst = exchange.market(p.get("symbol")).instrument
    return {
        "data": {
            "makerCommission": float(inst.maker_fee),
            "takerCommission": float(inst.taker_fee),
        },
        "code": 0,
        "msg": "success",
        "timestamp": exchange.clock_ms(),
    }


def batch_orders(exchange: SimExchange, account: Account, p: dict[str, str]) -> list[Row]:
    """``POST /api/v3/batchOrders``: place each order of the list; failures answer in place."""
    try:
        orders = json.loads(p.get("batchOrders") or "")
    except ValueError:
        raise ApiError(33333, "param is error") from None
    if not isinstance(orders, list) or not orders or not all(isinstance(o, dict) for o in orders):
        raise ApiError(44444, "param cannot be null")
    if len(orders) > MAX_BATCH or len({str(o.get("symbol", "")).upper() for o in orders}) != 1:
        raise ApiError(33333, "param is error")
    answers: list[Row] = []
    for order in orders:
        params = {str(k): str(v) for k, v in order.items() if v is not None}
        client_id = params.get("newClientOrderId")
        try:
            placed = exchange.place_order(account, params)
        except ApiError as e:
            answers.append({"newClientOrderId": client_id, "msg": e.msg, "code": e.code})
            continue
        answer: Row = {"symbol": placed["symbol"], "orderId": placed["orderId"]}
        if client_id is not None:
            answer["newClientOrderId"] = client_id
        answer["orderListId"] = -1
        answers.append(answer)
    return answers


# Networks per coin: (network as MEXC names it, withdraw fee, withdraw min); the rest get one
# network named after the coin. Amounts are illustrative, in MEXC's 18-place string form.
NETWORKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "BTC": (("BTC", "0.0003", "0.001"), ("BEP20(BSC)", "0.00001", "0.0001")),
    "ETH": (("ERC20", "0.002", "0.01"), ("Arbitrum One(ARB)", "0.0002", "0.002")),
    "USDT": (("ERC20", "4", "10"), ("TRC20", "1", "10"), ("BEP20(BSC)", "1", "10")),
    "USDC": (("ERC20", "4", "10"), ("BEP20(BSC)", "1", "10")),
    "SOL": (("SOL", "0.01", "0.1"),),
    "MX": (("ERC20", "3", "10"),),
}


def _amount(text: str) -> str:
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac:0<18}"


def coin_config(exchange: SimExchange) -> list[Row]:
    """``GET /api/v3/capital/config/getall``: each asset the simulator knows, with networks."""
    instruments = [m.instrument for m in exchange.markets.values()]
    assets = {i.base_asset for i in instruments} | {i.quote_asset for i in instruments}
    assets |= {a for account in exchange.accounts.values() for a in account.free}
    coins: list[Row] = []
    for coin in sorted(assets):
        networks = NETWORKS.get(coin, ((coin, "0", "0"),))
        coins.append(
            {
                "coin": coin,
                "name": coin,
                "networkList": [
                    {
                        "coin": coin,
                        "depositDesc": None,
                        "depositEnable": True,
                        "minConfirm": 0,
                        "name": coin,
                        "network": network,
                        "withdrawEnable": True,
                        "withdrawFee": _amount(fee),
                        "withdrawIntegerMultiple": None,
                        "withdrawMax": _amount("10000000"),
                        "withdrawMin": _amount(minimum),
                        "sameAddress": False,
                        "contract": "",
                        "withdrawTips": None,
                        "depositTips": None,
                        "netWork": network,
                    }
                    for network, fee, minimum in networks
                ],
            }
        )
    return coins
