"""Strategy traces: what the strategy saw on every closed bar, for ``cdb explain`` and the screen.

A :class:`Tracer` is handed to the pipeline (or called by the ``signals`` component) after the
strategy has had a closed bar. It asks the strategy to explain that bar
(:meth:`~cdb_cli.engine.signals.Strategy.explain`: each condition with its value, threshold and
outcome, or that it is still warming up), adds how many bar intervals were missing just before it
(no trade in them: the feed was silent), and hands one :class:`StrategyTrace` event to its
recorder, where it is stored in the loop's batch like every other event. The trace of the bar
that raised a signal carries the signal's id; the signal carries the trace's id
(:func:`trace_id`), so either leads to the other.

The per-bar cost is the strategy's explanation and one small event: paid by the run loop on
every bar (a bar a minute), and by a replay only when it keeps its traces (``--persist``).

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Protocol

from cdb_cli.engine.events import Condition, Event, StrategyTrace, Topic
from cdb_cli.engine.signals import Strategy, StrategyView

__all__ = ["Tracer", "trace_bar_close", "trace_id"]


class _EventSink(Protocol):
    def event(self, topic: Topic, event: Event) -> None: ...


def trace_id(run_id: str, symbol: str, ts_close: int) -> str:
    """The id of a run's trace of ``symbol``'s bar closing at ``ts_close``; starts with the run
    id (so ``--run`` selects it) and is the same however often the bar is traced."""
    return f"{run_id}-t{ts_close:x}-{symbol}"[:64]


def trace_bar_close(trace: str) -> int | None:
    """The bar close a :func:`trace_id` names (None: not a trace id, or cut at 64 characters)."""
    found = _TRACE_ID.search(trace)
    return int(found.group(1), 16) if found is not None else None


_TRACE_ID = re.compile(r"-t([0-9a-f]+)-[A-Z0-9]+$")


class Tracer:
    """Builds and records the strategy trace of each closed bar; keeps the latest per symbol."""

    def __init__(
        self,
        recorder: _EventSink,
        *,
        run_id: str,
        interval_ns: int,
        source: str,
        deferred: bool = False,
    ) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be above 0, received {interval_ns}")
        self._recorder = recorder
        self.run_id = run_id
        self.interval_ns = interval_ns
        self._source = source
        self._last_close: dict[str, int] = {}
        self.latest: dict[str, StrategyTrace] = {}
        """The latest trace of each symbol (the live screen's "what it waits for")."""
        self.last_signal_ns: dict[str, int] = {}
        """Close time of the latest bar that raised a signal, per symbol."""
        self.counts: dict[str, Counter[str]] = {}
        """Per symbol: bars, evaluated, each condition that passed, signals by side."""
        self.deferred = deferred
        """Build each trace at :meth:`flush`, not at once: a live loop first hands its orders
        over (the bars of other symbols closing in the same round are on an order's path)."""
        self._pending: dict[str, tuple[Strategy, int, float, float, str, str]] = {}

    def id_for(self, symbol: str, ts_close: int) -> str:
        return trace_id(self.run_id, symbol, ts_close)

    def bar(
        self,
        symbol: str,
        strategy: Strategy,
        ts_close: int,
        close: float,
        volume: float,
        signal_id: str = "",
        signal: str = "",
    ) -> None:
        """Trace the bar of ``symbol`` closing at ``ts_close`` that ``strategy`` just had: at
        once, or (``deferred``) at the next :meth:`flush` — or at :meth:`settle`, which the
        caller runs before it hands the strategy this symbol's next bar."""
        if not self.deferred:
            self._trace(symbol, strategy, ts_close, close, volume, signal_id, signal)
            return
        self._pending[symbol] = (strategy, ts_close, close, volume, signal_id, signal)

    def settle(self, symbol: str) -> None:
        """Build the deferred trace of ``symbol``'s last bar now: its strategy is about to move
        on (an explanation reads the strategy as the bar left it)."""
        earlier = self._pending.pop(symbol, None)
        if earlier is not None:
            self._trace(symbol, *earlier)

    @property
    def pending(self) -> bool:
        """Whether deferred traces wait for :meth:`flush`."""
        return bool(self._pending)

    def flush(self) -> list[StrategyTrace]:
        """Build and record the deferred traces; return them."""
        pending, self._pending = self._pending, {}
        return [self._trace(symbol, *args) for symbol, args in pending.items()]

    def _trace(
        self,
        symbol: str,
        strategy: Strategy,
        ts_close: int,
        close: float,
        volume: float,
        signal_id: str,
        signal: str,
    ) -> StrategyTrace:
        previous = self._last_close.get(symbol)
        gap = 0
        if previous is not None and ts_close > previous:
            gap = max(0, (ts_close - previous) // self.interval_ns - 1)
        self._last_close[symbol] = max(ts_close, previous or ts_close)
        trace = self._build(symbol, strategy, ts_close, close, volume, gap, signal_id, signal)
        if signal:
            self.last_signal_ns[symbol] = ts_close
        self._count(trace)
        self.latest[symbol] = trace
        self._recorder.event(Topic.STRATEGY_TRACES, trace)
        return trace

    def preview(
        self, symbol: str, strategy: Strategy, ts_close: int, close: float, volume: float
    ) -> StrategyTrace:
        """How the strategy sees its latest warm-up bar (history, not traded on): shown as the
        symbol's latest state until the first live bar closes; neither stored nor counted."""
        trace = self._build(symbol, strategy, ts_close, close, volume, 0, "", "")
        self.latest[symbol] = trace
        return trace

    def _build(
        self,
        symbol: str,
        strategy: Strategy,
        ts_close: int,
        close: float,
        volume: float,
        gap: int,
        signal_id: str,
        signal: str,
    ) -> StrategyTrace:
        try:
            view = strategy.explain(close, volume)
        except Exception as error:  # a strategy's bug in its trace: the trace says so
            text = f"explain failed: {type(error).__name__}: {error}"[:300]
            view = StrategyView("warming_up", 0, (Condition(name="error", text=text),), {})
        return StrategyTrace(
            event_id=self.id_for(symbol, ts_close),
            symbol=symbol,
            ts_event=ts_close,
            source=self._source,
            strategy=getattr(strategy, "name", "strategy"),
            status="evaluated" if view.status == "evaluated" else "warming_up",
            close=close,
            volume=volume,
            bars_needed=view.bars_needed,
            gap_bars=gap,
            conditions=view.conditions,
            values=view.values,
            signal="buy" if signal == "buy" else "exit" if signal == "exit" else "",
            signal_id=signal_id,
        )

    def _count(self, trace: StrategyTrace) -> None:
        counts = self.counts.setdefault(trace.symbol, Counter())
        counts["bars"] += 1
        if trace.status != "evaluated":
            return
        counts["evaluated"] += 1
        for condition in trace.conditions:
            if condition.passed:
                counts[condition.name] += 1
        if trace.signal:
            counts[f"signal:{trace.signal}"] += 1

    def funnel_line(self, symbol: str) -> str:
        """The strategy's part of the funnel in one line (the run's stop line), e.g.
        ``BTCUSDT: 40 bars, 14 evaluated: cross_up 0, rsi 7, volume 1 of 14; 0 buy, 0 exit``."""
        counts = self.counts.get(symbol, Counter())
        latest = self.latest.get(symbol)
        evaluated = counts["evaluated"]
        line = f"{symbol}: {counts['bars']} bars, {evaluated} evaluated"
        if latest is not None and latest.conditions:
            passed = ", ".join(f"{c.name} {counts[c.name]}" for c in latest.conditions)
            line += f": {passed} of {evaluated}"
        elif latest is not None:
            line += f" (warming up, {latest.bars_needed} more bars needed)"
        return f"{line}; {counts['signal:buy']} buy, {counts['signal:exit']} exit signals"
