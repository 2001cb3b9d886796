"""MEXC's documented request weights (spot v3 docs, "Weight(IP)" of each endpoint; mexc_api.md
§3.3): what one request costs against a budget per 10 s. One table for both sides: the client's
limiter (:class:`~cdb_cli.adapters.mexc.http.MexcHttpClient`, 500 per 10 s as documented) and the
simulator's ``--rate-limit`` budget charge the same weights."""

from __future__ import annotations

__all__ = ["BUDGET", "WINDOW_S", "weight"]

BUDGET = 500
"""MEXC's documented weight per 10 s ("Each endpoint with IP limits has an independent 500 every
10 second limit"; the Chinese docs say all IP endpoints share it, so cdb counts them together)."""
WINDOW_S = 10.0

WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "exchangeInfo"): 10,
    ("GET", "trades"): 5,
    ("GET", "openOrders"): 3,
    ("GET", "order"): 2,
    ("GET", "allOrders"): 10,
    ("GET", "account"): 10,
    ("GET", "myTrades"): 10,
    ("GET", "tradeFee"): 20,
    ("GET", "capital/config/getall"): 10,
}
"""Endpoints that cost more than 1 (every other endpoint costs 1)."""
ALL_SYMBOLS: dict[str, int] = {"ticker/24hr": 40, "ticker/price": 2}
"""Weights of the tickers asked without ``symbol`` (every symbol at once)."""


def weight(method: str, path: str, has_symbol: bool) -> int:
    """The weight of ``method /api/v3/<path>`` (``path`` without the prefix)."""
    if not has_symbol and path in ALL_SYMBOLS:
        return ALL_SYMBOLS[path]
    return WEIGHTS.get((method.upper(), path), 1)
