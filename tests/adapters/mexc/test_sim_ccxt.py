"""Contract tests: ccxt's MEXC client, a third-party library the project did not write, against the
simulator (issue 25). ccxt is unpatched; only its URLs point at the simulator, and its own request
pacing is off so the tests run at the simulator's speed. Its ``load_markets`` runs with its
defaults: the wallet's coin list (``capital/config/getall``) and the futures contract list.

If the simulator and cdb's own client shared a misreading of MEXC, these would catch it wherever
ccxt reads MEXC differently.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest
from ccxt.base.errors import BadSymbol, InsufficientFunds

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer

from .conftest import API_KEY, SECRET

pytestmark = pytest.mark.anyio

BTC = "BTC/USDT"
PATHS = {"contract": "/api/v1/contract", "broker": "/api/v3/broker"}


def point_at(exchange: ccxt_async.mexc, rest_url: str) -> None:
    """Every API base URL of the client to the simulator (the only change made to ccxt)."""
    for group, urls in exchange.urls["api"].items():
        for access in urls:
            urls[access] = rest_url + PATHS.get(group, "")


class TickingClock:
    """Wall time in ms that never repeats: two market steps are never in the same ms, so a
    client's sort by time keeps their order."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self) -> int:
        self.last = max(time.time_ns() // 1_000_000, self.last + 1)
        return self.last


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimServer]:
    async with SimServer(SimExchange(sim_config, clock_ms=TickingClock())) as server:
        yield server


@pytest.fixture
async def mexc(sim: SimServer) -> AsyncIterator[ccxt_async.mexc]:
    exchange = ccxt_async.mexc({"apiKey": API_KEY, "secret": SECRET, "enableRateLimit": False})
    point_at(exchange, sim.rest_url)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def d(value: object) -> Decimal:
    """ccxt's float as the decimal it printed from (MEXC strings parse to the nearest float)."""
    return Decimal(str(value))


async def test_load_markets_reads_symbols_and_the_wallets_coin_list(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    assert set(mexc.markets) == {"BTC/USDT", "ETH/USDT"}
    inst = sim.exchange.markets["BTCUSDT"].instrument
    market = mexc.market(BTC)
    assert (market["id"], market["active"], market["spot"]) == ("BTCUSDT", True, True)
    assert d(market["precision"]["price"]) == inst.tick_size
    assert d(market["precision"]["amount"]) == inst.step_size
    assert d(market["limits"]["amount"]["min"]) == inst.min_quantity
    assert d(market["limits"]["cost"]["min"]) == inst.min_notional
    assert d(market["taker"]) == inst.taker_fee
    # the currencies came from the signed coin list, networks and all
    assert {"BTC", "ETH", "USDT"} <= set(mexc.currencies)
    usdt = mexc.currencies["USDT"]["networks"]
    assert len(usdt) == 3
    assert all(n["deposit"] and n["withdraw"] for n in usdt.values())
    asked = {(method, path) for _, method, path in sim.requests}
    assert ("GET", "/api/v3/capital/config/getall") in asked


async def test_tickers_carry_the_last_price_and_the_books_top(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    await sim.step({"BTCUSDT": Decimal("30500"), "ETHUSDT": Decimal("2100")})
    ticker = await mexc.fetch_ticker(BTC)
    assert d(ticker["last"]) == Decimal("30500")
    bid, ask = sim.exchange.markets["BTCUSDT"].best_bid_ask()
    assert (d(ticker["bid"]), d(ticker["ask"])) == (bid, ask)
    assert d(ticker["high"]) >= d(ticker["last"]) >= d(ticker["low"]) > 0
    expected_change = (d(ticker["last"]) - d(ticker["open"])) / d(ticker["open"]) * 100
    assert abs(d(ticker["percentage"]) - expected_change) < Decimal("0.0001")
    assert d(ticker["baseVolume"]) > 0
    tickers = await mexc.fetch_tickers()
    assert {s: d(t["last"]) for s, t in tickers.items()} == {
        "BTC/USDT": Decimal("30500"),
        "ETH/USDT": Decimal("2100"),
    }


async def test_status_time_bids_asks_and_trading_fee(mexc: ccxt_async.mexc, sim: SimServer) -> None:
    assert (await mexc.fetch_status())["status"] == "ok"
    assert abs(await mexc.fetch_time() - sim.exchange.server_ms()) < 5_000
    tops = await mexc.fetch_bids_asks()  # bookTicker without a symbol: every symbol
    assert set(tops) == {"BTC/USDT", "ETH/USDT"}
    for symbol, top in tops.items():
        bid, ask = sim.exchange.markets[mexc.market(symbol)["id"]].best_bid_ask()
        assert (d(top["bid"]), d(top["ask"])) == (bid, ask)
    fee = await mexc.fetch_trading_fee(BTC)
    inst = sim.exchange.markets["BTCUSDT"].instrument
    assert (d(fee["maker"]), d(fee["taker"])) == (inst.maker_fee, inst.taker_fee)


async def test_order_book_is_sorted_uncrossed_and_the_simulators(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    book = await mexc.fetch_order_book(BTC, 5)
    bids, asks = [d(p) for p, _ in book["bids"]], [d(p) for p, _ in book["asks"]]
    assert len(bids) == len(asks) == 5
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    levels = sim.exchange.books["BTCUSDT"].side_levels("asks")[:5]
    assert [(d(p), d(q)) for p, q in book["asks"]] == levels


async def test_public_trades_are_the_markets_prints_in_order(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    prices = [Decimal("30100"), Decimal("30050"), Decimal("30200")]
    for price in [Decimal("30000"), *prices]:  # from a known price: up, down, up
        await sim.step({"BTCUSDT": price})
    aggregated = await mexc.fetch_trades(BTC)  # ccxt's default: aggTrades
    listed = await mexc.fetch_trades(BTC, params={"method": "spotPublicGetTrades"})
    for trades in (aggregated, listed):
        assert [d(t["price"]) for t in trades[-3:]] == prices
        assert [t["side"] for t in trades[-3:]] == ["buy", "sell", "buy"]
        assert all(d(t["amount"]) > 0 for t in trades)
        times = [t["timestamp"] for t in trades]
        assert times == sorted(times)


async def test_ohlcv_pages_from_since_without_an_earlier_candle(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    first = sim.exchange.markets["BTCUSDT"].candles[0].open_ms
    since = first + 5 * 60_000 + 1  # inside a 5-minute candle: the next one is the first
    rows = await mexc.fetch_ohlcv(BTC, "5m", since=since, limit=4)
    opens = [row[0] for row in rows]
    assert opens[0] >= since
    assert opens == [opens[0] + i * 300_000 for i in range(4)]
    assert all(low <= min(o, c) <= max(o, c) <= high for _, o, high, low, c, _ in rows)


async def test_market_buy_changes_the_balance_by_its_fill(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    before = await mexc.fetch_balance()
    placed = await mexc.create_order(BTC, "market", "buy", 0.01)
    order = await mexc.fetch_order(placed["id"], BTC)
    assert (order["status"], d(order["filled"])) == ("closed", Decimal("0.01"))
    assert order["clientOrderId"] is None  # none sent: MEXC answers null, never an invented id
    after = await mexc.fetch_balance()
    (trade,) = await mexc.fetch_my_trades(BTC)
    assert (trade["order"], d(trade["amount"]), trade["side"]) == (
        placed["id"],
        Decimal("0.01"),
        "buy",
    )
    fee = d(trade["fee"]["cost"])
    assert trade["fee"]["currency"] == "BTC"
    assert fee == Decimal("0.01") * sim.exchange.markets["BTCUSDT"].instrument.taker_fee
    assert d(after["BTC"]["free"]) - d(before["BTC"]["free"]) == Decimal("0.01") - fee
    assert d(before["USDT"]["free"]) - d(after["USDT"]["free"]) == d(order["cost"])


async def test_limit_order_rests_locks_funds_then_cancels(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    placed = await mexc.create_order(BTC, "limit", "buy", 0.01, 20000, {"clientOrderId": "cc-1"})
    (open_order,) = await mexc.fetch_open_orders(BTC)
    assert (open_order["id"], open_order["status"]) == (placed["id"], "open")
    assert open_order["clientOrderId"] == "cc-1"
    locked = await mexc.fetch_balance()
    assert d(locked["USDT"]["used"]) == Decimal("200")
    await mexc.cancel_order(placed["id"], BTC)
    assert (await mexc.fetch_order(placed["id"], BTC))["status"] == "canceled"
    assert await mexc.fetch_open_orders(BTC) == []
    released = await mexc.fetch_balance()
    assert (d(released["USDT"]["used"]), d(released["USDT"]["free"])) == (0, Decimal(10_000))
    history = await mexc.fetch_orders(BTC)
    assert [(o["id"], o["status"]) for o in history] == [(placed["id"], "canceled")]


async def test_resting_sell_fills_when_the_market_moves_through_it(
    mexc: ccxt_async.mexc, sim: SimServer
) -> None:
    placed = await mexc.create_order(BTC, "limit", "sell", 0.01, 40000)
    assert (await mexc.fetch_order(placed["id"], BTC))["status"] == "open"
    await sim.step({"BTCUSDT": Decimal("40100")})
    filled = await mexc.fetch_order(placed["id"], BTC)
    assert (filled["status"], d(filled["filled"]), d(filled["average"])) == (
        "closed",
        Decimal("0.01"),
        Decimal("40000"),
    )
    closed = await mexc.fetch_closed_orders(BTC)
    assert placed["id"] in [o["id"] for o in closed if o["status"] == "closed"]
    (trade,) = await mexc.fetch_my_trades(BTC)
    assert (trade["takerOrMaker"], d(trade["price"])) == ("maker", Decimal("40000"))


async def test_batch_orders_and_cancel_all(mexc: ccxt_async.mexc, sim: SimServer) -> None:
    placed = await mexc.create_orders(
        [
            {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.01, "price": 20000},
            {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.02, "price": 21000},
        ]
    )
    ids = {o["id"] for o in placed}
    assert len(ids) == 2
    assert {o["id"] for o in await mexc.fetch_open_orders(BTC)} == ids
    await mexc.cancel_all_orders(BTC)
    assert await mexc.fetch_open_orders(BTC) == []
    statuses = {o["id"]: o["status"] for o in await mexc.fetch_orders(BTC)}
    assert statuses == dict.fromkeys(ids, "canceled")


async def test_errors_map_to_ccxts_documented_exceptions(mexc: ccxt_async.mexc) -> None:
    with pytest.raises(InsufficientFunds):
        await mexc.create_order(BTC, "market", "buy", 5)  # 150 000 USDT of BTC with 10 000
    with pytest.raises(BadSymbol):  # the server's -1121, not ccxt's own market check
        await mexc.spot_public_get_ticker_price({"symbol": "NOPEUSDT"})
