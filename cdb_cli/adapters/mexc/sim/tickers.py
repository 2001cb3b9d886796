"""The simulator's public market-data answers beyond book and klines: tickers, recent trades, the
average price and the API symbol list, shaped as MEXC documents them (spot v3 "Market Data
Endpoints"; mexc_api.md §2.1). Pure functions of a :class:`~.exchange.SimExchange`.

Without ``symbol`` the tickers answer an array of every symbol (MEXC: "If the symbol is not sent,
tickers for all symbols will be returned in an array"); with one, a single object. The 24-hour
ticker's example leaves ``bidQty``/``askQty`` empty and ``quoteVolume`` null; the simulator fills
them, as the answers ccxt captured from MEXC do. Public trade ids are null, as documented.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from cdb_cli.adapters.mexc.sim.auth import ApiError
from cdb_cli.adapters.mexc.sim.market import PublicTrade, SymbolMarket
from cdb_cli.adapters.mexc.sim.model import MINUTE_MS
from cdb_cli.adapters.mexc.sim.orders import ZERO, s
from cdb_cli.engine.events import Side

if TYPE_CHECKING:
    from cdb_cli.adapters.mexc.sim.exchange import SimExchange

__all__ = [
    "agg_trades",
    "avg_price",
    "book_tickers",
    "default_symbols",
    "price_tickers",
    "recent_trades",
    "tickers_24hr",
]

DAY_MS = 24 * 60 * MINUTE_MS
AVG_PRICE_MINUTES = 5  # MEXC's avgPrice answers "mins": 5
AVG_PRICE_PLACES = Decimal("0.00000001")  # the documented example has 8 places

Answer = dict[str, object] | list[dict[str, object]]


def _each(
    exchange: SimExchange, symbol: str | None, answer: Callable[[SymbolMarket], dict[str, object]]
) -> Answer:
    """One object for ``symbol``, or an array over every symbol without one."""
    if symbol:
        return answer(exchange.market(symbol))
    return [answer(market) for market in exchange.markets.values()]


def _top(exchange: SimExchange, market: SymbolMarket) -> dict[str, object]:
    """The book's best bid and ask with their quantities, in MEXC's keys."""
    book = exchange.books[market.symbol]
    (bid, bid_qty), (ask, ask_qty) = book.side_levels("bids")[0], book.side_levels("asks")[0]
    return {"bidPrice": s(bid), "bidQty": s(bid_qty), "askPrice": s(ask), "askQty": s(ask_qty)}


def book_tickers(exchange: SimExchange, symbol: str | None) -> Answer:
    """``GET /api/v3/ticker/bookTicker``: best bid and ask with their quantities."""
    return _each(exchange, symbol, lambda m: {"symbol": m.symbol, **_top(exchange, m)})


def price_tickers(exchange: SimExchange, symbol: str | None) -> Answer:
    """``GET /api/v3/ticker/price``: the last price."""
    return _each(exchange, symbol, lambda m: {"symbol": m.symbol, "price": s(m.price)})


def tickers_24hr(exchange: SimExchange, symbol: str | None) -> Answer:
    """``GET /api/v3/ticker/24hr``: the statistics of the last 24 hours of 1-minute candles.

    ``priceChangePercent`` is a fraction, as MEXC sends it (``"0.00400048"`` for 0.4 %);
    ``prevClosePrice`` is the window's open, as in MEXC's example; ``count`` is null.
    """
    now = exchange.clock_ms()

    def one(market: SymbolMarket) -> dict[str, object]:
        window = [c for c in market.candles if c.open_ms > now - DAY_MS]
        opened = window[0].open if window else market.price
        change = market.price - opened
        return {
            "symbol": market.symbol,
            "priceChange": s(change),
            "priceChangePercent": s((change / opened).quantize(AVG_PRICE_PLACES)),
            "prevClosePrice": s(opened),
            "lastPrice": s(market.price),
            **_top(exchange, market),
            "openPrice": s(opened),
            "highPrice": s(max((c.high for c in window), default=market.price)),
            "lowPrice": s(min((c.low for c in window), default=market.price)),
            "volume": s(sum((c.volume for c in window), ZERO)),
            "quoteVolume": s(sum((c.quote_volume for c in window), ZERO).quantize(Decimal("0.01"))),
            "openTime": window[0].open_ms if window else now,
            "closeTime": now,
            "count": None,
        }

    return _each(exchange, symbol, one)


def avg_price(exchange: SimExchange, symbol: str | None) -> dict[str, object]:
    """``GET /api/v3/avgPrice``: the volume-weighted price of the last 5 minutes."""
    market = exchange.market(symbol)
    since = exchange.clock_ms() - AVG_PRICE_MINUTES * MINUTE_MS
    window = [c for c in market.candles if c.open_ms + MINUTE_MS > since]
    volume = sum((c.volume for c in window), ZERO)
    quote = sum((c.quote_volume for c in window), ZERO)
    price = quote / volume if volume > 0 else market.price
    return {"mins": AVG_PRICE_MINUTES, "price": s(price.quantize(AVG_PRICE_PLACES))}


def default_symbols(exchange: SimExchange) -> dict[str, object]:
    """``GET /api/v3/defaultSymbols``: the symbols tradable over the API, in MEXC's envelope."""
    return {"code": 200, "data": exchange.default_symbols(), "msg": None}


def _chosen(
    market: SymbolMarket, limit: int, start: int | None, end: int | None
) -> list[PublicTrade]:
    trades = [
        t
        for t in market.recent
        if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)
    ]
    return trades[:limit] if start is not None else trades[-limit:]


def recent_trades(exchange: SimExchange, symbol: str | None, limit: int) -> list[dict[str, object]]:
    """``GET /api/v3/trades``: the latest ``limit`` public trades, oldest first (ids null)."""
    return [
        {
            "id": None,
            "price": s(t.price),
            "qty": s(t.quantity),
            "quoteQty": s(t.price * t.quantity),
            "time": t.time_ms,
            "isBuyerMaker": t.side == Side.SELL,  # the seller took: the buyer's order rested
            "isBestMatch": True,
        }
        for t in _chosen(exchange.market(symbol), limit, None, None)
    ]


def agg_trades(
    exchange: SimExchange, symbol: str | None, limit: int, start: int | None, end: int | None
) -> list[dict[str, object]]:
    """``GET /api/v3/aggTrades``: public trades in MEXC's short keys; ``startTime`` and
    ``endTime`` are inclusive and "must be used at the same time" (else 33333)."""
    market = exchange.market(symbol)
    if (start is None) != (end is None):
        raise ApiError(33333, "param is error")
    return [
        {
            "a": None,
            "f": None,
            "l": None,
            "p": s(t.price),
            "q": s(t.quantity),
            "T": t.time_ms,
            "m": t.side == Side.SELL,
            "M": True,
        }
        for t in _chosen(market, limit, start, end)
    ]
