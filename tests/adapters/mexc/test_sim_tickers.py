"""The simulator's public market data beyond book and klines (sim/tickers.py), as MEXC documents
it."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.adapters.mexc.sim.auth import ApiError
from cdb_cli.adapters.mexc.sim.tickers import (
    agg_trades,
    avg_price,
    book_tickers,
    default_symbols,
    price_tickers,
    recent_trades,
    tickers_24hr,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def exchange(sim_config: SimConfig) -> SimExchange:
    return SimExchange(sim_config)


def test_tickers_answer_one_object_or_every_symbol(exchange: SimExchange) -> None:
    for answer_of in (book_tickers, price_tickers, tickers_24hr):
        every = answer_of(exchange, None)
        assert isinstance(every, list)
        assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT"]
        one = answer_of(exchange, "ETHUSDT")
        assert isinstance(one, dict)
        assert {**one, "closeTime": 0} == {**every[1], "closeTime": 0}  # closeTime: now
    with pytest.raises(ApiError) as caught:
        price_tickers(exchange, "NOPEUSDT")
    assert caught.value.code == -1121


def test_24hr_statistics_come_from_the_last_day_of_candles(exchange: SimExchange) -> None:
    exchange.step({"BTCUSDT": Decimal("31000")})
    ticker = tickers_24hr(exchange, "BTCUSDT")
    assert isinstance(ticker, dict)
    market = exchange.markets["BTCUSDT"]
    opened = Decimal(str(ticker["openPrice"]))
    assert opened == market.candles[0].open  # 600 minutes of history: all within the day
    assert Decimal(str(ticker["lastPrice"])) == Decimal("31000")
    change = Decimal("31000") - opened
    assert Decimal(str(ticker["priceChange"])) == change
    assert Decimal(str(ticker["priceChangePercent"])) == (change / opened).quantize(
        Decimal("0.00000001")
    )  # a fraction, as MEXC sends it
    assert Decimal(str(ticker["highPrice"])) == max(c.high for c in market.candles)
    assert Decimal(str(ticker["volume"])) == sum(c.volume for c in market.candles)
    assert ticker["count"] is None


def test_avg_price_is_within_the_last_five_minutes(exchange: SimExchange) -> None:
    answer = avg_price(exchange, "BTCUSDT")
    recent = exchange.markets["BTCUSDT"].candles[-5:]
    assert answer["mins"] == 5
    price = Decimal(str(answer["price"]))
    assert min(c.low for c in recent) <= price <= max(c.high for c in recent)


def test_recent_and_aggregate_trades(exchange: SimExchange) -> None:
    assert recent_trades(exchange, "BTCUSDT", 500) == []  # nothing traded since the start
    steps = [exchange.step({"BTCUSDT": Decimal(p)})[0] for p in ("30100", "30000", "30200")]
    rows = recent_trades(exchange, "BTCUSDT", 2)
    assert [(r["price"], r["isBuyerMaker"], r["id"]) for r in rows] == [
        ("30000", True, None),
        ("30200", False, None),
    ]
    start, end = steps[0].time_ms, steps[1].time_ms
    agg = agg_trades(exchange, "BTCUSDT", 500, start, end)
    assert [r["p"] for r in agg][:2] == ["30100", "30000"]  # inclusive bounds
    assert all(start <= int(str(r["T"])) <= end for r in agg)
    with pytest.raises(ApiError) as caught:
        agg_trades(exchange, "BTCUSDT", 500, start, None)  # "must be used at the same time"
    assert caught.value.code == 33333


def test_default_symbols_in_mexcs_envelope(exchange: SimExchange) -> None:
    assert default_symbols(exchange) == {"code": 200, "data": ["BTCUSDT", "ETHUSDT"], "msg": None}


async def test_book_ticker_without_symbol_answers_every_symbol(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as raw:
        answer = await raw.get("/api/v3/ticker/bookTicker")
    assert answer.status_code == 200
    assert [t["symbol"] for t in answer.json()] == ["BTCUSDT", "ETHUSDT"]
