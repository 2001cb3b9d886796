"""MEXC's documented request weights (spot v3 docs, "Weight(IP)" of each endpoint; mexc_api.md
§3.3): what one request costs against the simulator's ``rate_limit`` budget per 10 s."""

from __future__ import annotations

__all__ = ["weight"]

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
