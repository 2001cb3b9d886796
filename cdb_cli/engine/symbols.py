"""What the pipeline's loop holds per symbol, and how a replay feeds it a batch strategy.

:class:`SymbolState` is one symbol's state in the hot loop. :func:`batch_intents` asks a
:class:`~cdb_cli.engine.signals.BatchStrategy` for every intent of a run of bars at once (a
replay's fast path); :func:`intents_between` cuts them to one pass of the loop, which then
passes over the stretches where nothing is held or working and no intent or day roll comes
(:meth:`~cdb_cli.engine.pipeline.TradingPipeline.run_bars`). :func:`warm_up` primes a strategy
with history.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import overload

from cdb_cli.engine.indicators import SeriesCache
from cdb_cli.engine.signals import BarColumns, BatchStrategy, SignalIntent, Strategy
from cdb_cli.engine.strategies.guard import StrategyErrors

__all__ = ["Intents", "SymbolState", "batch_intents", "intents_between", "warm_up"]

Intents = list[tuple[int, SignalIntent]]
"""A batch strategy's intents, each with the index of its bar."""


class SymbolState:
    """One symbol's state in the hot loop: its strategy, float mark and quantity, last quote."""

    __slots__ = (
        "ask",
        "bid",
        "last_ts",
        "mark",
        "on_bar",
        "qty",
        "strategy",
        "symbol",
        "working",
    )

    def __init__(self, symbol: str, strategy: Strategy) -> None:
        self.symbol = symbol
        self.strategy = strategy
        self.on_bar = strategy.on_bar
        self.mark = 0.0  # float mark (last close or trade)
        self.qty = 0.0  # float shadow of the portfolio's quantity
        self.last_ts = -1
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.working = False  # an order of this symbol waits for its fill


class _CloseTimes(Sequence[int]):
    """Bar close times as a view of their open times plus the interval (no copy)."""

    __slots__ = ("_offset", "_opens")

    def __init__(self, opens: Sequence[int], offset: int) -> None:
        self._opens = opens
        self._offset = offset

    def __len__(self) -> int:
        return len(self._opens)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...

    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            return [ts + self._offset for ts in self._opens[index]]
        return self._opens[index] + self._offset


def batch_intents(
    state: SymbolState,
    errors: StrategyErrors,
    ts_open: Sequence[int],
    closes: Sequence[float],
    volumes: Sequence[float],
    interval_ns: int,
    cache: SeriesCache | None,
) -> Intents | None:
    """Every intent of these bars from ``state``'s strategy at once, if it is a
    :class:`BatchStrategy`; None to feed it bar by bar. An exception in ``on_bars`` counts as
    an error at the first bar and disables the strategy at once: its state is unknown."""
    strategy = state.strategy
    if not isinstance(strategy, BatchStrategy) or not ts_open:
        return None
    columns = BarColumns(_CloseTimes(ts_open, interval_ns), closes, volumes, cache)
    try:
        return strategy.on_bars(columns)
    except Exception as error:  # a strategy's bug never stops the run
        errors.failed(state.symbol, strategy, ts_open[0] + interval_ns, error)
        state.strategy = errors.disable(state.symbol, strategy, error)
        state.on_bar = state.strategy.on_bar
        return []


def _index(item: tuple[int, SignalIntent]) -> int:
    return item[0]


def intents_between(intents: Intents, start: int, end: int) -> Intents:
    """The intents of bars ``start`` to ``end`` (excluded), indexed from ``start``."""
    lo = bisect_left(intents, start, key=_index)
    hi = bisect_left(intents, end, lo, key=_index)
    return [(i - start, intent) for i, intent in intents[lo:hi]]


def warm_up(
    state: SymbolState, errors: StrategyErrors, bars: Iterable[tuple[int, float, float]]
) -> tuple[int, tuple[int, float, float] | None]:
    """Feed history ((ts_close, close, volume), oldest first) to ``state``'s strategy without
    acting on it, the mark following while nothing is held; (bars seen, the last one)."""
    seen = 0
    last: tuple[int, float, float] | None = None
    for ts, close, volume in bars:
        try:
            state.on_bar(ts, close, volume)
        except Exception as error:  # a strategy's bug never stops the run
            errors.on_error(state, ts, error)
        if ts >= state.last_ts:
            state.last_ts = ts
            if not state.qty:
                state.mark = close
        seen += 1
        last = (ts, close, volume)
    return seen, last
