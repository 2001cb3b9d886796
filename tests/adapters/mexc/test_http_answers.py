"""Hostile 2xx answers from a real local server (the simulator's ``garble``), per client call: each
ends in the client's documented error, with a one-line message naming the request (issue 22)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from mexc_answers_testkit import ALLOWED, CALLS, HOSTILE, request_of

from cdb_cli.adapters.mexc.errors import MalformedAnswer
from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.engine.errors import VenueServerError
from cdb_cli.engine.events import Side

from .conftest import API_KEY, SECRET
from .execution_kit import posts, quiet_client, record, sim_orders

pytestmark = pytest.mark.anyio


@pytest.fixture
async def one_shot(sim: SimServer) -> AsyncIterator[MexcHttpClient]:
    """One attempt per request (a malformed GET answer is otherwise retried), no client pacing."""
    async with MexcHttpClient(
        sim.rest_url,
        Credentials(API_KEY, SECRET),
        max_attempts=1,
        requests_per_second=10_000,
        orders_per_second=10_000,
    ) as http:
        await http.sync_time()
        yield http


@pytest.mark.parametrize("key", sorted(CALLS))
async def test_every_hostile_answer_is_the_documented_error(
    one_shot: MexcHttpClient, sim: SimServer, key: str
) -> None:
    method, path = request_of(key)
    messages = []
    for name, call in CALLS[key]:
        for body in HOSTILE:
            sim.garble(method, path, body)
            try:
                await call(one_shot)
            except ALLOWED as e:
                messages.append(e.message)
            assert not sim._garbled.get((method, path)), f"{name}: the garbled answer was unused"
    assert len(messages) >= len(HOSTILE) // 2  # some are fine answers (any object to ping)
    for message in messages:
        assert "\n" not in message
        assert len(message) < 400
        assert API_KEY not in message
        assert SECRET not in message


async def test_the_issue_examples_name_the_request_and_the_problem(
    one_shot: MexcHttpClient, sim: SimServer
) -> None:
    sim.garble("GET", "/api/v3/ticker/bookTicker", b'{"symbol":"BTCUSDT","bidPrice":"1"}')
    with pytest.raises(MalformedAnswer, match=r"GET /api/v3/ticker/bookTicker .*'bidQty'"):
        await one_shot.book_ticker("BTCUSDT")
    sim.garble("POST", "/api/v3/order", b"[1]")
    with pytest.raises(VenueServerError, match=r"POST /api/v3/order .*outcome is unknown"):
        await one_shot.new_order("BTCUSDT", "BUY", "MARKET", quote_order_qty=Decimal(10))
    sim.garble("GET", "/api/v3/time", b"[" * 100_000)
    with pytest.raises(VenueServerError, match="GET /api/v3/time"):
        await one_shot.server_time()


async def test_a_message_never_echoes_the_key_or_a_signature(
    one_shot: MexcHttpClient, sim: SimServer
) -> None:
    signature = "ab" * 32
    echo = f'{{"code":10072,"msg":"bad key {API_KEY} or {SECRET} sig {signature}"}}'
    sim.garble("GET", "/api/v3/account", echo.encode())
    with pytest.raises(ALLOWED) as caught:
        await one_shot.account()
    message = caught.value.message
    assert API_KEY not in message
    assert SECRET not in message
    assert signature not in message
    assert "mx0v…001" in message


async def test_a_malformed_read_is_retried_like_a_5xx(
    client: MexcHttpClient, sim: SimServer
) -> None:
    sim.garble("GET", "/api/v3/ticker/bookTicker", b'{"symbol":"BTCUSDT"}')
    ticker = await client.book_ticker("BTCUSDT")
    assert ticker.bid > 0


async def test_an_accepted_order_with_a_malformed_answer_is_resolved_by_client_order_id(
    client: MexcHttpClient, sim: SimServer
) -> None:
    quiet: MexcExecutionClient = await quiet_client(client)
    sim.garble("POST", "/api/v3/order", b'{"symbol":"BTCUSDT","orderId":{"x":1}}')
    before = len(posts(sim))
    placed = await quiet.place(record("garbled-1", Side.BUY, quote=Decimal(50)))
    assert placed.status == "FILLED"
    assert placed.venue_order_id
    assert len(sim_orders(sim, "garbled-1")) == 1
    assert len(posts(sim)) - before == 1  # never resent
    assert (quiet.counters["outcome_unknown"], quiet.counters["resolved_by_query"]) == (1, 1)
