"""The request weights (weights.py) the simulator charges against its ``rate_limit`` and the client
against its own budget: MEXC's "Weight(IP)" of each endpoint (spot v3 docs); and a 429 burst
against the simulator's budget, waited out by the client."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.weights import weight

from .conftest import API_KEY, SECRET


@pytest.mark.parametrize(
    ("method", "path", "has_symbol", "expected"),
    [
        ("GET", "ping", False, 1),
        ("GET", "exchangeInfo", False, 10),
        ("GET", "depth", True, 1),
        ("GET", "trades", True, 5),
        ("GET", "ticker/24hr", True, 1),
        ("GET", "ticker/24hr", False, 40),
        ("GET", "ticker/price", False, 2),
        ("GET", "ticker/bookTicker", False, 1),
        ("GET", "order", True, 2),
        ("POST", "order", True, 1),
        ("GET", "openOrders", True, 3),
        ("GET", "allOrders", True, 10),
        ("GET", "account", False, 10),
        ("GET", "myTrades", True, 10),
        ("GET", "tradeFee", True, 20),
        ("GET", "capital/config/getall", False, 10),
    ],
)
def test_documented_weights(method: str, path: str, has_symbol: bool, expected: int) -> None:
    assert weight(method, path, has_symbol) == expected


@pytest.mark.anyio
async def test_requests_cost_their_documented_weight(sim_config: SimConfig) -> None:
    config = replace(sim_config, rate_limit=45)
    async with (
        SimServer(SimExchange(config)) as server,
        httpx.AsyncClient(base_url=server.rest_url) as raw,
    ):
        every = await raw.get("/api/v3/ticker/24hr")  # every symbol: 40
        one = await raw.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"})  # 1
        info = await raw.get("/api/v3/exchangeInfo")  # 10: over 45
        ping = await raw.get("/api/v3/ping")  # 1: still fits
    assert [r.status_code for r in (every, one, info, ping)] == [200, 200, 429, 200]
    assert int(info.headers["Retry-After"]) >= 1


@pytest.mark.anyio
async def test_a_429_burst_is_waited_out_without_an_error(sim_config: SimConfig) -> None:
    """Issue 25's line: a burst far over the simulator's budget (weight 20 per 10 s) — reads and
    orders at once — all succeed; the client waited out every 429, placed each order once."""
    config = replace(sim_config, rate_limit=20)
    async with (
        SimServer(SimExchange(config)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as client,
    ):
        await client.sync_time()
        started = time.monotonic()
        reads = [client.book_ticker("BTCUSDT") for _ in range(24)]
        orders = [
            client.new_order(
                "BTCUSDT", "BUY", "MARKET", quote_order_qty=Decimal(20), client_order_id=f"b{i}"
            )
            for i in range(3)
        ]
        answers = await asyncio.gather(*reads, *orders)
        elapsed = time.monotonic() - started
        limited = [r for r in server.requests if r[0] >= started]
    tickers, placed = answers[:24], answers[24:]
    assert [t.symbol for t in tickers] == ["BTCUSDT"] * 24
    assert all(p is not None for p in placed)
    account = server.exchange.accounts[API_KEY]
    assert sorted(o.client_order_id or "" for o in account.orders.values()) == ["b0", "b1", "b2"]
    assert client.limits.waited_out >= 1  # 27 weight over a budget of 20
    assert len(limited) == 27 + client.limits.waited_out  # each 429 cost exactly one more request
    assert client.limits.waited_out < 27  # fewer 429s than requests: the budget learned
    assert client.limits.weights.throttled >= 1
    assert client.limits.weights.budget < client.limits.weights.limit
    assert 5 < elapsed < 40, elapsed  # one or two 10 s windows waited out
