"""The live loop against the MEXC simulator in a test: settings with keys, a simulator config,
``live_run`` (the loop with a signed client and the user stream), the market walk, and the checks
that what the store booked matches the simulator's account to the last unit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from market_testkit import FAST_STRATEGY, eventually

from cdb_cli.adapters.clock import LiveClock
from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim.exchange import SimConfig
from cdb_cli.adapters.mexc.sim.server import SimServer
from cdb_cli.adapters.mexc.ws import MexcDataClient, book_ticker_topic, deals_topic
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import OrderRecord
from cdb_cli.runtime.live import LiveVenue
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.services.restore import LIVE_STARTING_CASH_KEY
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
SECOND = 1_000_000_000
KEY = "mx0vglLiveTest001"
SECRET = "0123456789abcdef0123456789abcdef"
# down, up (the buy), down (the exit): one price per half-second bar
MOVES = [-1, -1, -1, -1, -1, -1, 2, 2, 2, 2, 2, -2, -2, -2, -2, -2, -2]


def live_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'live.db'}",
        **FAST_STRATEGY,
        "mexc_api_key": KEY,
        "mexc_api_secret": SECRET,
    }
    values.update(overrides)
    return Settings(**values)


def sim_config(**overrides: Any) -> SimConfig:
    values: dict[str, Any] = {
        "symbols": (SYMBOL,),
        "seed": 3,
        "tick_interval": None,
        "history_minutes": 60,
        "accounts": {KEY: SECRET},
        "balances": {"USDT": Decimal(10_000)},
    }
    values.update(overrides)
    return SimConfig(**values)


@asynccontextmanager
async def live_run(
    settings: Settings, server: SimServer, store: Store
) -> AsyncIterator[tuple[TradingLoop, asyncio.Event, asyncio.Task[Any]]]:
    async with MexcHttpClient(server.rest_url, Credentials(KEY, SECRET)) as http:
        instruments = await http.exchange_info([SYMBOL])
        client = MexcExecutionClient(
            http, server.ws_url, instruments=instruments, poll_interval_s=0.2
        )
        feed = MexcDataClient(server.ws_url, [deals_topic(SYMBOL), book_ticker_topic(SYMBOL)])
        runtime = TradingLoop(
            settings,
            venue=LiveVenue(client),
            store=store,
            bus=InMemoryBus(),
            feed=feed,
            clock=LiveClock(),
            symbols=[SYMBOL],
            instruments=instruments,
            bar_interval_ns=SECOND // 2,
            bar_grace_ns=SECOND // 10,
            flush_interval_s=0.05,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        started = asyncio.create_task(runtime.started.wait())
        try:
            await asyncio.wait({task, started}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # a refused start raises here
            assert runtime.started.is_set(), "the live run did not start"
            await feed.wait_connected(10)
            yield runtime, stop, task
        finally:
            started.cancel()
            stop.set()
            await asyncio.wait({task}, timeout=15)
        task.result()  # a run that failed fails the test


async def walk(server: SimServer, moves: Sequence[int], pause: float = 0.55) -> None:
    price = Decimal(server.exchange.markets[SYMBOL].price)
    for move in moves:
        price = price * (1 + Decimal(move) / 1000)
        await server.step({SYMBOL: price})
        await asyncio.sleep(pause)


def pending_buy(client_order_id: str, quote: Decimal) -> OrderRecord:
    """A market buy saved before it was sent (what a crash right after the save leaves)."""
    return OrderRecord(
        client_order_id=client_order_id,
        decision_id=f"d-{client_order_id[-1]}",
        symbol=SYMBOL,
        side="BUY",
        order_type="MARKET",
        quote_amount=quote,
        status="PENDING_NEW",
        ts_created=1,
        ts_updated=1,
        mode="live",
    )


def account_of(server: SimServer) -> Any:
    return server.exchange.accounts[KEY]


def settled(store: Store, server: SimServer) -> bool:
    """The store has booked all the venue did so far: each venue trade as a fill and each
    venue order with the venue's status."""
    account = account_of(server)
    if {f.fill_id for f in store.fills()} != {str(t["id"]) for t in account.trades}:
        return False
    stored = {o.client_order_id: o.status for o in store.orders()}
    return all(stored.get(o.client_order_id) == o.status for o in account.orders.values())


def filled_sides(store: Store) -> set[str]:
    return {str(o.side) for o in store.orders() if o.status == "FILLED"}


async def round_trip_booked(store: Store, server: SimServer) -> None:
    """Wait until the buy and its exit are filled at the venue and booked in the store."""
    await eventually(
        lambda: filled_sides(store) == {"BUY", "SELL"} and settled(store, server),
        what="a filled buy and sell booked as the venue has them",
    )


def assert_store_matches_the_venue(store: Store, server: SimServer) -> Portfolio:
    """Every venue trade is a stored fill with the same quantity, price and commission; the
    ledger rebuilt from the store equals the account's balances to the last unit."""
    account = account_of(server)
    trades = {str(t["id"]): t for t in account.trades}
    assert trades, "the venue traded nothing"
    fills = {f.fill_id: f for f in store.fills()}
    assert set(fills) == set(trades)
    for fill_id, trade in trades.items():
        fill = fills[fill_id]
        assert fill.quantity == Decimal(str(trade["qty"]))
        assert fill.price == Decimal(str(trade["price"]))
        assert fill.fee == Decimal(str(trade["commission"]))
        assert fill.fee_asset == trade["commissionAsset"]
        assert fill.client_order_id == trade["clientOrderId"]
    venue_orders = {o.client_order_id: o for o in account.orders.values()}
    stored = {o.client_order_id: o for o in store.orders() if o.status != "REJECTED"}
    assert set(stored) == set(venue_orders)  # nothing duplicated, nothing unknown
    for client_id, order in stored.items():
        assert order.status == venue_orders[client_id].status, client_id
    cash = Decimal(store.get_config(LIVE_STARTING_CASH_KEY) or "0")
    portfolio = Portfolio.restore(cash, [], None, list(fills.values()))
    balances = account.free.copy()
    for asset, locked in account.locked.items():
        balances[asset] = balances.get(asset, Decimal(0)) + locked
    assert portfolio.cash == balances.get("USDT", Decimal(0))
    assert portfolio.quantity(SYMBOL) == balances.get("BTC", Decimal(0))
    return portfolio
