"""``serve``: the loop behind ``cdb sim-exchange``, with its periodic drops and stalls."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from market_testkit import eventually

from cdb_cli.adapters.mexc.sim import SimConfig, SimServer
from cdb_cli.adapters.mexc.sim.run import serve
from cdb_cli.adapters.mexc.ws import MexcDataClient, deals_topic

pytestmark = pytest.mark.anyio


async def test_periodic_drops_and_stalls_are_survived(sim_config: SimConfig) -> None:
    config = replace(sim_config, tick_interval=0.05)
    servers: list[SimServer] = []
    ready = asyncio.Event()

    def on_ready(server: SimServer) -> None:
        servers.append(server)
        ready.set()

    task = asyncio.create_task(
        serve(
            config,
            host="127.0.0.1",
            port=0,
            faults={"http_5xx": 1},
            drop_every=0.7,
            stall_every=1.1,
            stall_for=0.8,
            duration=10,
            on_ready=on_ready,
        )
    )
    try:
        async with asyncio.timeout(5):
            await ready.wait()
        (server,) = servers
        assert server.exchange.faults.http_5xx == 1  # flag faults are applied at start
        client = MexcDataClient(
            server.ws_url,
            [deals_topic("BTCUSDT")],
            ping_interval=0.2,
            idle_timeout=0.5,
            ack_timeout=0.5,
            backoff_base=0.05,
            backoff_max=0.2,
        )
        async with client:
            await eventually(
                lambda: (
                    client.counters["reconnects"] >= 2 and client.counters["idle_timeouts"] >= 1
                ),
                timeout_s=8,
                what="a stall detected and two reconnects",
            )
            assert client.counters["idle_timeouts"] >= 1  # a stall was detected as a dead socket
            assert client.counters["reconnects"] >= 2
            ids = []
            while not client.events.empty():
                ids.append(client.events.get_nowait().event_id)
        assert ids
        assert len(ids) == len(set(ids))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
