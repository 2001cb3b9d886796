"""Market ticks into a pipeline: the one way every tick-driven path feeds it.

A :class:`TickDriver` takes public trades and quotes in the order they came: each trade may close
the symbol's bar (:class:`~cdb_cli.engine.bars.BarBuilder`: the first trade of a later interval
closes it), then fills working orders and moves the mark; a quote gives the spread; a clock may
close due bars (:meth:`TickDriver.close_due`). The paper and live loop
(:class:`~cdb_cli.runtime.loop.TradingLoop`), the tick replay
(:func:`~cdb_cli.engine.replay.replay_trades`) and ``cdb parity`` (which re-runs a stored run)
all go through it, so a bar closes, and a decision is taken, at the same point of the stream in
each.

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from cdb_cli.engine.bars import BarBuilder, ClosedBar
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.pipeline import TradingPipeline

__all__ = ["OnClose", "TickDriver"]

OnClose = Callable[[ClosedBar, int], None]
"""Called after the strategy has seen a closed bar, with the time it was closed at (the closing
trade's, or the clock's)."""


class TickDriver:
    """Trades and quotes → bars → the pipeline; see the module docstring.

    ``clock`` (a simulated one: replay, parity) is set before each bar's decision to
    ``decision_time(bar, closed_at)`` (default: the bar's close); a live loop's clock is the wall.
    """

    def __init__(
        self,
        pipeline: TradingPipeline,
        interval_ns: int,
        *,
        on_close: OnClose | None = None,
        clock: TestClock | None = None,
        decision_time: Callable[[ClosedBar, int], int] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.bars = BarBuilder(interval_ns)
        self.closed = 0
        """How many bars this driver closed."""
        self._on_close = on_close
        self._clock = clock
        self._decision_time = decision_time

    @property
    def interval_ns(self) -> int:
        return self.bars.interval_ns

    def trade(self, symbol: str, ts: int, price: float, quantity: float) -> None:
        """A public trade: the bar it closes first (its strategy decides), then the fills."""
        closed = self.bars.on_trade(symbol, ts, price, quantity)
        if closed is not None:
            self._close(closed, ts)
        clock = self._clock
        if clock is not None and ts > clock.now_ns:
            clock.now_ns = ts
        self.pipeline.on_trade(symbol, ts, price, quantity)

    def quote(self, symbol: str, ts: int, bid: Decimal, ask: Decimal) -> None:
        """Best bid and ask: the spread rule's, and the touch a simulated fill takes."""
        self.pipeline.on_quote(symbol, ts, bid, ask)

    def close_due(self, until_ns: int, closed_at: int | None = None) -> int:
        """Close every bar whose interval ended by ``until_ns`` (the clock's close; a live loop
        passes its clock less the grace); ``closed_at`` is the time to say they closed at
        (default ``until_ns``). Returns how many closed."""
        bars = self.bars.close_due(until_ns)
        for bar in bars:
            self._close(bar, until_ns if closed_at is None else closed_at)
        return len(bars)

    def flush(self) -> int:
        """Close every open bar (the end of a replay's data); returns how many closed."""
        bars = self.bars.flush()
        for bar in bars:
            self._close(bar, bar.ts_close)
        return len(bars)

    def _close(self, bar: ClosedBar, closed_at: int) -> None:
        self.closed += 1
        clock = self._clock
        if clock is not None:
            timing = self._decision_time
            at = bar.ts_close if timing is None else timing(bar, closed_at)
            clock.now_ns = max(clock.now_ns, at)
        # The strategy first: what the caller does with the bar is paperwork, off the order's path.
        self.pipeline.on_bar_close(bar.symbol, bar.ts_close, bar.close, bar.volume)
        if self._on_close is not None:
            self._on_close(bar, closed_at)
