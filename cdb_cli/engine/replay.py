"""Replay: recorded market data through the trading pipeline on a simulated clock.

Data arrive as columnar series (``array`` of float / int64: 1M bars take ~48 MB, not the ~250 MB
of a list of tuples), already validated by the loader (finite, positive, strictly increasing
timestamps), so the per-bar loop does no checking. Two drivers:

* :func:`replay_bars` — one closed bar at a time: working orders fill at the bar's open, the
  strategy runs at its close (``ts_close = ts_open + interval``), and the clock sits at the close.
* :func:`replay_trades` — tick replay: every trade moves the mark and fills working orders; trades
  are aggregated into bars of ``interval_ns`` that feed the strategy when they close.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.indicators import SeriesCache
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.symbols import intents_between
from cdb_cli.engine.ticks import TickDriver

__all__ = ["BarSeries", "TradeSeries", "replay_bars", "replay_trades"]

Progress = Callable[[int], None]
"""Called with the number of rows done since the last call (a progress bar's ``advance``)."""

_PROGRESS_EVERY = 65_536
"""Bars or trades per progress call."""


@dataclass
class BarSeries:
    """Closed bars of one symbol in time order; ``ts`` is each bar's open time (ns)."""

    symbol: str
    interval_ns: int
    ts: array[int] = field(default_factory=lambda: array("q"))
    open: array[float] = field(default_factory=lambda: array("d"))
    high: array[float] = field(default_factory=lambda: array("d"))
    low: array[float] = field(default_factory=lambda: array("d"))
    close: array[float] = field(default_factory=lambda: array("d"))
    volume: array[float] = field(default_factory=lambda: array("d"))
    skipped_rows: int = 0
    first_skipped: str | None = None
    """The first skipped row's number and reason (``row 3: ...``), when any was skipped."""
    cache: SeriesCache = field(default_factory=dict, repr=False, compare=False)
    """Indicator values computed over these bars (:class:`~cdb_cli.engine.signals.BarColumns`):
    every replay of this series shares them."""

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class TradeSeries:
    """Public trades of one symbol in time order (``ts`` in ns)."""

    symbol: str
    ts: array[int] = field(default_factory=lambda: array("q"))
    price: array[float] = field(default_factory=lambda: array("d"))
    quantity: array[float] = field(default_factory=lambda: array("d"))
    buyer: array[int] = field(default_factory=lambda: array("b"))
    """1 when the buyer was the aggressor (taker), 0 when the seller was."""
    skipped_rows: int = 0
    first_skipped: str | None = None
    """The first skipped row's number and reason (``row 3: ...``), when any was skipped."""

    def __len__(self) -> int:
        return len(self.ts)


def replay_bars(
    pipeline: TradingPipeline,
    series: BarSeries,
    clock: TestClock,
    progress: Progress | None = None,
) -> None:
    """Feed every bar of ``series`` to the pipeline, the clock at each bar's close.

    A batch strategy gives every bar's intents first, with the series' indicator cache (replays
    of one series share what their strategies computed); then the bars go through
    ``pipeline.run_bars`` in chunks, so a progress bar can move.
    """
    symbol, step, n = series.symbol, series.interval_ns, len(series)
    with paused_gc():
        intents = pipeline.batch_intents(
            symbol, series.ts, series.close, series.volume, step, series.cache
        )
        for start in range(0, n, _PROGRESS_EVERY):
            end = min(start + _PROGRESS_EVERY, n)
            pipeline.run_bars(
                symbol,
                series.ts[start:end],
                series.open[start:end],
                series.close[start:end],
                series.volume[start:end],
                interval_ns=step,
                clock=clock,
                intents=None if intents is None else intents_between(intents, start, end),
            )
            if progress is not None:
                progress(end - start)
        pipeline.finish()


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off for a replay's loop, back as it was after.

    A replay keeps what it produces (orders, fills, events) to the end; each of the collector's
    full passes walks all of it again, which took ~40 % of a trade-heavy replay (measured:
    ``benchmarks/replay.py``). The objects made per bar form no cycles; reference counting frees
    them. Nothing is frozen at the end: the pipeline's parts point back at it, and a frozen run
    is never freed (a sweep of a thousand runs in one worker kept every one).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def replay_trades(
    pipeline: TradingPipeline,
    series: TradeSeries,
    clock: TestClock,
    interval_ns: int,
    progress: Progress | None = None,
) -> int:
    """Feed every trade, closing a bar of ``interval_ns`` at each boundary; return bars closed.

    A bar closes when the first trade of a later interval arrives (or at the end of the data);
    intervals without trades make no bar, as on an exchange's kline stream. The trades go through
    the :class:`~cdb_cli.engine.ticks.TickDriver` the live loop uses.
    """
    ticks = TickDriver(pipeline, interval_ns, clock=clock)
    trade, symbol = ticks.trade, series.symbol
    done = 0
    for ts, price, quantity in zip(series.ts, series.price, series.quantity, strict=True):
        trade(symbol, ts, price, quantity)
        if progress is not None:
            done += 1
            if done == _PROGRESS_EVERY:
                progress(done)
                done = 0
    ticks.flush()
    if progress is not None and done:
        progress(done)
    pipeline.finish()
    return ticks.closed
