"""The live loop end to end against the MEXC simulator: real REST, signed requests, the private
user-data stream, protobuf frames and a real SQLite store. What the store books — orders, fills,
commissions, realized PnL, balances — must match the simulator's account to the last unit."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from live_testkit import (
    MOVES,
    SYMBOL,
    account_of,
    assert_store_matches_the_venue,
    filled_sides,
    live_run,
    live_settings,
    round_trip_booked,
    settled,
    sim_config,
    walk,
)
from market_testkit import eventually

from cdb_cli.adapters.mexc.sim.exchange import SimExchange
from cdb_cli.adapters.mexc.sim.server import SimServer
from cdb_cli.engine.events import ExecutionReport, RiskDecision, Side
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION
from cdb_cli.services.restore import LIVE_STARTING_CASH_KEY


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
                assert runtime.venue.orders_sent >= 2
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
                assert runtime.venue.orders_sent >= 2
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
                    await runtime.venue.client.poll_once()  # type: ignore[attr-defined]
                    await walk(server, MOVES[:11])  # the buy signal comes while skewed
                    refused = [o for o in store.orders() if o.status == "REJECTED"]
                    assert refused, [o.status for o in store.orders()]
                    assert account_of(server).orders == {}
                    assert not runtime.venue.client.signing_ok
                    server.exchange.faults.update({"clock_offset_ms": 0})
                    await eventually(lambda: runtime.venue.client.signing_ok, what="the re-sync")
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


def test_a_symbol_without_market_orders_trades_via_limit_end_to_end(tmp_path: Path) -> None:
    """Issue 25's line: the simulator lists BTCUSDT without MARKET (``--no-market``); the buy
    and its exit go as LIMIT orders crossing the book, fill, and are booked as the venue has
    them; nothing is refused."""
    settings = live_settings(tmp_path, live_limit_slippage_pct=Decimal("0.5"))

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config(no_market=frozenset({SYMBOL})))) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store):
                    await walk(server, MOVES)
                    await round_trip_booked(store, server)
                venue_orders = list(account_of(server).orders.values())
                assert {(o.side, o.type, o.status) for o in venue_orders} == {
                    ("BUY", "LIMIT", "FILLED"),
                    ("SELL", "LIMIT", "FILLED"),
                }
                stored = store.orders()
                assert {o.order_type for o in stored} == {"LIMIT"}
                assert "REJECTED" not in {o.status for o in stored}
                reasons = {r.reason for r in store.events(ExecutionReport) if r.status == "FILLED"}
                assert any(
                    r.startswith("LIMIT instead of MARKET: BTCUSDT takes no MARKET orders")
                    for r in reasons
                ), reasons
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_error_30051_at_run_time_sends_the_order_again_as_limit_from_then_on(
    tmp_path: Path,
) -> None:
    """exchangeInfo still lists MARKET when the run starts, then MEXC answers 30051: the refused
    buy is sent again at once as LIMIT, and the exit goes LIMIT without asking again."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store):
                    server.exchange.tradability.no_market.add(
                        SYMBOL
                    )  # after the instruments were read
                    await walk(server, MOVES)
                    await round_trip_booked(store, server)
                stored = store.orders()
                (refused,) = [o for o in stored if o.status == "REJECTED"]
                assert (refused.order_type, refused.side) == ("MARKET", "BUY")
                rejections = [r for r in store.events(ExecutionReport) if r.status == "REJECTED"]
                assert "30051 api market order is disabled" in rejections[0].reason
                filled = [o for o in stored if o.status == "FILLED"]
                assert {(o.side, o.order_type) for o in filled} == {
                    ("BUY", "LIMIT"),
                    ("SELL", "LIMIT"),
                }
                (buy,) = [o for o in filled if o.side == "BUY"]
                assert buy.decision_id == refused.decision_id  # the same decision, sent again
                assert {o.type for o in account_of(server).orders.values()} == {"LIMIT"}
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_429_burst_while_trading_is_waited_out_without_an_error(tmp_path: Path) -> None:
    """The simulator's budget (MEXC weights, 40 per 10 s) is below what the live start alone asks
    for (exchangeInfo, account three times, myTrades: weight 10 each): MEXC answers 429s, the
    client waits them out, the run starts, the round trip is booked as the venue has it and no
    order is refused."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config(rate_limit=40))) as server:
            store = open_store(settings, create_if_new=True)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    http = runtime.venue.client.http  # type: ignore[attr-defined]
                    await walk(server, MOVES)
                    await eventually(
                        lambda: filled_sides(store) == {"BUY", "SELL"} and settled(store, server),
                        timeout_s=40,
                        what="a filled buy and sell booked as the venue has them",
                    )
                    assert http.limits.waited_out >= 1, "the budget was never exceeded"
                    assert http.limits.weights.throttled >= 1
                assert "REJECTED" not in {o.status for o in store.orders()}
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())
