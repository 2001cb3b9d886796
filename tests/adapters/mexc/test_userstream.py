"""``MexcUserStream`` against the simulator: listenKey lifecycle and private pushes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest
from market_testkit import eventually
from websockets.asyncio.client import connect

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.private import BalanceUpdate, FillUpdate, OrderUpdate, PrivateDecoder
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.userstream import PRIVATE_CHANNELS, MexcUserStream

from .conftest import API_KEY, OTHER_KEY, OTHER_SECRET

pytestmark = pytest.mark.anyio

BTC = "BTCUSDT"
FAST = {"ping_interval": 0.5, "idle_timeout": 5.0, "ack_timeout": 2.0, "backoff_base": 0.05}


@pytest.fixture
async def stream(client: MexcHttpClient, sim: SimServer) -> AsyncIterator[MexcUserStream]:
    async with MexcUserStream(client, sim.ws_url, **FAST) as user:  # type: ignore[arg-type]
        await user.wait_connected(5)
        yield user


async def next_updates(stream: MexcUserStream, count: int) -> list[object]:
    async with asyncio.timeout(5):
        return [await stream.updates.get() for _ in range(count)]


async def test_order_fill_and_balance_updates_follow_rest_activity(
    client: MexcHttpClient, stream: MexcUserStream
) -> None:
    ticker = await client.book_ticker(BTC)
    quantity = (ticker.ask_qty * Decimal("1.5")).quantize(Decimal("0.000001"))
    placed = await client.new_order(
        BTC, "BUY", "LIMIT", quantity=quantity, price=ticker.ask, client_order_id="us-1"
    )
    assert placed is not None
    fill, order, *balances = await next_updates(stream, 4)
    assert isinstance(fill, FillUpdate)
    assert (fill.order_id, fill.client_order_id, fill.side) == (placed.order_id, "us-1", "BUY")
    assert (fill.price, fill.quantity, fill.fee_asset) == (ticker.ask, ticker.ask_qty, "BTC")
    assert isinstance(order, OrderUpdate)
    assert (order.status, order.type, order.cumulative_quantity) == (
        "PARTIALLY_FILLED",
        "LIMIT",
        ticker.ask_qty,
    )
    rest = await client.account()
    assert {b.asset: (b.free, b.locked) for b in balances if isinstance(b, BalanceUpdate)} == {
        asset: (rest[asset].free, rest[asset].locked) for asset in ("BTC", "USDT")
    }

    await client.cancel_order(BTC, order_id=placed.order_id)
    canceled, usdt = await next_updates(stream, 2)
    assert isinstance(canceled, OrderUpdate)
    assert canceled.status == "PARTIALLY_CANCELED"
    assert isinstance(usdt, BalanceUpdate)
    assert (usdt.asset, usdt.locked, usdt.change_type) == ("USDT", 0, "ENTRUST_CANCEL")
    assert usdt.locked_change < 0
    assert stream.stale(10) == []


async def test_other_accounts_activity_is_not_pushed(
    client: MexcHttpClient, sim: SimServer, stream: MexcUserStream
) -> None:
    async with MexcHttpClient(sim.rest_url, Credentials(OTHER_KEY, OTHER_SECRET)) as other:
        await other.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(50))
    # then an order of ours: pushed in order, anything of the other's would come before it
    await client.new_order(
        BTC, "BUY", "MARKET", quote_order_qty=Decimal(20), client_order_id="ours-1"
    )
    updates: list[object] = []
    async with asyncio.timeout(5):
        while not any(isinstance(u, OrderUpdate) and u.status == "FILLED" for u in updates):
            updates.append(await stream.updates.get())
    assert {u.client_order_id for u in updates if isinstance(u, OrderUpdate | FillUpdate)} == {
        "ours-1"
    }
    spent = [u.free_change for u in updates if isinstance(u, BalanceUpdate) and u.asset == "USDT"]
    assert Decimal(-50) not in spent  # the other's buy


async def test_failed_keepalive_gets_a_new_key_and_reconnects(
    client: MexcHttpClient, sim: SimServer
) -> None:
    async with MexcUserStream(client, sim.ws_url, keepalive_interval=0.2, **FAST) as user:  # type: ignore[arg-type]
        await user.wait_connected(5)
        first = user.listen_key
        assert first is not None
        sim.exchange.listen_keys.close(API_KEY, first)  # the key expires on MEXC's side
        await eventually(
            lambda: user.counters["listen_keys"] >= 2 and user.counters["connects"] >= 2,
            timeout_s=5,
            what="a new listen key and a reconnect",
        )
        await user.wait_connected(5)
        assert user.listen_key not in (None, first)
        assert user.counters["keepalive_failures"] >= 1
        await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(20))
        updates = await next_updates(user, 2)
    assert any(isinstance(u, OrderUpdate) and u.status == "FILLED" for u in updates)
    assert sim.exchange.listen_keys.valid(API_KEY) == []  # stop() closed the key


async def test_invalid_listen_key_and_private_topics_without_one(sim: SimServer) -> None:
    async with connect(f"{sim.ws_url}?listenKey=bogus") as ws:
        assert await ws.recv() == "Invalid listen key"
    async with connect(sim.ws_url) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [PRIVATE_CHANNELS[0]]}))
        reply = json.loads(await ws.recv())
    assert reply["code"] == 0
    assert reply["msg"].startswith("Not Subscribed successfully!")


async def test_resting_fill_is_pushed_when_the_market_moves(
    sim_config: SimConfig,
) -> None:
    async with (
        SimServer(SimExchange(replace(sim_config, tick_interval=None))) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, sim_config.accounts[API_KEY])) as c,
        MexcUserStream(c, server.ws_url, **FAST) as user,  # type: ignore[arg-type]
    ):
        await user.wait_connected(5)
        ticker = await c.book_ticker(BTC)
        price = ticker.bid - Decimal(10)
        await c.new_order(BTC, "BUY", "LIMIT", quantity=Decimal("0.01"), price=price)
        (placed, _usdt) = await next_updates(user, 2)
        assert isinstance(placed, OrderUpdate)
        assert placed.status == "NEW"
        await server.step({BTC: price - Decimal(5)})
        fill, order, *_ = await next_updates(user, 3)
    assert isinstance(fill, FillUpdate)
    assert fill.is_maker
    assert fill.fee == 0
    assert isinstance(order, OrderUpdate)
    assert order.status == "FILLED"


def test_private_decoder_counts_bad_frames() -> None:
    from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper

    decoder = PrivateDecoder()
    wrapper = PushDataV3ApiWrapper(channel=PRIVATE_CHANNELS[0], symbol=BTC)
    wrapper.privateOrders.status = 9
    wrapper.privateOrders.tradeType = 1
    wrapper.privateOrders.orderType = 1
    assert decoder.decode(wrapper.SerializeToString()) == (PRIVATE_CHANNELS[0], None)
    assert decoder.decode(b"\xff\xff") == ("", None)
    public = PushDataV3ApiWrapper(channel="x")
    public.publicAggreBookTicker.bidPrice = "1"
    assert decoder.decode(public.SerializeToString()) == ("x", None)
    assert decoder.bad == {"bad_value": 1, "malformed_protobuf": 1, "not_private": 1}
