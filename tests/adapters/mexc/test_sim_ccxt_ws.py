"""Contract test over the WebSocket: ccxt's own MEXC order-book builder (ccxt.pro, unpatched but for
its URLs) keeps the simulator's book from the diff-depth channel and the REST snapshot (issue 25).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.pro as ccxt_pro
import pytest

from cdb_cli.adapters.mexc.sim import SimServer

from .test_sim_ccxt import point_at

pytestmark = pytest.mark.anyio

BTC = "BTC/USDT"


@pytest.fixture
async def mexc_ws(sim: SimServer) -> AsyncIterator[ccxt_pro.mexc]:
    exchange = ccxt_pro.mexc({"enableRateLimit": False})
    point_at(exchange, sim.rest_url)
    exchange.urls["api"]["ws"] = {"spot": sim.ws_url, "swap": sim.ws_url}
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def book_of(sim: SimServer, side: str) -> list[tuple[Decimal, Decimal]]:
    return sim.exchange.books["BTCUSDT"].side_levels(side)


async def test_ccxts_order_book_builder_keeps_the_simulators_book(
    mexc_ws: ccxt_pro.mexc, sim: SimServer
) -> None:
    market = sim.exchange.markets["BTCUSDT"]
    tick = market.instrument.tick_size
    watch = asyncio.ensure_future(mexc_ws.watch_order_book(BTC))
    steps = 0
    async with asyncio.timeout(20):  # ccxt buffers 25 pushes before it reads the snapshot
        while not watch.done():
            steps += 1
            await sim.step(prices={"BTCUSDT": market.price + tick * (1 if steps % 2 else -3)})
            await asyncio.wait({watch}, timeout=0.2)
    book = watch.result()
    assert steps > 25
    for i in range(20):
        watch = asyncio.ensure_future(mexc_ws.watch_order_book(BTC))
        await sim.step(prices={"BTCUSDT": market.price + tick * (5 if i % 2 else -4)})
        async with asyncio.timeout(5):
            book = await watch
        bids = [(Decimal(str(p)), Decimal(str(q))) for p, q in book["bids"]]
        asks = [(Decimal(str(p)), Decimal(str(q))) for p, q in book["asks"]]
        assert bids == book_of(sim, "bids")
        assert asks == book_of(sim, "asks")
        assert bids[0][0] < asks[0][0]
