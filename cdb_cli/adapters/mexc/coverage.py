"""How many klines a range should hold, to tell a download that came back short.

MEXC opens candles on a grid: minutes to days from the epoch, weeks on Mondays (UTC), months on
the 1st. A download of ``start_ms <= open < end_ms`` should hold every candle of that grid that
has closed by ``now_ms`` (the one still open may or may not be served); fewer means the source
could not serve part of the range (before its history, a gap).
"""

from __future__ import annotations

from datetime import UTC, datetime

from cdb_cli.adapters.mexc.intervals import interval as lookup_interval

__all__ = ["expected_candles"]

_MONDAY_MS = 4 * 86_400_000  # 1970-01-05, the first Monday after the epoch


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _month_index(ms: int) -> tuple[int, bool]:
    """Months since 1970-01 of ``ms`` and whether ``ms`` is exactly a month's first instant."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    return (moment.year - 1970) * 12 + moment.month - 1, int(first.timestamp() * 1000) == ms


def expected_candles(interval: str, start_ms: int, end_ms: int, now_ms: int) -> int:
    """Closed candles of ``interval`` opening in ``[start_ms, end_ms)`` as of ``now_ms``."""
    found = lookup_interval(interval)
    if found.name == "1M":
        first, exact = _month_index(start_ms)
        first += 0 if exact else 1
        # A month has closed when the next one has begun: opens up to the month before now's.
        last_open, _ = _month_index(min(end_ms - 1, now_ms))
        closed_limit = _month_index(now_ms)[0] - 1
        return max(0, min(last_open, closed_limit) - first + 1)
    step = found.ms
    offset = _MONDAY_MS if found.name == "1w" else 0
    limit = min(end_ms, now_ms - step + 1)  # open + step <= now: closed
    if limit <= start_ms:
        return 0
    return max(0, _ceil_div(limit - offset, step) - _ceil_div(start_ms - offset, step))
