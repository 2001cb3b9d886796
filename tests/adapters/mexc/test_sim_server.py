"""The simulator's control endpoints and its own rate limit, over real HTTP."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.engine.errors import RateLimited, VenueServerError

from .conftest import API_KEY, SECRET

pytestmark = pytest.mark.anyio


async def test_faults_are_set_and_read_over_http(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as raw:
        changed = await raw.post("/_sim/faults", json={"http_5xx": 1, "delay": 0.01})
        assert changed.json()["http_5xx"] == 1
        refused = await raw.post("/_sim/faults", json={"bogus": 1})
        assert refused.status_code == 400
        failed = await raw.get("/api/v3/ping")
        assert (failed.status_code, failed.json()["code"]) == (503, 503)
        assert (await raw.get("/api/v3/ping")).status_code == 200
        stepped = await raw.post("/_sim/step", json={"prices": {"BTCUSDT": "31000"}})
        assert stepped.json()["BTCUSDT"] == "31000.00"
        assert (await raw.post("/_sim/drop")).json() == {"dropped": 0}


async def test_clock_offset_and_accept_then_5xx_over_http(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as raw:
        changed = await raw.post(
            "/_sim/faults", json={"clock_offset_ms": -30_000, "accept_then_5xx": 1}
        )
        assert (changed.json()["clock_offset_ms"], changed.json()["accept_then_5xx"]) == (
            -30_000,
            1,
        )
        server_ms = (await raw.get("/api/v3/time")).json()["serverTime"]
        assert abs(server_ms + 30_000 - time.time() * 1000) < 2_000
        assert (await raw.get("/api/v3/ping")).status_code == 200  # only placements count
    assert sim.exchange.faults.accept_then_5xx == 1
    async with MexcHttpClient(sim.rest_url, Credentials(API_KEY, SECRET)) as client:
        with pytest.raises(VenueServerError):
            await client.new_order(
                "BTCUSDT", "BUY", "MARKET", quote_order_qty=Decimal(20), client_order_id="a-1"
            )  # signed with the offset it measured: MEXC's time is 30 s behind ours
        assert (await client.query_order("BTCUSDT", client_order_id="a-1")).status == "FILLED"
    assert sim.exchange.faults.accept_then_5xx == 0


async def test_configured_rate_limit_answers_429_with_retry_after(sim_config: SimConfig) -> None:
    config = replace(sim_config, rate_limit=3)
    async with SimServer(SimExchange(config)) as server:
        async with httpx.AsyncClient(base_url=server.rest_url) as raw:
            codes = [(await raw.get("/api/v3/ping")).status_code for _ in range(4)]
            limited = await raw.get("/api/v3/ping")
        assert codes == [200, 200, 200, 429]
        assert int(limited.headers["Retry-After"]) >= 1
        async with MexcHttpClient(server.rest_url, max_attempts=1) as client:
            with pytest.raises(RateLimited) as caught:
                await client.ping()
        assert caught.value.retry_after is not None
