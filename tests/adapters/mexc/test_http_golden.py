"""Golden REST answers (tests/data/mexc/http/, see its README): MEXC's documented examples and the
simulator's recorded answers, so the simulator and cdb's client cannot drift together.

- the recorded simulator answer has the documented answer's shape (keys and JSON types), except
  at the paths the fixture names, each with its reason, and those really differ;
- the simulator today still answers with the recorded shape;
- the client's readers (``answers.READERS``) read MEXC's documented example to its values, and the
  simulator's recorded answer to the values it holds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cdb_cli.adapters.mexc.answers import READERS
from cdb_cli.adapters.mexc.sim import SimExchange, SimServer

from .golden_kit import fixtures, golden_config, live_answers, mismatches, shape

FIXTURES = fixtures()
READER_OF = {
    "time": "GET /api/v3/time",
    "depth": "GET /api/v3/depth",
    "ticker_bookTicker": "GET /api/v3/ticker/bookTicker",
    "klines": "GET /api/v3/klines",
    "account": "GET /api/v3/account",
    "order_new": "POST /api/v3/order",
    "openOrders": "GET /api/v3/openOrders",
    "openOrders_cancel": "DELETE /api/v3/openOrders",
    "myTrades": "GET /api/v3/myTrades",
    "defaultSymbols": "GET /api/v3/defaultSymbols",
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_recorded_answer_has_the_documented_shape(name: str) -> None:
    fixture = FIXTURES[name]
    documented, recorded = shape(fixture["documented"]), shape(fixture["simulator"])
    skip = set(fixture["differences"])
    assert mismatches(documented, recorded, skip) == []
    assert recorded not in ([], {}, "null")
    every = mismatches(documented, recorded, set())
    for path in skip:  # no stale excuse: each named path really differs
        assert any(m.startswith(f"{path}:") for m in every), f"{name}: {path} does not differ"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_simulator_still_answers_the_recorded_shapes() -> None:
    async with SimServer(SimExchange(golden_config())) as server:
        answers = await live_answers(server)
    assert set(answers) == set(FIXTURES)
    for name, answer in answers.items():
        recorded = FIXTURES[name]["simulator"]
        assert mismatches(shape(recorded), shape(answer), set()) == [], name
        assert mismatches(shape(answer), shape(recorded), set()) == [], name


def read(name: str, which: str) -> Any:
    return READERS[READER_OF[name]](FIXTURES[name][which])


def test_every_fixture_with_a_reader_reads_both_ways() -> None:
    for name in READER_OF:
        for which in ("documented", "simulator"):
            assert read(name, which) not in (None, [], {}), f"{name} {which}"


def test_client_reads_mexcs_documented_examples_to_their_values() -> None:
    assert read("time", "documented") == 1645539742000
    depth = read("depth", "documented")
    assert (depth.last_update_id, depth.bids, depth.asks) == (
        1112416,
        ((Decimal("15.00000"), Decimal("49999.00000")),),
        ((Decimal("14.0000"), Decimal("1.0000")),),
    )
    ticker = read("ticker_bookTicker", "documented")
    assert (ticker.symbol, ticker.bid, ticker.ask_qty) == (
        "AEUSDT",
        Decimal("0.11001"),
        Decimal("215.48"),
    )
    (kline,) = read("klines", "documented")
    assert (kline.open_time_ms, kline.close, kline.quote_volume) == (
        1640804880000,
        Decimal("47436.1"),
        Decimal("168387.3"),
    )
    balances = read("account", "documented")
    assert (balances["NBNTEST"].free, balances["NBNTEST"].locked) == (Decimal(1111078), 33)
    placed = read("order_new", "documented")
    assert (placed.order_id, placed.side, placed.time_ms) == (
        "06a480e69e604477bfb48dddd5f0b750",
        "BUY",
        1666676533741,
    )
    (resting,) = read("openOrders", "documented")
    assert (resting.order_id, resting.client_order_id, resting.orig_qty) == (
        "1",
        "myOrder1",
        Decimal("1.0"),
    )
    canceled = read("openOrders_cancel", "documented")
    assert [(o.order_id, o.status) for o in canceled] == [("11", "CANCELED"), ("13", "CANCELED")]
    assert read("defaultSymbols", "documented") == {
        "GENE1USDT",
        "SNTUSDT",
        "SQUAWKUSDT",
        "HEGICUSDT",
        "GUMUSDT",
    }
    (fill,) = read("myTrades", "documented")
    assert (fill.order_id, fill.commission, fill.commission_asset, fill.client_order_id) == (
        "bb41e5663e124046bd9497a3f5692f39",
        Decimal("10.10000000"),
        "BNB",
        None,
    )


def test_client_reads_the_recorded_simulator_answers_to_what_they_hold() -> None:
    raw = {name: FIXTURES[name]["simulator"] for name in READER_OF}
    depth = read("depth", "simulator")
    assert depth.bids[0][0] == Decimal(raw["depth"]["bids"][0][0])
    assert depth.bids[0][0] < depth.asks[0][0]
    (resting,) = read("openOrders", "simulator")
    assert (resting.order_id, resting.client_order_id, resting.status) == (
        raw["openOrders"][0]["orderId"],
        "g-1",
        "NEW",
    )
    (fill,) = read("myTrades", "simulator")
    assert fill.client_order_id is None  # placed without newClientOrderId, as MEXC answers
    assert fill.qty * fill.price == fill.quote_qty
    assert read("defaultSymbols", "simulator") == set(raw["defaultSymbols"]["data"])
    balances = read("account", "simulator")
    assert balances["USDT"].locked == resting.price * resting.orig_qty
