"""The live loop end to end against the MEXC simulator: real REST, signed requests, the private
user-data stream, protobuf frames and a real SQLite store. What the store books — orders, fills,
commissions, realized PnL, balances — must match the simulator's account to the last unit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from market_testkit import eventually

from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
from cdb_cli.adapters.mexc.sim.server import SimServer
from cdb_cli.adapters.mexc.ws import MexcDataClient, book_ticker_topic, deals_topic
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.errors import CheckFailed, ConfigurationError
from cdb_cli.engine.events import RiskDecision, Side
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import OrderRecord
from cdb_cli.kernel import open_store
from cdb_cli.runtime.clock import LiveClock
from cdb_cli.runtime.live import LIVE_STARTING_CASH_KEY, LiveRuntime
from cdb_cli.runtime.paper import START_ACTION
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
        "ema_fast": 2,
        "ema_slow": 4,
        "rsi_period": 2,
        "volume_period": 3,
        "volume_factor": 0.01,
        "stale_data_seconds": 5,
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
) -> AsyncIterator[tuple[LiveRuntime, asyncio.Event, asyncio.Task[Any]]]:
    async with MexcHttpClient(server.rest_url, Credentials(KEY, SECRET)) as http:
        instruments = await http.exchange_info([SYMBOL])
        client = MexcExecutionClient(
            http, server.ws_url, instruments=instruments, poll_interval_s=0.2
        )
        feed = MexcDataClient(server.ws_url, [deals_topic(SYMBOL), book_ticker_topic(SYMBOL)])
        runtime = LiveRuntime(
            settings,
            client=client,
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


def test_live_loop_buys_and_exits_and_books_what_the_venue_booked(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    await walk(server, MOVES)
                    await round_trip_booked(store, server)  # the last reports
                orders = store.orders()
                assert {o.side for o in orders if o.status == "FILLED"} == {"BUY", "SELL"}
                assert all(o.mode == "live" for o in orders)
                assert runtime.orders_sent >= 2
                placed = [o for o in orders if o.status != "REJECTED"]
                assert runtime.pipeline is not None
                assert len(placed) <= runtime.pipeline.stats.orders <= len(orders)  # once each
                portfolio = assert_store_matches_the_venue(store, server)
                realized = portfolio.realized_pnl()
                assert realized != 0
                (position,) = [p for p in store.positions() if p.symbol == SYMBOL]
                assert position.realized_pnl == realized
                assert any(d.verdict in ("approved", "reduced") for d in store.events(RiskDecision))
                starts = [a for a in store.audits() if a.action == START_ACTION]
                assert starts[-1].detail["mode"] == "live"
            finally:
                store.close()

    asyncio.run(scenario())


def test_commissions_paid_in_mx_are_booked_apart_and_the_run_goes_on(tmp_path: Path) -> None:
    """MX deduction on: the venue takes every commission from the MX balance. The ledger books
    the fills whole, keeps the MX apart, and a restart books the same fills again."""
    settings = live_settings(tmp_path)
    config = sim_config(
        mx_deduct_price=Decimal("2.5"), balances={"USDT": Decimal(10_000), "MX": Decimal(50)}
    )

    async def scenario() -> None:
        async with SimServer(SimExchange(config)) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store):
                    await walk(server, MOVES)
                    await round_trip_booked(store, server)  # the last reports
                fills = store.fills()
                assert {f.side for f in fills} == {Side.BUY, Side.SELL}
                assert {f.fee_asset for f in fills} == {"MX"}
                portfolio = assert_store_matches_the_venue(store, server)
                paid = sum((f.fee for f in fills), Decimal(0))
                assert portfolio.fees_paid == 0
                assert portfolio.other_fees == {"MX": paid}
                assert account_of(server).free["MX"] == Decimal(50) - paid
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    assert runtime.pipeline is not None
                    assert runtime.pipeline.portfolio.other_fees == {"MX": paid}
            finally:
                store.close()

    asyncio.run(scenario())


def test_limit_entries_fill_partially_and_are_canceled_on_timeout(tmp_path: Path) -> None:
    settings = live_settings(
        tmp_path, live_entry_order="limit", live_limit_timeout_seconds=4, max_exposure_pct=50
    )

    async def scenario() -> None:
        # a thin book: each step through the limit fills one small level of it
        config = sim_config(level_quote=Decimal(300))
        async with SimServer(SimExchange(config)) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store):
                    resting = []
                    for move in MOVES:
                        await walk(server, [move])
                        resting = [o for o in account_of(server).orders.values() if o.is_open]
                        if resting:
                            break
                    (order,) = resting
                    assert order.type == "LIMIT"
                    for _ in range(3):  # trade through the limit: one level fills each time
                        before = order.executed_qty
                        await server.step({SYMBOL: order.price - Decimal("0.01")})
                        await eventually(lambda b=before: order.executed_qty > b, what="a fill")
                    assert order.executed_qty < order.orig_qty

                    def canceled() -> bool:  # the timeout cancels the rest, the store books it
                        stored = {o.client_order_id: o.status for o in store.orders()}
                        return stored[order.client_order_id] == "PARTIALLY_CANCELED"

                    await eventually(canceled, timeout_s=15, what="the timeout's cancel")
                    await eventually(lambda: settled(store, server), what="the fills booked")
                entry = {o.client_order_id: o for o in store.orders()}[order.client_order_id]
                assert entry.status == "PARTIALLY_CANCELED", entry
                assert entry.order_type == "LIMIT"
                assert len(store.fills(client_order_id=entry.client_order_id)) == 3
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_restart_resolves_an_order_saved_but_never_sent(tmp_path: Path) -> None:
    """The crash between save and send: the order is in the store as PENDING_NEW and unknown at
    the venue. The next start marks it REJECTED and sends nothing."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "10000")
            lost = pending_buy("l0123456789a0000000001", Decimal(200))
            store.save_order(lost)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    assert runtime.reconciliation is not None
                    assert [(o.status, was) for o, was in runtime.reconciliation.resolved] == [
                        ("REJECTED", "PENDING_NEW")
                    ]
                (order,) = [o for o in store.orders() if o.client_order_id == lost.client_order_id]
                assert order.status == "REJECTED"
                assert account_of(server).orders == {}
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_restart_books_what_the_venue_did_while_we_were_down(tmp_path: Path) -> None:
    """The crash between send and ack: the venue filled the order; the store says PENDING_NEW.
    The next start takes the venue's state and books the fill with its commission."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "10000")
            sent = pending_buy("l0123456789a0000000002", Decimal(250))
            store.save_order(sent)
            async with MexcHttpClient(server.rest_url, Credentials(KEY, SECRET)) as http:
                await http.new_order(
                    SYMBOL,
                    "BUY",
                    "MARKET",
                    quote_order_qty=Decimal(250),
                    client_order_id=sent.client_order_id,
                )
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    assert runtime.reconciliation is not None
                    assert len(runtime.reconciliation.booked) >= 1
                (order,) = [o for o in store.orders() if o.client_order_id == sent.client_order_id]
                assert order.status == "FILLED"
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_balance_the_ledger_cannot_explain_refuses_the_start(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "9000")  # the venue holds 10000
            try:
                with pytest.raises(CheckFailed, match="balances differ") as caught:
                    async with live_run(settings, server, store):
                        pass
                assert any("USDT" in line for line in caught.value.details)
                assert account_of(server).orders == {}
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_paper_database_is_refused(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.save_order(
                OrderRecord(
                    client_order_id="p0123456789a0000000001",
                    decision_id="d",
                    symbol=SYMBOL,
                    side="BUY",
                    order_type="MARKET",
                    quote_amount=Decimal(100),
                    status="FILLED",
                    ts_created=1,
                    ts_updated=1,
                    mode="paper",
                )
            )
            try:
                with pytest.raises(ConfigurationError, match="paper orders"):
                    async with live_run(settings, server, store):
                        pass
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_hostile_venue_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """5xx after accepting, 429s and dropped WebSockets while the loop trades: every order
    once at the venue, every fill once in the store."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    server.exchange.faults.update({"accept_then_5xx": 2})
                    await walk(server, MOVES[:9])
                    server.exchange.faults.update({"http_429": 2, "retry_after": 1})
                    server.drop_connections()  # market data and the user stream
                    await walk(server, MOVES[9:])
                    await round_trip_booked(store, server)  # polling settles what the stream missed
                assert server.exchange.faults.accept_then_5xx < 2  # it fired
                statuses = {o.status for o in store.orders()}
                assert "FILLED" in statuses
                assert statuses <= {"FILLED", "REJECTED"}
                assert runtime.orders_sent >= 2
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_clock_skew_beyond_recv_window_places_nothing_until_it_is_gone(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    server.exchange.faults.update({"clock_offset_ms": 30_000})
                    await runtime.client.poll_once()  # type: ignore[attr-defined]
                    await walk(server, MOVES[:11])  # the buy signal comes while skewed
                    refused = [o for o in store.orders() if o.status == "REJECTED"]
                    assert refused, [o.status for o in store.orders()]
                    assert account_of(server).orders == {}
                    assert not runtime.client.signing_ok
                    server.exchange.faults.update({"clock_offset_ms": 0})
                    await eventually(lambda: runtime.client.signing_ok, what="the re-sync")
                    await walk(server, MOVES[11:] + MOVES[:11])
                    await eventually(  # trading resumed once signing worked
                        lambda: bool(account_of(server).orders) and settled(store, server),
                        what="an order at the venue, booked",
                    )
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_risk_halt_with_flatten_sells_the_position_at_the_venue(tmp_path: Path) -> None:
    """`cdb risk halt --flatten` while the live loop holds a position: no new entry, the
    position is sold at MEXC, and the store still matches the account."""
    import time

    from cdb_cli.engine.records import AuditRecord
    from cdb_cli.engine.risk import TradingState
    from cdb_cli.engine.runs import HALT_ACTION

    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    await walk(server, MOVES[:11])  # the buy
                    assert runtime.pipeline is not None
                    assert runtime.pipeline.portfolio.quantity(SYMBOL) > 0
                    halted_at = time.time_ns()
                    store.add_audit(
                        AuditRecord(
                            ts_event=halted_at,
                            action=HALT_ACTION,
                            actor="test",
                            detail={"reason": "drill", "flatten": "yes"},
                        )
                    )
                    pipeline = runtime.pipeline
                    step = pipeline.execution.instruments[SYMBOL].step_size  # type: ignore[attr-defined]
                    await eventually(  # the next flush picks it up and sells
                        lambda: (
                            pipeline.trading_state is TradingState.HALTED
                            and pipeline.portfolio.quantity(SYMBOL) < step
                        ),  # dust stays
                        what="the halt and its flatten",
                    )
                    await walk(server, MOVES[:11])  # a buy signal while halted: refused

                    def refused() -> bool:
                        return any(
                            d.verdict == "rejected" and d.side == "buy" and d.ts_event > halted_at
                            for d in store.events(RiskDecision)
                        )

                    await eventually(refused, what="the refused buy, stored")
                    await eventually(lambda: settled(store, server), what="the sell booked")
                sells = [o for o in store.orders() if o.side == "SELL" and o.status == "FILLED"]
                assert len(sells) == 1
                buys = [o for o in store.orders() if o.side == "BUY" and o.status == "FILLED"]
                assert len(buys) == 1
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_symbol_added_later_keeps_what_the_account_held_apart(tmp_path: Path) -> None:
    """Live trading started on another symbol; the account already holds BTC when BTCUSDT is
    added: that BTC is its opening balance, and the start is not refused."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        config = sim_config(balances={"USDT": Decimal(10_000), "BTC": Decimal("0.25")})
        async with SimServer(SimExchange(config)) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "10000")  # an earlier start, other symbols
            try:
                async with live_run(settings, server, store):
                    pass
                assert store.get_config("live.opening.BTC") == "0.25"
            finally:
                store.close()

    asyncio.run(scenario())
