"""A simulator running in a background thread, for CLI tests that run their own event loop; and
``use_db``, which points the commands at a database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer

SIM_KEY = "mx0vglCliTestKey1"
SIM_SECRET = "00112233445566778899aabbccddeeff"


@pytest.fixture
def threaded_sim() -> Iterator[SimServer]:
    """A simulator on an ephemeral 127.0.0.1 port, served from its own thread and loop."""
    config = SimConfig(
        symbols=("BTCUSDT", "ETHUSDT"),
        accounts={SIM_KEY: SIM_SECRET},
        balances={"USDT": Decimal(1000)},
        history_minutes=1200,
        tick_interval=None,
    )
    server = SimServer(SimExchange(config))
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with server:
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "simulator did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


@pytest.fixture
def use_db(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``use_db(url)``: the commands read ``url`` as CDB_DATABASE_URL."""
    return lambda url: monkeypatch.setenv("CDB_DATABASE_URL", url)
