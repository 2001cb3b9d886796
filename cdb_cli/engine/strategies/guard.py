"""A strategy's exceptions during a run: caught per bar, logged with the bar, counted, and the
symbol's strategy disabled after ``max_errors`` (``CDB_STRATEGY_MAX_ERRORS``).

The pipeline and the ``signals`` component call :meth:`StrategyErrors.failed` from the ``except``
around a strategy's ``on_bar`` (free while nothing is raised). A disabled symbol gets a
:class:`DisabledStrategy` in place of its strategy: no intent any more, a trace that says why. The
loop, the marks, the fills and risk's loss limits go on as before: a held position stays marked
and under the circuit breaker, the daily drawdown and an operator's flatten.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Protocol

from cdb_cli.engine.events import Condition
from cdb_cli.engine.signals import SignalIntent, Strategy, StrategyView

__all__ = ["DisabledStrategy", "StrategyErrors"]

logger = logging.getLogger("cdb_cli.engine.strategy")


class DisabledStrategy:
    """Stands in for a symbol's strategy after too many errors: never an intent."""

    __slots__ = ("name", "reason")
    warmup = 0

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        return None

    def explain(self, close: float, volume: float) -> StrategyView:
        condition = Condition(name="disabled", passed=False, text=self.reason[:300])
        return StrategyView("warming_up", 0, (condition,), {})


class _OnBar(Protocol):
    def __call__(self, ts_event: int, close: float, volume: float) -> SignalIntent | None: ...


class _Holder(Protocol):
    """What holds a symbol's strategy and its bound ``on_bar`` (the pipeline's ``SymbolState``)."""

    symbol: str
    strategy: Strategy
    on_bar: _OnBar


class StrategyErrors:
    """Counts each symbol's strategy errors; disables the strategy at ``max_errors``."""

    def __init__(self, max_errors: int = 10) -> None:
        if max_errors < 1:
            raise ValueError(f"max_errors must be at least 1, received {max_errors}")
        self.max_errors = max_errors
        self.counts: Counter[str] = Counter()
        """Errors per symbol."""
        self.disabled: dict[str, str] = {}
        """Disabled symbols, with why."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def failed(self, symbol: str, strategy: Strategy, ts_event: int, error: BaseException) -> bool:
        """Log and count ``error`` raised by ``symbol``'s strategy on the bar at ``ts_event``;
        True when the strategy must now be disabled (:meth:`disable`)."""
        self.counts[symbol] += 1
        count = self.counts[symbol]
        name = getattr(strategy, "name", type(strategy).__name__)
        when = datetime.fromtimestamp(ts_event / 1e9, UTC).isoformat(timespec="seconds")
        logger.warning(
            "Strategy %s failed on the %s bar of %s (error %d of %d): %s: %s",
            name,
            symbol,
            when,
            count,
            self.max_errors,
            type(error).__name__,
            error,
            extra={"symbol": symbol, "ts_event": ts_event, "strategy": name},
        )
        return count >= self.max_errors and symbol not in self.disabled

    def disable(self, symbol: str, strategy: Strategy, error: BaseException) -> DisabledStrategy:
        """The stand-in for ``symbol``'s strategy after its last error (logged once)."""
        name = getattr(strategy, "name", type(strategy).__name__)
        reason = (
            f"strategy {name} disabled after {self.counts[symbol]} errors; "
            f"last: {type(error).__name__}: {error}"
        )
        self.disabled[symbol] = reason
        logger.error("%s: %s (its positions stay under risk's limits)", symbol, reason)
        return DisabledStrategy(name, reason)

    def on_error(self, holder: _Holder, ts_event: int, error: BaseException) -> None:
        """:meth:`failed`, and :meth:`disable` when due, on what holds the strategy (its
        ``strategy`` and ``on_bar`` replaced)."""
        if self.failed(holder.symbol, holder.strategy, ts_event, error):
            holder.strategy = self.disable(holder.symbol, holder.strategy, error)
            holder.on_bar = holder.strategy.on_bar
