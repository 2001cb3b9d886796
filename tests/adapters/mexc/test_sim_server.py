"""The simulator's control endpoints and its own rate limit, over real HTTP."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.engine.errors import RateLimited

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
