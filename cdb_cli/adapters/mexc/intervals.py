"""Kline interval names: ours (``1h``, ``1w``) ↔ MEXC REST (``60m``, ``1W``) ↔ WS (``Min60``).

mexc_api.md §2.1: REST knows ``1m 5m 15m 30m 60m 4h 1d 1W 1M`` (no ``1h``, no ``8h``); the WS kline
channel knows ``Min1 … Month1`` (and ``Hour8``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INTERVALS", "Interval", "interval"]

_MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Interval:
    """One kline interval under its three names, with its length (``1M`` is nominally 30 days)."""

    name: str
    rest: str | None
    ws: str
    ms: int


INTERVALS: dict[str, Interval] = {
    item.name: item
    for item in (
        Interval("1m", "1m", "Min1", _MINUTE_MS),
        Interval("5m", "5m", "Min5", 5 * _MINUTE_MS),
        Interval("15m", "15m", "Min15", 15 * _MINUTE_MS),
        Interval("30m", "30m", "Min30", 30 * _MINUTE_MS),
        Interval("1h", "60m", "Min60", 60 * _MINUTE_MS),
        Interval("4h", "4h", "Hour4", 240 * _MINUTE_MS),
        Interval("8h", None, "Hour8", 480 * _MINUTE_MS),
        Interval("1d", "1d", "Day1", 1440 * _MINUTE_MS),
        Interval("1w", "1W", "Week1", 7 * 1440 * _MINUTE_MS),
        Interval("1M", "1M", "Month1", 30 * 1440 * _MINUTE_MS),
    )
}
_ALIASES = {"60m": "1h", "1W": "1w", "Min1": "1m"} | {i.ws: i.name for i in INTERVALS.values()}


def interval(name: str) -> Interval:
    """An interval by any of its names (``1h``, ``60m``, ``Min60``); ValueError if unknown."""
    found = INTERVALS.get(name) or INTERVALS.get(_ALIASES.get(name, ""))
    if found is None:
        known = ", ".join(INTERVALS)
        raise ValueError(f"Unknown kline interval {name!r}; known: {known}")
    return found
