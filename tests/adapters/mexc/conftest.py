"""The simulator in process on an ephemeral 127.0.0.1 port, and clients pointed at it.

Async tests run on anyio's pytest plugin (``pytestmark = pytest.mark.anyio``) with asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer

API_KEY = "mx0vglTestKey0001"
SECRET = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "mx0vglTestKey0002"
OTHER_SECRET = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim_config() -> SimConfig:
    """Two accounts with 10 000 USDT and 1 BTC each; the market moves only when a test steps it."""
    return SimConfig(
        symbols=("BTCUSDT", "ETHUSDT"),
        accounts={API_KEY: SECRET, OTHER_KEY: OTHER_SECRET},
        balances={"USDT": Decimal(10_000), "BTC": Decimal(1)},
        seed=7,
        history_minutes=600,
        tick_interval=None,
        idle_without_subscription=30.0,
        idle_without_messages=60.0,
    )


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimServer]:
    """A running simulator: ``sim.exchange`` is its state, ``sim.rest_url`` its URL."""
    async with SimServer(SimExchange(sim_config)) as server:
        yield server


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[MexcHttpClient]:
    """The real REST client with the first account's keys, fast backoff."""
    async with MexcHttpClient(
        sim.rest_url,
        Credentials(API_KEY, SECRET),
        backoff_base=0.01,
        backoff_max=0.05,
        timeout=5.0,
    ) as http:
        yield http
