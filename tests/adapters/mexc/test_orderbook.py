"""``LocalOrderBook`` built the documented MEXC way from the simulator: its REST snapshot plus its
diff-depth pushes equal the simulator's own book after every push, and the book is never crossed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from websockets.asyncio.client import ClientConnection, connect

from cdb_cli.adapters.mexc.decoder import BadValue
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.orderbook import DepthUpdate, LocalOrderBook, OutOfSync, parse_depth
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.sim import SimServer

pytestmark = pytest.mark.anyio

BTC = "BTCUSDT"
DEPTH = f"spot@public.aggre.depth.v3.api.pb@10ms@{BTC}"
PUSHES = 40


@pytest.fixture
async def depth_socket(sim: SimServer) -> AsyncIterator[ClientConnection]:
    """A socket subscribed to BTCUSDT's diff depth (the ack is read)."""
    async with connect(sim.ws_url) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [DEPTH], "id": 1}))
        async with asyncio.timeout(5):
            ack = json.loads(await ws.recv())
        assert ack == {"id": 1, "code": 0, "msg": DEPTH}
        yield ws


async def next_push(ws: ClientConnection) -> DepthUpdate:
    async with asyncio.timeout(5):
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                return parse_depth(frame)


def sim_book(sim: SimServer, side: str) -> dict[Decimal, Decimal]:
    return dict(sim.exchange.books[BTC].side_levels(side))


def prices(sim: SimServer) -> list[Decimal]:
    """A path of prices moving by 1 to 12 ticks each step (so every step changes the book)."""
    market = sim.exchange.markets[BTC]
    tick, start = market.instrument.tick_size, market.price
    path = [start + tick * ((i * 7) % 25 - 12) for i in range(1, PUSHES + 1)]
    path = [p + tick * 13 if p == q else p for p, q in zip(path, [start, *path], strict=False)]
    assert all(a != b for a, b in zip([start, *path], path, strict=False))
    return path


async def taker(sim: SimServer, client: MexcHttpClient, side: str) -> None:
    """A market order worth about 1.2 levels of the book."""
    market = sim.exchange.markets[BTC]
    quantity = (Decimal(6000) / market.price).quantize(market.instrument.step_size)
    await client.new_order(BTC, side, "MARKET", quantity=quantity)


async def test_snapshot_plus_pushes_equal_the_simulators_book_after_every_push(
    sim: SimServer, client: MexcHttpClient, depth_socket: ClientConnection
) -> None:
    local, late = LocalOrderBook(), LocalOrderBook()
    path = prices(sim)
    for price in path[:3]:  # step 1: pushes arrive before the snapshot and are buffered
        await sim.step(prices={BTC: price})
        local.push(await next_push(depth_socket))
    assert len(local.buffered) == 3
    assert local.version is None
    snap = await client.depth(BTC, 1000)
    assert snap.last_update_id > local.buffered[-1].to_version  # the snapshot is ahead of them
    local.snapshot(snap.last_update_id, snap.bids, snap.asks)
    assert local.buffered == []
    removed = 0
    for i, price in enumerate(path[3:]):
        if i % 5 == 2:  # a taker consumes levels between steps: quantities change, not prices
            await taker(sim, client, "BUY" if i % 2 else "SELL")
        if i == 10:  # a second book joins mid-stream from its own snapshot
            snap = await client.depth(BTC, 1000)
            late.snapshot(snap.last_update_id, snap.bids, snap.asks)
        await sim.step(prices={BTC: price})
        update = await next_push(depth_socket)
        removed += sum(q == 0 for _, q in update.asks + update.bids)
        assert update.last_order_create_time > 0  # 2026 field
        local.push(update)
        assert (local.bids, local.asks) == (sim_book(sim, "bids"), sim_book(sim, "asks"))
        best = local.best()
        assert best is not None
        assert best[0] < best[1]
        if i >= 10:
            late.push(update)
            assert (late.bids, late.asks) == (local.bids, local.asks)
    assert removed > 0  # levels that left the book were sent as "0" and removed
    assert late.joined
    assert local.version == late.version


async def test_a_missed_push_is_a_gap_that_asks_for_a_new_snapshot(
    sim: SimServer, client: MexcHttpClient, depth_socket: ClientConnection
) -> None:
    local = LocalOrderBook()
    snap = await client.depth(BTC, 1000)
    local.snapshot(snap.last_update_id, snap.bids, snap.asks)
    first, second, third = prices(sim)[:3]
    await sim.step(prices={BTC: first})
    local.push(await next_push(depth_socket))
    await sim.step(prices={BTC: second})
    await next_push(depth_socket)  # lost
    await sim.step(prices={BTC: third})
    with pytest.raises(OutOfSync):
        local.push(await next_push(depth_socket))
    assert local.version is None
    assert local.bids == {}


def test_a_snapshot_newer_than_the_first_push_is_a_gap() -> None:
    local = LocalOrderBook()
    local.push(DepthUpdate(BTC, 15, 17, (), ((Decimal(1), Decimal(2)),), 0))
    with pytest.raises(OutOfSync):
        local.snapshot(12, (), ())


@pytest.mark.parametrize(
    ("from_version", "to_version", "quantity"),
    [("5", "4", "1"), ("", "4", "1"), ("1e3", "2000", "1"), ("5", "6", "-1")],
)
def test_bad_depth_frames_are_refused(from_version: str, to_version: str, quantity: str) -> None:
    wrapper = PushDataV3ApiWrapper(channel=DEPTH, symbol=BTC)
    wrapper.publicAggreDepths.fromVersion = from_version
    wrapper.publicAggreDepths.toVersion = to_version
    level = wrapper.publicAggreDepths.bids.add()
    level.price, level.quantity = "100", quantity
    with pytest.raises(BadValue):
        parse_depth(wrapper.SerializeToString())


def test_a_repeated_push_is_skipped_not_a_gap() -> None:
    local = LocalOrderBook()
    local.snapshot(10, ((Decimal(99), Decimal(1)),), ((Decimal(101), Decimal(1)),))
    first = DepthUpdate(BTC, 10, 12, ((Decimal(101), Decimal(0)),), (), 0)
    local.push(first)
    local.push(first)  # the network (or the simulator's duplicate fault) sent it twice
    local.push(DepthUpdate(BTC, 13, 13, ((Decimal(102), Decimal(3)),), (), 0))
    assert local.asks == {Decimal(102): Decimal(3)}
    assert local.version == 13
