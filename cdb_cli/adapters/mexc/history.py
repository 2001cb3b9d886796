"""Indicator warm-up from MEXC klines, in the shape the paper runtime asks for (``WarmUp``).

``kline_warm_up(client)`` returns ``async (symbol) -> [(ts_close_ns, close, volume), …]``: the
last ``bars`` closed candles, oldest first. The candle still open is left out, so the live loop's
first bar does not repeat it. Floats are fine here: indicators use floats (DESIGN.md "Money").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.intervals import interval as lookup_interval

__all__ = ["kline_warm_up"]

History = Callable[[str], Awaitable[list[tuple[int, float, float]]]]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def kline_warm_up(
    client: MexcHttpClient,
    *,
    interval: str = "1m",
    bars: int = 300,
    clock_ms: Callable[[], int] = _wall_ms,
) -> History:
    """A warm-up that fetches the last ``bars`` closed ``interval`` candles of a symbol."""
    step = lookup_interval(interval).ms

    async def history(symbol: str) -> list[tuple[int, float, float]]:
        now = clock_ms()
        end = now - now % step  # the open time of the candle still open: excluded
        rows = [
            kline
            async for page in client.iter_klines(symbol, interval, end - bars * step, end)
            for kline in page
        ]
        return [
            ((k.open_time_ms + step) * 1_000_000, float(k.close), float(k.volume)) for k in rows
        ]

    return history
