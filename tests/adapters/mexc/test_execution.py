"""``MexcExecutionClient`` against the in-process simulator: real sockets, real faults.

Tests that inject REST faults use a client without ``start()`` (no poller, no stream), so the
fault hits exactly the request under test.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.execution import NEVER_REACHED, MexcExecutionClient, order_status
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.private import FillUpdate, OrderUpdate
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.sim.orders import SimOrder
from cdb_cli.engine.errors import VenueRejected
from cdb_cli.engine.events import Side
from cdb_cli.engine.ports.execution import (
    ExecutionClient,
    VenueFill,
    VenueOrderState,
    VenueUpdate,
)
from cdb_cli.engine.records import OrderRecord, OrderStatus, OrderType

from .conftest import API_KEY, SECRET

pytestmark = pytest.mark.anyio

BTC = "BTCUSDT"
FAST_STREAM = {"ping_interval": 0.5, "idle_timeout": 2.0, "ack_timeout": 1.0, "backoff_base": 0.05}


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    """Thin levels (500 USDT each) so a resting order fills over several market steps."""
    return replace(sim_config, level_quote=Decimal(500))


def record(
    client_id: str,
    side: Side,
    order_type: OrderType = "MARKET",
    *,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    quote: Decimal | None = None,
    status: OrderStatus = "PENDING_NEW",
    venue_order_id: str = "",
) -> OrderRecord:
    return OrderRecord(
        client_order_id=client_id,
        venue_order_id=venue_order_id,
        decision_id=f"d-{client_id}",
        symbol=BTC,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        quote_amount=quote,
        status=status,
        ts_created=1,
        ts_updated=1,
        mode="live",
    )


def new_client(
    http: MexcHttpClient, ws_url: str | None = None, **options: object
) -> MexcExecutionClient:
    settings: dict[str, object] = {
        "poll_interval_s": 0.2,
        "resolve_attempts": 3,
        "resolve_backoff_s": 0.05,
        "stream_options": FAST_STREAM,
    }
    settings.update(options)
    return MexcExecutionClient(http, ws_url, **settings)  # type: ignore[arg-type]


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
    execution = new_client(client)
    await execution.instrument(BTC)
    await client.sync_time()
    return execution


async def updates_until(
    execution: MexcExecutionClient,
    done: Callable[[list[VenueUpdate]], bool],
    within: float = 5.0,
) -> list[VenueUpdate]:
    seen: list[VenueUpdate] = []
    async with asyncio.timeout(within):
        while not done(seen):
            seen.append(await execution.updates.get())
    return seen


def drain(execution: MexcExecutionClient) -> list[VenueUpdate]:
    out = []
    while not execution.updates.empty():
        out.append(execution.updates.get_nowait())
    return out


def states(updates: list[VenueUpdate], client_id: str) -> list[VenueOrderState]:
    return [u for u in updates if isinstance(u, VenueOrderState) and u.client_order_id == client_id]


def fills(updates: list[VenueUpdate], client_id: str) -> list[VenueFill]:
    return [u for u in updates if isinstance(u, VenueFill) and u.client_order_id == client_id]


def reached(client_id: str, *statuses: OrderStatus) -> Callable[[list[VenueUpdate]], bool]:
    return lambda seen: any(s.status in statuses for s in states(seen, client_id))


def sim_orders(sim: SimServer, client_id: str) -> list[SimOrder]:
    account = sim.exchange.accounts[API_KEY]
    return [o for o in account.orders.values() if o.client_order_id == client_id]


def posts(sim: SimServer) -> list[float]:
    return [at for at, method, path in sim.requests if (method, path) == ("POST", "/api/v3/order")]


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` (a state of the client's own tasks: there is no event to await)."""
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not true within {within} s")


def test_mexc_statuses_map_to_the_engines() -> None:
    one, zero = Decimal(1), Decimal(0)
    assert order_status(None, zero) == "NEW"
    assert order_status("NEW", zero) == "NEW"
    assert order_status("PARTIALLY_FILLED", one) == "PARTIALLY_FILLED"
    assert order_status("FILLED", one) == "FILLED"
    assert order_status("CANCELED", zero) == "CANCELED"
    assert order_status("CANCELED", one) == "PARTIALLY_CANCELED"
    assert order_status("PARTIALLY_CANCELED", one) == "PARTIALLY_CANCELED"
    assert order_status("EXPIRED", zero) == "CANCELED"
    assert order_status("REJECTED", zero) == "REJECTED"
    assert order_status("SOMETHING_NEW", zero) is None


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
    await asyncio.sleep(3 * live.poll_interval_s)  # polls see the same order: nothing new
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


async def test_accepted_then_5xx_is_resolved_by_query_and_never_resent(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"accept_then_5xx": 1})
    before = len(posts(sim))
    placed = await quiet.place(record("a5-1", Side.BUY, quote=Decimal(50)))
    assert placed.status == "FILLED"
    assert placed.venue_order_id
    assert placed.filled_quantity > 0
    assert len(sim_orders(sim, "a5-1")) == 1
    assert len(posts(sim)) - before == 1
    assert (quiet.counters["outcome_unknown"], quiet.counters["resolved_by_query"]) == (1, 1)
    assert sum(f.quantity for f in fills(drain(quiet), "a5-1")) == placed.filled_quantity
    again = await quiet.place(record("a5-1", Side.BUY, quote=Decimal(50)))  # a caller's retry
    assert again == placed
    assert len(posts(sim)) - before == 1


async def test_accepted_limit_then_5xx_rests_once(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"accept_then_5xx": 1})
    price = sim.exchange.markets[BTC].price - 50
    placed = await quiet.place(
        record("a5-2", Side.BUY, "LIMIT", quantity=Decimal("0.001"), price=price)
    )
    assert placed.status == "NEW"
    assert placed.filled_quantity == 0
    assert len(sim_orders(sim, "a5-2")) == 1
    assert "a5-2" in quiet.tracked()


async def test_5xx_before_acceptance_is_rejected_as_never_reached(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"http_5xx": 1})
    placed = await quiet.place(record("x5-1", Side.BUY, quote=Decimal(50)))
    assert (placed.status, placed.reason) == ("REJECTED", NEVER_REACHED)
    assert sim_orders(sim, "x5-1") == []
    assert len(posts(sim)) == 1
    assert quiet.counters["never_reached"] == 1
    assert "x5-1" not in quiet.tracked()
    assert states(drain(quiet), "x5-1")[-1].reason == NEVER_REACHED
    assert (await quiet.place(record("x5-1", Side.BUY, quote=Decimal(50)))).status == "REJECTED"
    assert len(posts(sim)) == 1  # the same client order id is never sent again


async def test_an_outcome_still_unknown_is_pending_until_polling_decides(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    # The send fails, then every lookup fails too (3 lookups x 4 attempts of the REST client).
    lookups = quiet.resolve_attempts * quiet.http.max_attempts
    sim.exchange.faults.update({"http_5xx": 1 + lookups})
    placed = await quiet.place(record("un-1", Side.BUY, quote=Decimal(50)))
    assert placed.status == "PENDING_NEW"
    assert "un-1" in quiet.tracked()
    assert sim.exchange.faults.http_5xx == 0
    for _ in range(quiet.resolve_attempts - 1):
        await quiet.poll_once()
        assert "un-1" in quiet.tracked()
    await quiet.poll_once()
    (final,) = states(drain(quiet), "un-1")
    assert (final.status, final.reason) == ("REJECTED", NEVER_REACHED)
    assert sim_orders(sim, "un-1") == []
    assert len(posts(sim)) == 1
    assert quiet.tracked() == []


async def test_a_timeout_after_sending_is_found_by_polling_once_mexc_answers(
    sim: SimServer,
) -> None:
    async with MexcHttpClient(
        sim.rest_url, Credentials(API_KEY, SECRET), timeout=0.2, backoff_base=0.01
    ) as http:
        execution = new_client(http)
        await execution.instrument(BTC)
        await http.sync_time()
        sim.exchange.faults.update({"delay": 0.4})  # MEXC books the order, we stop waiting
        placed = await execution.place(record("to-1", Side.BUY, quote=Decimal(50)))
        assert placed.status == "PENDING_NEW"  # the lookups timed out too
        assert execution.counters["outcome_unknown"] == 1
        sim.exchange.faults.update({"delay": 0.0})
        await asyncio.sleep(0.5)  # the delayed requests finish at the simulator
        await execution.poll_once()
    seen = drain(execution)
    final = states(seen, "to-1")[-1]
    assert final.status == "FILLED"
    assert sum(f.quantity for f in fills(seen, "to-1")) == final.filled_quantity
    assert len(sim_orders(sim, "to-1")) == 1
    assert len(posts(sim)) == 1
    assert execution.tracked() == []


async def test_429_backs_off_and_the_order_goes_through_once(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"http_429": 2, "retry_after": 0.5})
    placed = await quiet.place(record("rl-1", Side.BUY, quote=Decimal(50)))
    assert placed.status != "REJECTED"
    sent = posts(sim)
    assert len(sent) == 3
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(sent))
    assert len(sim_orders(sim, "rl-1")) == 1


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
        await asyncio.sleep(0.2)
        sim.exchange.faults.update({"http_429": 1000, "retry_after": 1.0})
        start = time.monotonic()
        await asyncio.sleep(4.5)
        hits = [at for at, _, _ in sim.requests if at >= start]
        assert len(hits) <= 7  # about one a second, not one per 20 ms poll
        assert execution.counters["polls_rate_limited"] >= 1
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


@pytest.mark.parametrize("offset_ms", [10_000, -10_000])
async def test_clock_skew_beyond_recv_window_stops_placing_until_it_is_gone(
    client: MexcHttpClient, sim: SimServer, offset_ms: int
) -> None:
    execution = new_client(client, poll_interval_s=0.1)
    await execution.start()
    try:
        assert execution.signing_ok
        sim.exchange.faults.update({"clock_offset_ms": offset_ms})
        await wait_for(lambda: not execution.signing_ok)
        assert "recvWindow" in (execution.signing_problem or "")
        before = len(posts(sim))
        refused = await execution.place(record("ck-1", Side.BUY, quote=Decimal(50)))
        assert refused.status == "REJECTED"
        assert "cannot sign" in refused.reason
        assert len(posts(sim)) == before
        assert sim_orders(sim, "ck-1") == []
        sim.exchange.faults.update({"clock_offset_ms": 0})
        await wait_for(lambda: execution.signing_ok)
        assert execution.signing_problem is None
        placed = await execution.place(record("ck-2", Side.BUY, quote=Decimal(50)))
        assert placed.status in {"NEW", "FILLED"}
        assert len(sim_orders(sim, "ck-2")) == 1
    finally:
        await execution.stop()


class RacingClock:
    """Our clock in ms; while ``racing`` each reading is 10 s later than the one before."""

    def __init__(self) -> None:
        self.racing = False
        self.ahead = 0

    def __call__(self) -> int:
        if self.racing:
            self.ahead += 10_000
        return time.time_ns() // 1_000_000 + self.ahead


async def test_timestamps_refused_even_after_a_resync_stop_placing(sim: SimServer) -> None:
    clock = RacingClock()
    async with MexcHttpClient(
        sim.rest_url, Credentials(API_KEY, SECRET), clock_ms=clock, backoff_base=0.01
    ) as http:
        # No clock bound: only MEXC's answers decide here.
        execution = new_client(http, poll_interval_s=0.1, max_clock_skew_ms=10**12)
        await execution.start()
        try:
            clock.racing = True
            refused = await execution.place(record("ts-1", Side.BUY, quote=Decimal(50)))
            assert refused.status == "REJECTED"
            assert "timestamp" in refused.reason
            assert not execution.signing_ok
            assert sim_orders(sim, "ts-1") == []
            again = await execution.place(record("ts-2", Side.BUY, quote=Decimal(50)))
            assert "cannot sign" in again.reason
            clock.racing = False  # a steady clock again: the measured offset works
            await wait_for(lambda: execution.signing_ok)
            placed = await execution.place(record("ts-3", Side.BUY, quote=Decimal(50)))
            assert placed.status in {"NEW", "FILLED"}
        finally:
            await execution.stop()


async def test_refused_before_sending_by_the_filters(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    tiny = await quiet.place(record("f-1", Side.BUY, quote=Decimal("0.5")))
    assert tiny.status == "REJECTED"
    assert "below the minimum" in tiny.reason
    dust = await quiet.place(record("f-2", Side.SELL, quantity=Decimal("0.0000001")))
    assert dust.status == "REJECTED"
    cheap = await quiet.place(
        record("f-3", Side.BUY, "LIMIT", quantity=Decimal("0.00001"), price=Decimal(10))
    )
    assert "notional" in cheap.reason
    no_quantity = await quiet.place(record("f-4", Side.SELL, quote=Decimal(50)))
    assert "needs a quantity" in no_quantity.reason
    assert posts(sim) == []


async def test_venue_rejection_carries_mexcs_message(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    rejected = await quiet.place(
        record("vr-1", Side.SELL, "LIMIT", quantity=Decimal(5), price=Decimal(100_000))
    )  # 5 BTC held: 1
    assert rejected.status == "REJECTED"
    assert "insufficient" in rejected.reason.lower()
    assert sim_orders(sim, "vr-1") == []


async def test_market_sell_by_quantity_fee_in_quote(quiet: MexcExecutionClient) -> None:
    placed = await quiet.place(record("ms-1", Side.SELL, quantity=Decimal("0.0123456789")))
    assert placed.status == "NEW"  # the POST answer; the rest comes by query or polling
    state = await quiet.query(BTC, "ms-1")
    assert state is not None
    assert (state.status, state.filled_quantity) == ("FILLED", Decimal("0.012345"))
    got = fills(drain(quiet), "ms-1")
    assert got
    assert all(f.fee_asset == "USDT" and f.side is Side.SELL for f in got)


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


async def test_pushes_without_client_id_are_attributed_by_venue_order_id(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    price = sim.exchange.markets[BTC].price - 40
    placed = await quiet.place(
        record("nc-1", Side.BUY, "LIMIT", quantity=Decimal("0.002"), price=price)
    )
    drain(quiet)
    fill = FillUpdate(
        symbol=BTC, trade_id="t-1", order_id=placed.venue_order_id, client_order_id="",
        side="BUY", price=price, quantity=Decimal("0.001"), amount=price / 1000,
        fee=Decimal(0), fee_asset="BTC", is_maker=True, time_ms=1,
    )  # fmt: skip
    quiet._on_private(fill)
    quiet._on_private(fill)  # a duplicate push
    early = OrderUpdate(
        symbol=BTC, order_id="C02__999", client_order_id="", side="BUY", type="LIMIT",
        status="FILLED", price=price, quantity=Decimal(1), cumulative_quantity=Decimal(1),
        cumulative_amount=price, avg_price=price, last_deal_quantity=Decimal(1), time_ms=1,
    )  # fmt: skip
    quiet._on_private(early)  # its venue id is not known yet: held, not dropped
    (got,) = drain(quiet)
    assert isinstance(got, VenueFill)
    assert (got.client_order_id, got.fill_id, got.liquidity) == ("nc-1", "t-1", "maker")
    quiet.track(record("nc-2", Side.BUY, "LIMIT", quantity=Decimal(1), price=price,
                       status="NEW", venue_order_id="C02__999"))  # fmt: skip
    (late,) = drain(quiet)
    assert isinstance(late, VenueOrderState)
    assert (late.client_order_id, late.status) == ("nc-2", "FILLED")


async def test_stop_closes_the_listen_key(client: MexcHttpClient, sim: SimServer) -> None:
    execution = new_client(client, sim.ws_url)
    await execution.start()
    assert execution.stream is not None
    await execution.stream.wait_connected(5)
    assert len(sim.exchange.listen_keys.valid(API_KEY)) == 1
    await execution.stop()
    assert sim.exchange.listen_keys.valid(API_KEY) == []


async def test_sim_clock_offset_moves_server_time(sim_config: SimConfig) -> None:
    async with (
        SimServer(SimExchange(sim_config)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as http,
    ):
        server.exchange.faults.update({"clock_offset_ms": -20_000})
        assert abs(await http.sync_time() + 20_000) < 2_000
        assert (await http.account())["USDT"].free == 10_000  # signed with the measured offset
