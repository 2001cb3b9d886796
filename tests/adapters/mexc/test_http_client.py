"""``MexcHttpClient`` against the simulator on 127.0.0.1: real sockets, no mocked transport."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.engine.errors import (
    ConfigurationError,
    RateLimited,
    TransientError,
    VenueRejected,
    VenueServerError,
)

from .conftest import API_KEY, OTHER_KEY, SECRET

pytestmark = pytest.mark.anyio

BTC = "BTCUSDT"


async def test_public_endpoints_parse_into_typed_values(client: MexcHttpClient) -> None:
    await client.ping()
    assert abs(await client.server_time() - time.time() * 1000) < 5000
    instruments = await client.exchange_info([BTC])
    btc = instruments[BTC]
    assert (btc.base_asset, btc.quote_asset) == ("BTC", "USDT")
    details = (await client.symbols([BTC]))[BTC]
    assert details.tradable
    assert "MARKET" in details.order_types
    assert details.instrument == btc
    assert btc.tick_size == Decimal("0.01")
    assert btc.step_size == Decimal("0.000001")
    assert btc.min_notional == Decimal(1)
    assert set(await client.exchange_info()) == {BTC, "ETHUSDT"}
    depth = await client.depth(BTC, 5)
    assert len(depth.bids) == len(depth.asks) == 5
    assert depth.bids[0][0] < depth.asks[0][0]
    ticker = await client.book_ticker(BTC)
    assert (ticker.bid, ticker.ask) == (depth.bids[0][0], depth.asks[0][0])


async def test_klines_use_mexc_interval_names_and_paginate(
    client: MexcHttpClient, sim: SimServer
) -> None:
    hourly = await client.klines(BTC, "1h", limit=5)  # sent as 60m; the simulator refuses 1h
    assert len(hourly) == 5
    assert all(k.close_time_ms - k.open_time_ms == 3_600_000 for k in hourly)
    latest = await client.klines(BTC, "1m", limit=3)  # no startTime: the latest rows
    candles = sim.exchange.markets[BTC].candles
    assert [k.open_time_ms for k in latest] == [c.open_ms for c in candles[-3:]]
    minutes = await client.klines(BTC, "1m", limit=1000)
    start, end = minutes[10].open_time_ms, minutes[260].open_time_ms
    pages = [page async for page in client.iter_klines(BTC, "1m", start, end, page=100)]
    assert [len(p) for p in pages] == [100, 100, 50]
    rows = [k for page in pages for k in page]
    assert [k.open_time_ms for k in rows] == [k.open_time_ms for k in minutes[10:260]]


async def test_limit_order_rests_locks_funds_and_cancels(client: MexcHttpClient) -> None:
    ticker = await client.book_ticker(BTC)
    price = (ticker.bid * Decimal("0.9")).quantize(Decimal("0.01"))
    placed = await client.new_order(
        BTC, "BUY", "LIMIT", quantity=Decimal("0.01"), price=price, client_order_id="bot-1"
    )
    assert placed is not None
    order = await client.query_order(BTC, order_id=placed.order_id)
    assert (order.status, order.executed_qty, order.client_order_id) == ("NEW", 0, "bot-1")
    assert [o.order_id for o in await client.open_orders(BTC)] == [placed.order_id]
    balances = await client.account()
    assert balances["USDT"].locked == price * Decimal("0.01")
    assert balances["USDT"].total == Decimal(10_000)

    await client.cancel_order(BTC, client_order_id="bot-1")
    assert (await client.query_order(BTC, order_id=placed.order_id)).status == "CANCELED"
    assert await client.open_orders(BTC) == []
    assert (await client.account())["USDT"].free == Decimal(10_000)


async def test_order_without_client_id_is_null_and_found_by_order_id(
    client: MexcHttpClient, sim: SimServer
) -> None:
    """MEXC answers ``clientOrderId: null`` for an order placed without one (a third-party
    client's, or a manual one on the same key): the client reads it and finds it by order id."""
    placed = await client.new_order(
        BTC, "BUY", "LIMIT", quantity=Decimal("0.01"), price=Decimal(20000)
    )
    assert placed is not None
    assert sim.exchange.accounts[API_KEY].orders[placed.order_id].client_order_id is None
    (listed,) = await client.open_orders(BTC)
    assert (listed.order_id, listed.client_order_id) == (placed.order_id, None)
    await client.cancel_order(BTC, order_id=placed.order_id)
    found = await client.query_order(BTC, order_id=placed.order_id)
    assert (found.status, found.client_order_id) == ("CANCELED", None)


async def test_partial_fill_then_fill_as_the_market_moves(
    client: MexcHttpClient, sim: SimServer
) -> None:
    ticker = await client.book_ticker(BTC)
    quantity = (ticker.ask_qty * Decimal("1.5")).quantize(Decimal("0.000001"))
    placed = await client.new_order(BTC, "BUY", "LIMIT", quantity=quantity, price=ticker.ask)
    assert placed is not None
    order = await client.query_order(BTC, order_id=placed.order_id)
    assert order.status == "PARTIALLY_FILLED"
    assert order.executed_qty == ticker.ask_qty

    await sim.step({BTC: ticker.ask - Decimal("5")})  # the book moves through our price
    order = await client.query_order(BTC, order_id=placed.order_id)
    assert order.status == "FILLED"
    assert order.executed_qty == quantity
    fills = await client.my_trades(BTC, order_id=placed.order_id)
    assert [f.is_maker for f in fills] == [False, True]
    assert sum(f.qty for f in fills) == quantity
    taker, maker = fills
    assert taker.commission == taker.qty * Decimal("0.0005")
    assert taker.commission_asset == "BTC"
    assert maker.commission == 0
    balances = await client.account()
    assert balances["BTC"].free == 1 + quantity - taker.commission
    assert balances["USDT"].free == Decimal(10_000) - order.cumulative_quote_qty
    assert balances["USDT"].locked == 0


async def test_ioc_fok_and_limit_maker_statuses(client: MexcHttpClient) -> None:
    ticker = await client.book_ticker(BTC)
    big = (ticker.ask_qty * 2).quantize(Decimal("0.000001"))

    async def status_of(order_type: str, price: Decimal, quantity: Decimal) -> str | None:
        placed = await client.new_order(BTC, "BUY", order_type, quantity=quantity, price=price)
        assert placed is not None
        return (await client.query_order(BTC, order_id=placed.order_id)).status

    assert await status_of("IMMEDIATE_OR_CANCEL", ticker.ask, big) == "PARTIALLY_CANCELED"
    assert await status_of("FILL_OR_KILL", ticker.ask, big) == "CANCELED"
    assert await status_of("FILL_OR_KILL", ticker.ask + Decimal("1"), Decimal("0.01")) == "FILLED"
    assert await status_of("LIMIT_MAKER", ticker.ask, Decimal("0.01")) == "CANCELED"
    assert await status_of("LIMIT_MAKER", ticker.bid, Decimal("0.01")) == "NEW"
    assert await status_of("IMMEDIATE_OR_CANCEL", ticker.bid, Decimal("0.01")) == "CANCELED"
    assert (await client.account())["USDT"].locked == ticker.bid * Decimal("0.01")


async def test_cancel_of_a_partial_fill_is_partially_canceled(client: MexcHttpClient) -> None:
    ticker = await client.book_ticker(BTC)
    quantity = (ticker.bid_qty * Decimal("1.5")).quantize(Decimal("0.000001"))
    placed = await client.new_order(BTC, "SELL", "LIMIT", quantity=quantity, price=ticker.bid)
    assert placed is not None
    await client.cancel_order(BTC, order_id=placed.order_id)
    order = await client.query_order(BTC, order_id=placed.order_id)
    assert order.status == "PARTIALLY_CANCELED"
    assert order.executed_qty == ticker.bid_qty
    balances = await client.account()
    assert balances["BTC"].free == 1 - ticker.bid_qty
    assert balances["BTC"].locked == 0
    fee = ticker.bid * ticker.bid_qty * Decimal("0.0005")
    assert balances["USDT"].free == Decimal(10_000) + ticker.bid * ticker.bid_qty - fee


async def test_cancel_open_orders_cancels_only_that_symbol(client: MexcHttpClient) -> None:
    for symbol in (BTC, BTC, "ETHUSDT"):
        ticker = await client.book_ticker(symbol)
        price = (ticker.bid * Decimal("0.9")).quantize(Decimal("0.01"))
        await client.new_order(symbol, "BUY", "LIMIT", quantity=Decimal("0.01"), price=price)
    canceled = await client.cancel_open_orders(BTC)
    assert len(canceled) == 2
    assert await client.open_orders(BTC) == []
    assert len(await client.open_orders("ETHUSDT")) == 1


async def test_market_orders_by_quote_and_by_quantity(client: MexcHttpClient) -> None:
    bought = await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(100))
    sold = await client.new_order(BTC, "SELL", "MARKET", quantity=Decimal("0.002"))
    assert bought is not None
    assert sold is not None
    buy = await client.query_order(BTC, order_id=bought.order_id)
    sell = await client.query_order(BTC, order_id=sold.order_id)
    assert buy.status == sell.status == "FILLED"
    assert Decimal(99) < buy.cumulative_quote_qty <= Decimal(100)
    assert sell.executed_qty == Decimal("0.002")


async def test_market_order_larger_than_the_book_is_partially_canceled(
    sim_config: SimConfig,
) -> None:
    thin = replace(sim_config, levels=2, level_quote=Decimal(1000))
    async with (
        SimServer(SimExchange(thin)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as c,
    ):
        placed = await c.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(5000))
        assert placed is not None
        order = await c.query_order(BTC, order_id=placed.order_id)
        balances = await c.account()
    assert order.status == "PARTIALLY_CANCELED"
    # the whole book and no more: each level holds 1000 USDT at the last price, its ask a tick or
    # two above it
    assert Decimal(1990) < order.cumulative_quote_qty <= Decimal("2000.01")
    assert balances["USDT"].free == Decimal(10_000) - order.cumulative_quote_qty
    assert balances["USDT"].locked == 0


async def test_test_order_validates_without_placing(client: MexcHttpClient) -> None:
    assert (
        await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(10), test=True) is None
    )
    assert await client.my_trades(BTC) == []
    with pytest.raises(VenueRejected) as caught:
        await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(10**6), test=True)
    assert caught.value.code == 30004


async def test_balances_are_kept_per_api_key(client: MexcHttpClient, sim: SimServer) -> None:
    await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(500))
    free = (await client.account())["USDT"].free
    assert Decimal(9_500) <= free < Decimal(9_501)  # dust below one quantity step stays
    assert sim.exchange.accounts[OTHER_KEY].free["USDT"] == Decimal(10_000)


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"quote_order_qty": Decimal(50_000)}, 30004, "insufficient balance"),
        ({"quote_order_qty": Decimal("0.5")}, 30002, "minimum transaction volume"),
    ],
)
async def test_order_rejections_map_to_venue_rejected(
    client: MexcHttpClient, params: dict[str, Decimal], code: int, words: str
) -> None:
    with pytest.raises(VenueRejected) as caught:
        await client.new_order(BTC, "BUY", "MARKET", **params)
    assert caught.value.code == code
    assert words in caught.value.message


async def test_listen_key_lifecycle(client: MexcHttpClient, sim: SimServer) -> None:
    key = await client.create_listen_key()
    assert len(key) == 64
    assert sim.exchange.listen_keys.owner(key) == API_KEY
    await client.keepalive_listen_key(key)
    await client.close_listen_key(key)
    assert sim.exchange.listen_keys.owner(key) is None
    with pytest.raises(VenueRejected) as caught:
        await client.keepalive_listen_key(key)
    assert caught.value.code == -1125


async def test_unknown_order_missing_id_and_bad_symbol(client: MexcHttpClient) -> None:
    with pytest.raises(VenueRejected) as unknown:
        await client.cancel_order(BTC, order_id="C02__1")
    assert unknown.value.code == -2011
    with pytest.raises(VenueRejected) as missing:
        await client.query_order(BTC)
    assert missing.value.code == 700004
    with pytest.raises(VenueRejected) as symbol:
        await client.book_ticker("NOPEUSDT")
    assert symbol.value.code == -1121


async def test_wrong_secret_is_a_signature_error_that_never_shows_the_secret(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "ffffffffffffffffffffffffffffffff"
    caplog.set_level(logging.DEBUG)
    async with MexcHttpClient(sim.rest_url, Credentials(API_KEY, wrong)) as bad:
        with pytest.raises(VenueRejected) as caught:
            await bad.account()
        assert wrong not in repr(bad)
        assert "mx0v…001" in repr(bad)
    assert caught.value.code == 700002
    assert "CDB_MEXC_API_SECRET" in caught.value.message
    assert wrong not in caught.value.message
    assert wrong not in caplog.text


async def test_tracebacks_with_locals_show_neither_secret_nor_full_key(sim: SimServer) -> None:
    import traceback

    wrong = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
    async with MexcHttpClient(sim.rest_url, Credentials(API_KEY, wrong)) as bad:
        try:
            await bad.account()
        except VenueRejected as e:
            client_frames = e.__traceback__.tb_next if e.__traceback__ else None  # skip ours
            exc = traceback.TracebackException(type(e), e, client_frames, capture_locals=True)
            report = "".join(exc.format())
        else:
            pytest.fail("a wrong secret must be rejected")
    assert "_send_once" in report  # the frames with locals are there
    assert wrong not in report
    assert API_KEY not in report


async def test_unknown_key_is_rejected_with_10072(sim: SimServer) -> None:
    async with MexcHttpClient(sim.rest_url, Credentials("mx0unknownkey99", SECRET)) as bad:
        with pytest.raises(VenueRejected) as caught:
            await bad.account()
    assert caught.value.code == 10072
    assert "CDB_MEXC_API_KEY" in caught.value.message


async def test_signed_call_without_credentials_is_a_configuration_error(sim: SimServer) -> None:
    async with MexcHttpClient(sim.rest_url) as anonymous:
        assert anonymous.api_key_masked is None
        with pytest.raises(ConfigurationError):
            await anonymous.account()


async def test_clock_offset_is_resynced_once_on_700003(client: MexcHttpClient) -> None:
    await client.sync_time()
    client.time_offset_ms = -120_000  # as if our clock had jumped two minutes
    assert "USDT" in await client.account()
    assert client.time_offset_ms is not None
    assert abs(client.time_offset_ms) < 2_000


async def test_single_attempt_client_reports_700003_instead_of_resyncing(sim: SimServer) -> None:
    async with MexcHttpClient(sim.rest_url, Credentials(API_KEY, SECRET), max_attempts=1) as c:
        await c.sync_time()
        c.time_offset_ms = -120_000
        with pytest.raises(VenueRejected) as caught:
            await c.account()
    assert caught.value.code == 700003


async def test_clock_that_keeps_drifting_raises_700003(sim: SimServer) -> None:
    drift = [0]

    def drifting_ms() -> int:
        drift[0] += 40_000
        return time.time_ns() // 1_000_000 + drift[0]

    async with MexcHttpClient(
        sim.rest_url, Credentials(API_KEY, SECRET), clock_ms=drifting_ms
    ) as c:
        with pytest.raises(VenueRejected) as caught:
            await c.account()
    assert caught.value.code == 700003


async def test_429_with_retry_after_is_honoured_then_succeeds(
    client: MexcHttpClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"http_429": 1, "retry_after": 1.0})
    started = time.monotonic()
    await client.ping()
    assert time.monotonic() - started >= 0.9


async def test_429s_beyond_the_wait_budget_raise_rate_limited_with_retry_after(
    sim: SimServer,
) -> None:
    sim.exchange.faults.update({"http_429": 5, "retry_after": 1.0})
    async with MexcHttpClient(sim.rest_url, max_rate_limit_wait=2.5) as c:
        with pytest.raises(RateLimited) as caught:
            await c.ping()
        assert c.limits.waited_out == 2  # waited 1 s twice; a third second is over the 2.5 s
    assert caught.value.retry_after == 1.0


async def test_429s_do_not_use_up_the_attempts(sim: SimServer) -> None:
    sim.exchange.faults.update({"http_429": 3, "retry_after": 0.2})
    async with MexcHttpClient(sim.rest_url, max_attempts=2) as c:
        await c.ping()
        assert c.limits.waited_out == 3
        assert c.limits.weights.throttled == 1  # one burst cuts the budget once
        assert c.limits.weights.budget == 10  # MEXC took nothing in the window: the floor


async def test_5xx_and_html_pages_are_retried_for_reads(
    client: MexcHttpClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"http_5xx": 1, "http_html": 1})
    assert (await client.book_ticker(BTC)).symbol == BTC
    assert sim.exchange.faults.http_5xx == sim.exchange.faults.http_html == 0


@pytest.mark.parametrize(
    ("fault", "words"),
    [("http_5xx", "HTTP 503"), ("http_html", "HTML"), ("http_empty", "empty body")],
)
async def test_unknown_outcome_of_an_order_is_never_resent(
    client: MexcHttpClient, sim: SimServer, fault: str, words: str
) -> None:
    await client.sync_time()
    sim.exchange.faults.update({fault: 1})
    with pytest.raises(VenueServerError) as caught:
        await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(10))
    assert words in caught.value.message
    assert "unknown" in caught.value.message
    assert getattr(sim.exchange.faults, fault) == 0  # consumed once: no second POST


async def test_timeout_after_sending_an_order_is_unknown_and_the_order_can_be_found(
    sim: SimServer,
) -> None:
    async with MexcHttpClient(sim.rest_url, Credentials(API_KEY, SECRET), timeout=0.3) as c:
        await c.sync_time()
        sim.exchange.faults.update({"delay": 0.6})
        with pytest.raises(VenueServerError, match="outcome is unknown"):
            await c.new_order(
                BTC, "BUY", "MARKET", quote_order_qty=Decimal(20), client_order_id="maybe-1"
            )
        with pytest.raises(TransientError, match="ReadTimeout"):
            await c.ping()  # reads are retried, then give up with a transient error
        sim.exchange.faults.update({"delay": 0.0})
        # The venue did receive it: querying by our client id settles the unknown outcome.
        found = await c.query_order(BTC, client_order_id="maybe-1")
    assert found.status == "FILLED"
    assert len(sim.exchange.accounts[API_KEY].orders) == 1  # and it was sent exactly once


async def test_client_side_rate_limiter_spaces_requests(sim: SimServer) -> None:
    async with MexcHttpClient(sim.rest_url, requests_per_second=4) as c:
        started = time.monotonic()
        for _ in range(8):
            await c.ping()
    assert time.monotonic() - started >= 0.9


async def test_simulator_checks_headers_and_recv_window_like_mexc(sim: SimServer) -> None:
    from cdb_cli.adapters.mexc.signing import sign

    now = int(time.time() * 1000)
    async with httpx.AsyncClient(base_url=sim.rest_url) as raw:
        no_key = await raw.get("/api/v3/account", params={"timestamp": now})
        assert (no_key.status_code, no_key.json()["code"]) == (400, 400)
        query = f"recvWindow=70000&timestamp={now}"
        big_window = await raw.get(
            f"/api/v3/account?{query}&signature={sign(SECRET, query)}",
            headers={"X-MEXC-APIKEY": API_KEY},
        )
        assert big_window.json() == {"code": 700005, "msg": "recvWindow must less than 60000"}
        query = f"symbol=BTCUSDT&orderId=1&timestamp={now}"
        no_type = await raw.delete(
            f"/api/v3/order?{query}&signature={sign(SECRET, query)}",
            headers={"X-MEXC-APIKEY": API_KEY},
        )
        assert no_type.json()["code"] == 700013
        # Signature in the middle and mixed query + form body are accepted (mexc_api.md §1.2).
        body = f"symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=10&timestamp={now}"
        mixed = await raw.post(
            f"/api/v3/order/test?signature={sign(SECRET, body)}",
            content=body,
            headers={"X-MEXC-APIKEY": API_KEY, "Content-Type": "application/json"},
        )
        assert (mixed.status_code, mixed.json()) == (200, {})


async def test_kline_warm_up_returns_the_last_closed_candles(
    client: MexcHttpClient, sim: SimServer
) -> None:
    from cdb_cli.adapters.mexc.history import kline_warm_up

    candles = sim.exchange.markets[BTC].candles
    now_ms = candles[-1].open_ms + 30_000  # half-way through the last candle: it is still open
    history = await kline_warm_up(client, bars=50, clock_ms=lambda: now_ms)(BTC)
    assert len(history) == 50
    assert [ts for ts, _, _ in history] == [
        (c.open_ms + 60_000) * 1_000_000 for c in candles[-51:-1]
    ]
    assert [close for _, close, _ in history] == [float(c.close) for c in candles[-51:-1]]
