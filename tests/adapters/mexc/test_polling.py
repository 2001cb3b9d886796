"""Polling keeps orders current (simulator): under 429, without the stream, after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.sim import SimConfig, SimServer
from cdb_cli.adapters.mexc.tracker import NEVER_REACHED
from cdb_cli.engine.events import Side

from .conftest import API_KEY
from .execution_kit import (
    BTC,
    fills,
    new_client,
    reached,
    record,
    states,
    thin_levels,
    updates_until,
    wait_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    return thin_levels(sim_config)


@pytest.fixture
async def live(client: MexcHttpClient, sim: SimServer) -> AsyncIterator[MexcExecutionClient]:
    """Started: user stream connected, polling every 0.2 s."""
    execution = new_client(client, sim.ws_url)
    await execution.start()
    assert execution.stream is not None
    await execution.stream.wait_connected(5)
    yield execution
    await execution.stop()


async def test_polling_under_429_waits_for_retry_after(
    client: MexcHttpClient, sim: SimServer
) -> None:
    execution = new_client(client, poll_interval_s=0.02)
    price = sim.exchange.markets[BTC].price - 50
    placed = await execution.place(
        record("rl-2", Side.BUY, "LIMIT", quantity=Decimal("0.001"), price=price)
    )
    assert placed.status == "NEW"
    await execution.start()
    try:
        await wait_for(lambda: execution.counters["polls"] >= 2)  # polling every 20 ms
        sim.exchange.faults.update({"http_429": 1000, "retry_after": 1.0})
        start = time.monotonic()
        await asyncio.sleep(4.5)  # a rate is measured over a span: no condition to wait for
        hits = [at for at, _, _ in sim.requests if at >= start]
        assert len(hits) <= 7  # about one a second, not one per 20 ms poll
        assert client.limits.waited_out >= 1  # waited out by the client, not an error
        sim.exchange.faults.update({"http_429": 0})
        await sim.step({BTC: price - 1})
        seen = await updates_until(execution, reached("rl-2", "FILLED"), within=8)
        assert fills(seen, "rl-2")
    finally:
        await execution.stop()


async def test_dead_user_stream_polling_still_delivers_the_fill(
    live: MexcExecutionClient, sim: SimServer
) -> None:
    stream = live.stream
    assert stream is not None
    price = sim.exchange.markets[BTC].price - 30
    placed = await live.place(
        record("ws-1", Side.BUY, "LIMIT", quantity=Decimal("0.001"), price=price)
    )
    await updates_until(live, reached("ws-1", "NEW"))
    sim.exchange.faults.update({"ws_stalled": True})  # reconnects get no ack, pushes go nowhere
    assert sim.drop_connections() >= 1  # the private socket is cut too
    await wait_for(lambda: stream.counters["reconnects"] >= 1)
    await sim.step({BTC: price - 1})
    seen = await updates_until(live, reached("ws-1", "FILLED"))
    got = fills(seen, "ws-1")
    assert sum(f.quantity for f in got) == Decimal("0.001")
    assert live.counters["fills_from_poll"] == len(got)
    assert live.counters["fills_from_stream"] == 0
    assert states(seen, "ws-1")[-1].venue_order_id == placed.venue_order_id
    sim.exchange.faults.update({"ws_stalled": False})
    await stream.wait_connected(5)
    assert stream.counters["connects"] >= 2
    assert any(c.account == API_KEY and c.topics for c in sim.connections)


async def test_restored_orders_are_resolved_by_their_client_order_id(
    client: MexcHttpClient, sim: SimServer
) -> None:
    # Sent before a crash, ack lost: MEXC has it, the store only knows the client order id.
    await client.new_order(
        BTC, "BUY", "MARKET", quote_order_qty=Decimal(40), client_order_id="rs-1"
    )
    execution = new_client(client, poll_interval_s=0.05)
    execution.track(record("rs-1", Side.BUY, quote=Decimal(40)))
    execution.track(record("rs-2", Side.BUY, quote=Decimal(40)))  # written, never sent
    execution.track(record("rs-3", Side.BUY, quote=Decimal(40), status="FILLED"))  # done: ignored
    assert sorted(execution.tracked()) == ["rs-1", "rs-2"]
    await execution.start()
    try:
        seen = await updates_until(
            execution,
            lambda s: reached("rs-1", "FILLED")(s) and reached("rs-2", "REJECTED")(s),
        )
    finally:
        await execution.stop()
    assert fills(seen, "rs-1")
    assert states(seen, "rs-2")[-1].reason == NEVER_REACHED
    assert execution.tracked() == []
