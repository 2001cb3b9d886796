"""``MexcDataClient`` against the simulator's WebSocket on 127.0.0.1, with injected faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from market_testkit import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.ws import (
    MexcDataClient,
    book_ticker_topic,
    deals_topic,
    kline_topic,
    topic_symbol,
)
from cdb_cli.engine.events import Bar, Event, QuoteTick, TradeTick

pytestmark = pytest.mark.anyio

BTC, ETH = "BTCUSDT", "ETHUSDT"


@pytest.fixture
async def live_sim(sim_config: SimConfig) -> AsyncIterator[SimServer]:
    """A simulator whose market steps every 50 ms and pushes to subscribers."""
    config = replace(sim_config, tick_interval=0.05, idle_without_subscription=0.5)
    async with SimServer(SimExchange(config)) as server:
        yield server


def fast_client(url: str, topics: list[str], **options: float) -> MexcDataClient:
    settings: dict[str, float] = {
        "ping_interval": 0.5,
        "idle_timeout": 1.0,
        "ack_timeout": 2.0,
        "backoff_base": 0.05,
        "backoff_max": 0.2,
    }
    settings.update(options)
    return MexcDataClient(url, topics, **settings)  # type: ignore[arg-type]


async def collect(
    client: MexcDataClient, done: Callable[[list[Event]], bool], within: float = 5.0
) -> list[Event]:
    """Read events until ``done(events)`` holds; fail after ``within`` seconds."""
    events: list[Event] = []
    deadline = time.monotonic() + within
    while not done(events):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"condition not met within {within} s; got {len(events)} events")
        try:
            async with asyncio.timeout(remaining):
                events.append(await client.events.get())
        except TimeoutError:
            continue
    return events


def trades(events: list[Event]) -> list[TradeTick]:
    return [e for e in events if isinstance(e, TradeTick)]


def assert_clean_trades(events: list[Event]) -> None:
    """No duplicate reached us, and each symbol's trade ids only go up."""
    ticks = trades(events)
    assert len({t.event_id for t in ticks}) == len(ticks)
    for symbol in {t.symbol for t in ticks}:
        ids = [int(t.trade_id) for t in ticks if t.symbol == symbol]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)


async def test_subscribes_and_delivers_trades_quotes_and_bars(live_sim: SimServer) -> None:
    topics = [deals_topic(BTC), book_ticker_topic(BTC), kline_topic(ETH, "1m")]
    async with fast_client(live_sim.ws_url, topics) as client:
        await client.wait_connected(5)
        events = await collect(
            client,
            lambda got: all(
                any(isinstance(e, kind) for e in got) for kind in (TradeTick, QuoteTick, Bar)
            ),
        )
    assert all(e.symbol == BTC for e in events if isinstance(e, TradeTick | QuoteTick))
    assert all(e.symbol == ETH and e.interval == "1m" for e in events if isinstance(e, Bar))
    assert all(e.price > 0 for e in trades(events))
    assert not client.refused
    assert client.decoder.bad == {}
    ages = client.freshness()
    assert all(age is not None and age < 1.0 for age in ages.values())
    assert client.symbol_age(ETH) is not None  # from the kline topic (symbol before interval)
    assert (client.symbol_age(BTC) or 99) < 1.0
    assert client.symbol_age("XRPUSDT") is None


async def test_refused_topics_are_detected_although_mexc_answers_code_0(
    live_sim: SimServer,
) -> None:
    blocked = "spot@public.deals.v3.api@BTCUSDT"  # the retired JSON channel name
    unknown = deals_topic("NOPEUSDT")
    async with fast_client(live_sim.ws_url, [blocked, deals_topic(BTC), unknown]) as client:
        await client.wait_connected(5)
        await collect(client, lambda got: len(trades(got)) >= 3)
    assert client.refused == {blocked, unknown}
    assert client.stale(60) == []


async def test_simulator_acks_pong_and_refusal_like_mexc(live_sim: SimServer) -> None:
    async with connect(live_sim.ws_url) as ws:
        await ws.send('{"method":"ping"}')
        assert json.loads(await ws.recv()) == {"id": 0, "code": 0, "msg": "PONG"}
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": ["spot@x"], "id": 9}))
        reply = json.loads(await ws.recv())
        assert reply == {
            "id": 9,
            "code": 0,
            "msg": "Not Subscribed successfully! [spot@x].  Reason\uff1a Blocked! ",
        }
        topic = deals_topic(BTC)
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [topic]}))
        assert json.loads(await ws.recv()) == {"id": 0, "code": 0, "msg": topic}
        assert isinstance(await ws.recv(), bytes)


async def test_simulator_closes_a_socket_without_subscription(live_sim: SimServer) -> None:
    async with connect(live_sim.ws_url) as ws:
        started = time.monotonic()

        async def read_until_closed() -> None:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()

        with pytest.raises(ConnectionClosed):
            await read_until_closed()
        assert time.monotonic() - started < 3


async def test_more_than_30_topics_are_sharded_over_connections(sim_config: SimConfig) -> None:
    symbols = tuple(f"C{i:02d}USDT" for i in range(31))
    config = replace(sim_config, symbols=symbols, tick_interval=0.05, history_minutes=5)
    topics = [deals_topic(s) for s in symbols]
    async with (
        SimServer(SimExchange(config)) as server,
        fast_client(server.ws_url, topics) as client,
    ):
        assert [len(s) for s in client.shards()] == [30, 1]
        await client.wait_connected(5)
        assert len(server.connections) == 2
        events = await collect(client, lambda got: {e.symbol for e in got} == set(symbols))
    assert_clean_trades(events)


async def test_drops_and_duplicates_never_reach_the_consumer(live_sim: SimServer) -> None:
    live_sim.exchange.faults.update({"ws_duplicate_rate": 0.5, "ws_garbage_rate": 0.2})
    topics = [deals_topic(BTC), deals_topic(ETH), book_ticker_topic(BTC)]
    async with fast_client(live_sim.ws_url, topics) as client:
        await client.wait_connected(5)
        events = await collect(client, lambda got: len(trades(got)) >= 20)
        for _ in range(3):
            assert live_sim.drop_connections() == 1
            await eventually(lambda: client.counters["connects"] > client.counters["reconnects"])
            events += await collect(client, lambda got: len(trades(got)) >= 10)
        assert client.counters["reconnects"] >= 3
    assert_clean_trades(events)
    assert client.streams.stats(deals_topic(BTC)).duplicates > 0
    assert client.streams.stats(deals_topic(BTC)).gaps >= 3  # every reconnect may have lost data
    assert client.decoder.bad["malformed_protobuf"] + client.decoder.bad["no_body"] > 0
    assert client.counters["bad_control"] > 0  # non-JSON text frames are counted, not fatal


async def test_stalled_socket_goes_stale_then_recovers(live_sim: SimServer) -> None:
    topic = deals_topic(BTC)
    async with fast_client(live_sim.ws_url, [topic], idle_timeout=0.6) as client:
        await client.wait_connected(5)
        await collect(client, lambda got: len(got) >= 3)
        assert client.stale(0.5) == []
        live_sim.exchange.faults.update({"ws_stalled": True})
        await eventually(lambda: client.stale(0.5) == [topic])
        await eventually(lambda: client.counters["idle_timeouts"] >= 1)
        live_sim.exchange.faults.update({"ws_stalled": False})
        await eventually(lambda: client.stale(0.5) == [], timeout_s=8)
        events = await collect(client, lambda got: len(got) >= 5)
    assert_clean_trades(events)


async def test_connection_is_rotated_before_its_lifetime(live_sim: SimServer) -> None:
    async with fast_client(live_sim.ws_url, [deals_topic(BTC)], max_lifetime=0.4) as client:
        await client.wait_connected(5)
        events = await collect(client, lambda got: len(got) >= 40)
        await eventually(lambda: client.counters["rotations"] >= 2)
    assert_clean_trades(events)
    assert client.counters["reconnects"] == 0  # a rotation is planned, not a failure
    assert client.streams.stats(deals_topic(BTC)).gaps >= 2  # but data may be missed meanwhile


async def test_server_closing_at_max_age_is_survived(sim_config: SimConfig) -> None:
    config = replace(sim_config, tick_interval=0.05, max_connection_age=0.5)
    async with (
        SimServer(SimExchange(config)) as server,
        fast_client(server.ws_url, [deals_topic(BTC)]) as client,
    ):
        await client.wait_connected(5)
        await eventually(lambda: client.counters["reconnects"] >= 2)
        events = await collect(client, lambda got: len(got) >= 10)
    assert_clean_trades(events)


async def test_keeps_up_with_30_symbols_at_100_messages_per_second(
    sim_config: SimConfig,
) -> None:
    symbols = tuple(f"K{i:02d}USDT" for i in range(30))
    config = replace(sim_config, symbols=symbols, tick_interval=None, history_minutes=5)
    topics = [deals_topic(s) for s in symbols]
    async with (
        SimServer(SimExchange(config)) as server,
        fast_client(server.ws_url, topics) as client,
    ):
        await client.wait_connected(5)
        received = 0

        async def consume() -> None:
            nonlocal received
            while True:
                await client.events.get()
                received += 1

        consumer = asyncio.create_task(consume())
        started = time.monotonic()
        steps = 10  # 10 steps x 30 frames in 3 s: 100 messages per second
        for step in range(steps):
            await server.step()
            await asyncio.sleep(max(0.0, started + 0.3 * (step + 1) - time.monotonic()))
        await eventually(lambda: received >= steps * len(symbols), timeout_s=5)
        consumer.cancel()
    assert received == steps * len(symbols)
    assert client.max_backlog < 100
    assert client.counters["reconnects"] == 0


def test_topic_helpers_use_mexc_names() -> None:
    assert deals_topic("btcusdt") == "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
    assert book_ticker_topic(BTC, "10ms") == "spot@public.aggre.bookTicker.v3.api.pb@10ms@BTCUSDT"
    assert kline_topic(BTC, "1h") == "spot@public.kline.v3.api.pb@BTCUSDT@Min60"
    assert topic_symbol(kline_topic(ETH)) == topic_symbol(deals_topic(ETH)) == ETH
    assert topic_symbol("spot@private.orders.v3.api.pb") == ""


@pytest.mark.parametrize("lockstep", [False, True])
async def test_each_symbol_trades_on_its_own_clock_unless_lockstep(
    sim_config: SimConfig, lockstep: bool
) -> None:
    """Real trades of different symbols do not arrive together: by default each symbol of the
    simulator trades on its own random clock (mean ``tick_interval``); ``lockstep`` steps them all
    at once, every ``tick_interval``."""
    config = replace(sim_config, tick_interval=0.05, lockstep=lockstep)
    topics = [deals_topic(BTC), deals_topic(ETH)]
    async with (
        SimServer(SimExchange(config)) as server,
        fast_client(server.ws_url, topics) as client,
    ):
        await client.wait_connected(5)
        events = await collect(
            client,
            lambda got: min(sum(t.symbol == s for t in trades(got)) for s in (BTC, ETH)) >= 40,
        )
    ticks = trades(events)
    times = {s: [t.ts_event for t in ticks if t.symbol == s] for s in (BTC, ETH)}
    shared = set(times[BTC]) & set(times[ETH])
    if lockstep:
        assert len(shared) >= 35  # the same instants (a first trade may come before the other)
    else:
        assert len(shared) <= 10  # a millisecond in common now and then, by chance
        gaps = sorted(b - a for a, b in itertools.pairwise(times[BTC]))
        assert gaps[len(gaps) // 2] < 100 * 1_000_000  # exponential gaps: median ln 2 x 50 ms
        assert gaps[-1] > gaps[0]  # not a fixed period


async def test_a_full_queue_pauses_reading_and_says_so_once(
    live_sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The queue is the bound on what a run that cannot take its market data (its bus is down)
    holds in memory: when it is full, reading waits, one warning says so, and nothing queued
    is lost; once the run takes events again, they flow on."""
    async with fast_client(live_sim.ws_url, [deals_topic(BTC)], queue_size=5) as client:
        await client.wait_connected(5)
        await eventually(lambda: client.counters["queue_full"] == 1, what="a full queue")
        assert client.events.qsize() == 5
        held = [client.events.get_nowait() for _ in range(5)]
        later = await collect(client, lambda got: len(got) >= 5)
    messages = [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]
    assert messages == [
        "The market data queue is full (5 events): reading MEXC pauses until the run takes "
        "them; MEXC may close the connection meanwhile (it reconnects) (further ones are only "
        "counted)"
    ]
    assert_clean_trades(held + later)
