"""Closed bars built from trades: the strategy's input when the feed is a trade stream.

An exchange's kline stream pushes bars while they are still open; the strategy wants closed
ones. :class:`BarBuilder` aggregates trades into bars of one interval per symbol and closes a bar
either when a trade of a later interval arrives, or when the caller's clock passes the bar's end
(:meth:`BarBuilder.close_due`: a quiet market still closes its bars on time). An interval without
any trade makes no bar, like an exchange's kline history.

Pure: stdlib and ``cdb_cli.engine`` only; time comes in as int nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from cdb_cli.engine.events import Bar

__all__ = ["BarBuilder", "ClosedBar"]


_MONEY_GRID = Decimal("1e-18")
"""The finest step the store keeps (``NUMERIC(38, 18)``)."""


def _exact(value: float) -> Decimal:
    """A float of the bar as ``Decimal``: its shortest repr, within the store's 18 places.

    A sum of float quantities (a bar's volume) can need more (``0.0022060000000000005``): the
    store would refuse the whole batch it came in, so it is rounded to the 18th place.
    """
    exact = Decimal(repr(value))
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -18:
        return exact.quantize(_MONEY_GRID, rounding=ROUND_HALF_EVEN)
    return exact


@dataclass(frozen=True, slots=True)
class ClosedBar:
    """One finished bar of one symbol (prices and volume as floats: analytics, not money)."""

    symbol: str
    ts_open: int
    ts_close: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def to_event(self, source: str, *, closed_at: int = 0) -> Bar:
        """The stored ``Bar`` event (id from symbol and open time, so a repeat is skipped);
        ``closed_at``: when it was closed (the closing trade's time or the clock's; 0: unknown)."""
        seconds = (self.ts_close - self.ts_open) // 1_000_000_000
        interval = f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
        return Bar(
            event_id=f"bar-{self.symbol}-{self.ts_open}",
            symbol=self.symbol,
            ts_event=self.ts_open,
            source=source,
            interval=interval,
            open=_exact(self.open),
            high=_exact(self.high),
            low=_exact(self.low),
            close=_exact(self.close),
            volume=_exact(self.volume),
            closed_at=closed_at,
        )


@dataclass(slots=True)
class _Open:
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarBuilder:
    """Aggregates trades into bars of ``interval_ns`` per symbol."""

    def __init__(self, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be above 0, received {interval_ns}")
        self.interval_ns = interval_ns
        self._open: dict[str, _Open] = {}
        self._closed_until: dict[str, int] = {}  # per symbol: intervals before this are done

    def on_trade(self, symbol: str, ts: int, price: float, quantity: float) -> ClosedBar | None:
        """Add a trade; return the bar it closed (the symbol's previous interval), if any.

        A trade older than the open bar's interval (late or out of order) is ignored.
        """
        start = ts - ts % self.interval_ns
        if start < self._closed_until.get(symbol, start):
            return None  # late: its bar was closed already (by a later trade or the clock)
        current = self._open.get(symbol)
        if current is not None and start < current.start:
            return None
        if current is not None and start == current.start:
            if price > current.high:
                current.high = price
            elif price < current.low:
                current.low = price
            current.close = price
            current.volume += quantity
            return None
        self._open[symbol] = _Open(start, price, price, price, price, quantity)
        if current is None:
            return None
        self._closed_until[symbol] = current.start + self.interval_ns
        return self._closed(symbol, current)

    def close_due(self, now_ns: int) -> list[ClosedBar]:
        """Close every open bar whose interval ended at or before ``now_ns``."""
        done = [
            (symbol, bar)
            for symbol, bar in self._open.items()
            if bar.start + self.interval_ns <= now_ns
        ]
        for symbol, bar in done:
            del self._open[symbol]
            self._closed_until[symbol] = bar.start + self.interval_ns
        return [self._closed(symbol, bar) for symbol, bar in done]

    def flush(self) -> list[ClosedBar]:
        """Close every open bar now (the end of a replay)."""
        done = [self._closed(symbol, bar) for symbol, bar in self._open.items()]
        self._open.clear()
        return done

    def _closed(self, symbol: str, bar: _Open) -> ClosedBar:
        return ClosedBar(
            symbol,
            bar.start,
            bar.start + self.interval_ns,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
        )
