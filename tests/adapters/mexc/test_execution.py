"""``MexcExecutionClient`` against the in-process simulator: the port's calls end to end.

Placing under faults is in test_placing.py, polling in test_polling.py, signing and the clock in
test_clockguard.py; what is published when, without the simulator, in test_tracker.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.sim import SimConfig, SimServer
from cdb_cli.engine.errors import VenueRejected
from cdb_cli.engine.events import Side
from cdb_cli.engine.ports.execution import ExecutionClient, VenueFill

from .conftest import API_KEY
from .execution_kit import (
    BTC,
    drain,
    fills,
    new_client,
    quiet_client,
    reached,
    record,
    sim_orders,
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


@pytest.fixture
async def quiet(client: MexcHttpClient) -> MexcExecutionClient:
    """Not started: only the requests a test makes reach the simulator."""
    return await quiet_client(client)


async def test_it_is_an_execution_client(live: MexcExecutionClient) -> None:
    port: ExecutionClient = live  # mypy checks this line; at runtime: the attributes exist
    assert port.signing_ok
    assert isinstance(port.updates, asyncio.Queue)


async def test_market_buy_by_quote_amount_fills_with_the_real_commission(
    live: MexcExecutionClient, client: MexcHttpClient, sim: SimServer
) -> None:
    placed = await live.place(record("mb-1", Side.BUY, quote=Decimal("100.129")))
    assert placed.status in {"NEW", "FILLED"}
    assert placed.venue_order_id
    seen = await updates_until(live, reached("mb-1", "FILLED"))
    (order,) = sim_orders(sim, "mb-1")
    assert order.orig_quote_qty == Decimal("100.12")  # rounded down to the quote tick
    final = states(seen, "mb-1")[-1]
    got = fills(seen, "mb-1")
    assert got
    assert sum(f.quantity for f in got) == final.filled_quantity
    assert sum(f.quantity * f.price for f in got) == final.filled_quote
    taker = (await live.instrument(BTC)).taker_fee
    assert all(f.fee_asset == "BTC" and f.fee == f.quantity * taker for f in got)
    assert all(f.liquidity == "taker" and f.venue_order_id == placed.venue_order_id for f in got)
    trades = await client.my_trades(BTC, order_id=placed.venue_order_id)
    assert {(f.fill_id, f.quantity, f.price, f.fee, f.fee_asset) for f in got} == {
        (t.trade_id, t.qty, t.price, t.commission, t.commission_asset) for t in trades
    }
    polls = live.counters["polls"]
    await wait_for(lambda: live.counters["polls"] >= polls + 3)  # polls see it: nothing new
    assert [u for u in drain(live) if isinstance(u, VenueFill)] == []
    assert "mb-1" not in live.tracked()  # done: no longer polled


async def test_limit_order_fills_partially_step_by_step_then_cancel_is_partially_canceled(
    client: MexcHttpClient, sim: SimServer
) -> None:
    live = new_client(client, sim.ws_url, poll_interval_s=60)  # fills come by the stream alone
    await live.start()
    try:
        await check_limit_order_story(live, client, sim)
    finally:
        await live.stop()


async def check_limit_order_story(
    live: MexcExecutionClient, client: MexcHttpClient, sim: SimServer
) -> None:
    assert live.stream is not None
    await live.stream.wait_connected(5)
    market = sim.exchange.markets[BTC]
    market.instrument = replace(market.instrument, maker_fee=Decimal("0.00023"))  # not zero
    limit = market.price - 20 * market.instrument.tick_size
    level = sim.exchange.books[BTC].level_qty()
    quantity = (level * Decimal("3.5")).quantize(Decimal("0.000001"))
    placed = await live.place(
        record("lim-1", Side.BUY, "LIMIT", quantity=quantity, price=limit + Decimal("0.001"))
    )
    assert placed.status == "NEW"
    (order,) = sim_orders(sim, "lim-1")
    assert order.price == limit + market.instrument.tick_size  # a buy price rounds up
    await sim.step({BTC: limit - market.instrument.tick_size})  # the ask reaches our bid
    seen = await updates_until(live, reached("lim-1", "PARTIALLY_FILLED"))
    await sim.step({BTC: limit - 2 * market.instrument.tick_size})
    seen += await updates_until(
        live, lambda s: sum(f.quantity for f in fills(seen + s, "lim-1")) > level
    )
    canceled = await live.cancel(BTC, "lim-1")
    assert canceled.status == "PARTIALLY_CANCELED"
    assert 0 < canceled.filled_quantity < quantity
    await live.poll_once()  # polling agrees: nothing new
    seen += drain(live)
    got = fills(seen, "lim-1")
    assert sum(f.quantity for f in got) == canceled.filled_quantity
    assert [s.status for s in states(seen, "lim-1")][-1] == "PARTIALLY_CANCELED"
    assert [s.status for s in states(seen, "lim-1")].count("PARTIALLY_CANCELED") == 1
    trades = await client.my_trades(BTC, order_id=placed.venue_order_id)
    assert sorted(
        (f.fill_id, f.quantity, f.price, f.fee, f.fee_asset, f.liquidity) for f in got
    ) == sorted(
        (t.trade_id, t.qty, t.price, t.commission, t.commission_asset, "maker") for t in trades
    )
    assert all(f.fee == f.quantity * Decimal("0.00023") and f.fee_asset == "BTC" for f in got)
    assert live.counters["fills_from_stream"] == len(got)
    assert (await live.query(BTC, "lim-1")) == canceled


async def test_market_sell_by_quantity_fee_in_quote(quiet: MexcExecutionClient) -> None:
    placed = await quiet.place(record("ms-1", Side.SELL, quantity=Decimal("0.0123456789")))
    assert placed.status == "NEW"  # the POST answer; the rest comes by query or polling
    state = await quiet.query(BTC, "ms-1")
    assert state is not None
    assert (state.status, state.filled_quantity) == ("FILLED", Decimal("0.012345"))
    got = fills(drain(quiet), "ms-1")
    assert got
    assert all(f.fee_asset == "USDT" and f.side is Side.SELL for f in got)


async def test_query_cancel_open_orders_balances(
    quiet: MexcExecutionClient, client: MexcHttpClient, sim: SimServer
) -> None:
    assert await quiet.query(BTC, "nope") is None
    with pytest.raises(VenueRejected):
        await quiet.cancel(BTC, "nope")
    price = sim.exchange.markets[BTC].price - 100
    await quiet.place(record("oo-1", Side.BUY, "LIMIT", quantity=Decimal("0.002"), price=price))
    await client.new_order(
        BTC, "BUY", "LIMIT", quantity=Decimal("0.003"), price=price, client_order_id="web-7"
    )
    found = {s.client_order_id: s for s in await quiet.open_orders([BTC, "ETHUSDT"])}
    assert set(found) == {"oo-1", "web-7"}
    assert found["web-7"].side is Side.BUY
    assert found["oo-1"].status == "NEW"
    balances = await quiet.balances()
    account = await client.account()
    assert balances == {a: b.free + b.locked for a, b in account.items()}
    assert balances["USDT"] == Decimal(10_000)  # locked counts
    canceled = await quiet.cancel(BTC, "oo-1")
    assert canceled.status == "CANCELED"


async def test_fills_paginate_through_every_trade(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    account = sim.exchange.accounts[API_KEY]
    for _ in range(130):
        sim.exchange.place_order(
            account, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quoteOrderQty": "5"}
        )
        await asyncio.sleep(0.002)  # distinct trade times, as at a real venue
    everything = await quiet.fills(BTC)
    assert len(everything) == len(account.trades) >= 130
    assert len({f.fill_id for f in everything}) == len(everything)
    assert [f.ts_ns for f in everything] == sorted(f.ts_ns for f in everything)
    middle = everything[60].ts_ns
    later = await quiet.fills(BTC, since_ns=middle)
    assert [f.fill_id for f in later] == [f.fill_id for f in everything if f.ts_ns >= middle]
    one = everything[0].venue_order_id
    assert {f.venue_order_id for f in await quiet.fills(BTC, venue_order_id=one)} == {one}


async def test_pushes_and_trades_without_client_ids_are_attributed_by_venue_order_id(
    client: MexcHttpClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"hide_client_ids": True})
    live = new_client(client, sim.ws_url, poll_interval_s=60)  # the stream alone
    await live.start()
    try:
        assert live.stream is not None
        await live.stream.wait_connected(5)
        placed = await live.place(record("hc-1", Side.BUY, quote=Decimal(60)))
        seen = await updates_until(live, reached("hc-1", "FILLED"))
        price = sim.exchange.markets[BTC].price - 25
        await live.place(
            record("hc-2", Side.SELL, "LIMIT", quantity=Decimal("0.002"), price=price + 50)
        )
        await sim.step({BTC: price + 60})
        seen += await updates_until(live, reached("hc-2", "FILLED"))
    finally:
        await live.stop()
    for client_id in ("hc-1", "hc-2"):
        got = fills(seen, client_id)
        assert got
        assert sum(f.quantity for f in got) == states(seen, client_id)[-1].filled_quantity
    assert live.counters["fills_from_stream"] == len(fills(seen, "hc-1") + fills(seen, "hc-2"))
    trades = await live.fills(BTC, venue_order_id=placed.venue_order_id)  # myTrades: ids null
    assert {f.client_order_id for f in trades} == {"hc-1"}


async def test_stop_closes_the_listen_key(client: MexcHttpClient, sim: SimServer) -> None:
    execution = new_client(client, sim.ws_url)
    await execution.start()
    assert execution.stream is not None
    await execution.stream.wait_connected(5)
    assert len(sim.exchange.listen_keys.valid(API_KEY)) == 1
    await execution.stop()
    assert sim.exchange.listen_keys.valid(API_KEY) == []
