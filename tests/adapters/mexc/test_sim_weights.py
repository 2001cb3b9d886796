"""The request weights the simulator charges against its ``rate_limit`` (sim/weights.py): MEXC's
"Weight(IP)" of each endpoint (spot v3 docs)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.sim.weights import weight


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
