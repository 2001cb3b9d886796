"""The MEXC REST client's calls by answer (issue 22): how to make each call against the simulator,
the answer MEXC documents for it, and hostile answers every call must turn into its documented
error. Shared by ``tests/adapters/mexc/test_http_answers.py`` and ``tests/fuzz``.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx

from cdb_cli.adapters.mexc.answers import READERS
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.engine.errors import RateLimited, VenueError

__all__ = [
    "ALLOWED",
    "BTC",
    "CALLS",
    "DOCUMENTED",
    "HOSTILE",
    "Recorder",
    "mutate_json",
    "request_of",
]

BTC = "BTCUSDT"
ALLOWED = (VenueError, RateLimited)
"""What any answer may raise (errors.py): VenueRejected / VenueServerError (MalformedAnswer) for a
refusal or an unreadable answer, RateLimited for a body code 429."""

_ids = itertools.count(1)


async def resting_order(client: MexcHttpClient) -> str:
    """A fresh LIMIT BUY far below the market; its client order id."""
    ticker = await client.book_ticker(BTC)
    price = (ticker.bid * Decimal("0.5")).quantize(Decimal("0.01"))
    client_id = f"kit-{next(_ids)}"
    await client.new_order(
        BTC, "BUY", "LIMIT", quantity=Decimal("0.0001"), price=price, client_order_id=client_id
    )
    return client_id


Call = Callable[[MexcHttpClient], Awaitable[object]]


async def _keepalive(client: MexcHttpClient) -> object:
    key = await client.create_listen_key()
    try:
        return await client.keepalive_listen_key(key)
    finally:
        await client.close_listen_key(key)


async def _close(client: MexcHttpClient) -> object:
    return await client.close_listen_key(await client.create_listen_key())


async def _listen_key(client: MexcHttpClient) -> object:
    return await client.create_listen_key()


async def _cancel(client: MexcHttpClient) -> object:
    return await client.cancel_order(BTC, client_order_id=await resting_order(client))


async def _query(client: MexcHttpClient) -> object:
    return await client.query_order(BTC, client_order_id=await resting_order(client))


async def _place(client: MexcHttpClient) -> object:
    ticker = await client.book_ticker(BTC)
    price = (ticker.bid * Decimal("0.5")).quantize(Decimal("0.01"))
    return await client.new_order(BTC, "BUY", "LIMIT", quantity=Decimal("0.0001"), price=price)


async def _test_order(client: MexcHttpClient) -> object:
    return await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(10), test=True)


async def _klines(client: MexcHttpClient) -> object:
    return await client.klines(BTC, "1m", limit=3)


async def _warm_klines(client: MexcHttpClient) -> object:
    return [page async for page in client.iter_klines(BTC, "1m", 0, 2**62, page=5)]


CALLS: dict[str, list[tuple[str, Call]]] = {
    "GET /api/v3/ping": [("ping", lambda c: c.ping())],
    "GET /api/v3/time": [
        ("server_time", lambda c: c.server_time()),
        ("sync_time", lambda c: c.sync_time()),
    ],
    "GET /api/v3/exchangeInfo": [
        ("symbols", lambda c: c.symbols([BTC])),
        ("exchange_info", lambda c: c.exchange_info()),
    ],
    "GET /api/v3/defaultSymbols": [("api_symbols", lambda c: c.api_symbols())],
    "GET /api/v3/klines": [("klines", _klines), ("iter_klines", _warm_klines)],
    "GET /api/v3/depth": [("depth", lambda c: c.depth(BTC, 5))],
    "GET /api/v3/ticker/bookTicker": [("book_ticker", lambda c: c.book_ticker(BTC))],
    "GET /api/v3/account": [("account", lambda c: c.account())],
    "GET /api/v3/account (permissions)": [
        ("account_permissions", lambda c: c.account_permissions())
    ],
    "POST /api/v3/order": [("new_order", _place)],
    "POST /api/v3/order/test": [("new_order test", _test_order)],
    "DELETE /api/v3/order": [("cancel_order", _cancel)],
    "DELETE /api/v3/openOrders": [("cancel_open_orders", lambda c: c.cancel_open_orders(BTC))],
    "GET /api/v3/order": [("query_order", _query)],
    "GET /api/v3/openOrders": [("open_orders", lambda c: c.open_orders(BTC))],
    "POST /api/v3/userDataStream": [("create_listen_key", _listen_key)],
    "PUT /api/v3/userDataStream": [("keepalive_listen_key", _keepalive)],
    "DELETE /api/v3/userDataStream": [("close_listen_key", _close)],
    "GET /api/v3/myTrades": [("my_trades", lambda c: c.my_trades(BTC))],
}
"""Every client call, by the reader of its answer (the keys of :data:`READERS`)."""

assert set(CALLS) == set(READERS)


def request_of(key: str) -> tuple[str, str]:
    """``"GET /api/v3/account (permissions)"`` → ``("GET", "/api/v3/account")``."""
    method, path = key.split(" ")[:2]
    return method, path


_ORDER = {
    "symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1",
    "price": "0.1", "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0",
    "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "stopPrice": "0.0",
    "time": 1499827319559, "updateTime": 1499827319559, "isWorking": True,
    "origQuoteOrderQty": "0.000000",
}  # fmt: skip
_CAPTURED_ORDER = {
    "symbol": "ATLASUSDT", "orderId": "C02__385413065019117569043", "orderListId": "-1",
    "clientOrderId": None, "price": "0.004327", "origQty": "1220", "executedQty": "1220",
    "cummulativeQuoteQty": "5.54124", "status": "FILLED", "timeInForce": None, "type": "MARKET",
    "side": "SELL", "stopPrice": None, "icebergQty": None, "time": "1707671871000",
    "updateTime": "1707671871000", "isWorking": True, "origQuoteOrderQty": "5.27894",
}  # fmt: skip
_CANCELED = {
    "symbol": "LTCBTC", "origClientOrderId": "myOrder1", "orderId": 4,
    "clientOrderId": "cancelMyOrder1", "price": "2.00000000", "origQty": "1.00000000",
    "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "CANCELED",
    "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
}  # fmt: skip
_SYMBOL = {
    "symbol": "TOMO3LUSDT", "status": "1", "baseAsset": "TOMO3L", "baseAssetPrecision": 2,
    "quoteAsset": "USDT", "quotePrecision": 3, "quoteAssetPrecision": 3,
    "baseCommissionPrecision": 2, "quoteCommissionPrecision": 3,
    "orderTypes": ["LIMIT", "LIMIT_MAKER"], "quoteOrderQtyMarketAllowed": False,
    "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
    "quoteAmountPrecision": "5", "baseSizePrecision": "0.0001", "permissions": ["SPOT", "LIMIT"],
    "filters": [], "maxQuoteAmount": "5000000", "makerCommission": "0.002",
    "takerCommission": "0.002", "tradeSideType": "1",
}  # fmt: skip
_ACCOUNT = {
    "canTrade": True, "canWithdraw": True, "canDeposit": True, "updateTime": None,
    "accountType": "SPOT",
    "balances": [{"asset": "MX", "free": "3", "locked": "0"},
                 {"asset": "BTC", "free": "0.0003", "locked": "0"}],
    "permissions": ["SPOT"],
}  # fmt: skip
_TRADE = {
    "symbol": "ATLASUSDT", "id": "dd44f79dda764c2e927a190ac5e7a1e5",
    "orderId": "C02__385413065019117569043", "orderListId": "-1", "price": "0.004542",
    "qty": "1220", "quoteQty": "5.54124", "commission": "0", "commissionAsset": "USDT",
    "time": "1707671871000", "isBuyer": False, "isMaker": False, "isBestMatch": True,
    "isSelfTrade": False, "clientOrderId": None,
}  # fmt: skip

# fmt: off
DOCUMENTED: dict[str, list[Any]] = {
    "GET /api/v3/ping": [{}],
    "GET /api/v3/time": [{"serverTime": 1645539742000}],
    "GET /api/v3/exchangeInfo": [
        {"timezone": "CST", "serverTime": 1657256965785, "rateLimits": [],
         "exchangeFilters": [], "symbols": [_SYMBOL]}
    ],
    "GET /api/v3/defaultSymbols": [{"code": 200, "data": ["GENE1USDT", "SNTUSDT"], "msg": None}],
    "GET /api/v3/klines": [
        [[1640804880000, "47482.36", "47482.36", "47416.57", "47436.1", "3.550717",
          1640804940000, "168387.3"],
         [1710327600000, "73260.0", "73442.95", "73238.69", "73414.21", "49.560236",
          1710331200000, "3633995.45"]]
    ],
    "GET /api/v3/depth": [
        {"lastUpdateId": 1112416, "bids": [["15.00000", "49999.00000"]],
         "asks": [["14.0000", "1.0000"]]},
        {"lastUpdateId": "20453289489", "bids": [["1.5", "2"]], "asks": [["1.6", "3"]],
         "timestamp": "1704908526228"},
    ],
    "GET /api/v3/ticker/bookTicker": [
        {"symbol": "AEUSDT", "bidPrice": "0.11001", "bidQty": "115.59", "askPrice": "0.11127",
         "askQty": "215.48"}
    ],
    "GET /api/v3/account": [_ACCOUNT],
    "GET /api/v3/account (permissions)": [_ACCOUNT],
    "POST /api/v3/order": [
        {"symbol": "MXUSDT", "orderId": "06a480e69e604477bfb48dddd5f0b750", "orderListId": -1,
         "price": "0.1", "origQty": "50", "type": "LIMIT", "side": "BUY",
         "transactTime": 1666676533741},
        {"symbol": "MXUSDT", "orderId": "C02__505979017439002624115", "orderListId": -1},
    ],
    "POST /api/v3/order/test": [{}],
    "DELETE /api/v3/order": [_CANCELED],
    "DELETE /api/v3/openOrders": [[_CANCELED, _CANCELED]],
    "GET /api/v3/order": [_ORDER, _CAPTURED_ORDER],
    "GET /api/v3/openOrders": [[_ORDER, {**_ORDER, "icebergQty": None}]],
    "POST /api/v3/userDataStream": [
        {"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"}
    ],
    "PUT /api/v3/userDataStream": [{"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1"}],
    "DELETE /api/v3/userDataStream": [{"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1"}],
    "GET /api/v3/myTrades": [[_TRADE]],
}
# fmt: on
"""The answers mexc_api.md §2 documents (examples and real captures), by reader."""

assert set(DOCUMENTED) == set(READERS)

HOSTILE: list[bytes] = [
    b"[1]",
    b"{}",
    b"1",
    b'"x"',
    b"null",
    b"true",
    b"[]",
    b'{"symbol":"BTCUSDT","bidPrice":"1"}',
    b'{"symbol":{"a":1},"orderId":[1],"side":7,"status":[]}',
    b'{"serverTime":"soon","symbols":{},"balances":[1],"listenKey":null}',
    b'{"serverTime":1e400,"bids":[["1"]],"canTrade":"yes"}',
    b'{"serverTime":' + b"9" * 5000 + b"}",
    b'{"serverTime":99999999999999999999999}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
    b"\xff\xfe\x00{",
    b'{"symbol":"\xc3\x28"}',
    b'{"code":',
    b"<html>oops</html>",
    b'{"code":"700003","msg":{"deep":[1]}}',
]
"""Answers every call must turn into its documented error (or, by chance, read): wrong types,
missing fields, non-numeric strings, huge numbers, deep nesting, non-UTF-8, non-JSON."""

_ODD: list[Any] = [
    None, True, False, 0, -1, 1.5, 1e308, 2**70, -(2**70), "", "x", "NaN", "-Infinity", "1e999",
    "9" * 80, "0x1F", [], {}, [1, 2], {"a": None}, [[[[[]]]]], "BUY", "SELL", "\u0000",
]  # fmt: skip


def _odd(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(_ODD))  # never the shared list itself: no cycles


def mutate_json(value: Any, rng: random.Random) -> bytes:
    """``value`` with one to three structural changes (a value swapped for an odd one, a key
    dropped or renamed, a node wrapped or deeply nested), as JSON bytes."""
    doc = json.loads(json.dumps(value))
    for _ in range(rng.randint(1, 3)):
        doc = _mutate_node(doc, rng)
    text = json.dumps(doc)
    if rng.random() < 0.05:  # nesting deeper than any parser's recursion limit
        depth = rng.choice([50, 1_000, 50_000])
        text = "[" * depth + text + "]" * depth
    return text.encode()


def _mutate_node(doc: Any, rng: random.Random) -> Any:
    containers: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict | list):
            containers.append(node)
            for child in node.values() if isinstance(node, dict) else node:
                walk(child)

    walk(doc)
    if not containers or rng.random() < 0.08:
        return _odd(rng) if rng.random() < 0.5 else [doc]
    node = rng.choice(containers)
    keys: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node)))
    if not keys:
        if isinstance(node, dict):
            node["x"] = _odd(rng)
        else:
            node.append(_odd(rng))
        return doc
    key = rng.choice(keys)
    action = rng.randrange(4)
    if action == 0:
        node[key] = _odd(rng)
    elif action == 1:
        del node[key]
    elif action == 2 and isinstance(node, dict):
        node[key + "_"] = node.pop(key)
    else:
        node[key] = [node[key]] if rng.random() < 0.5 else {"v": node[key]}
    return doc


class Recorder(httpx.AsyncHTTPTransport):
    """A real HTTP transport that keeps every 2xx answer body, by ``METHOD path``."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: dict[tuple[str, str], list[bytes]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        body = await response.aread()
        if response.status_code == 200:
            key = (request.method, request.url.path)
            self.bodies.setdefault(key, []).append(body)
        return httpx.Response(response.status_code, headers=response.headers, content=body)
