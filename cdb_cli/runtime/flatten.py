"""An operator's flatten under way (``cdb risk halt --flatten``): sell every position until flat.

Shared by the one-process loop (``TradingLoop``), which calls :meth:`Flatten.step` after each
batch of market events, and the ``risk`` component, which calls it for a symbol at that symbol's
next closed bar (the point of the market stream where ``execution`` waits for ``risk``). The exits
go out through the pipeline's normal execution path
(:meth:`~cdb_cli.engine.pipeline.TradingPipeline.flatten`), again and again until nothing is held
and no exit is working. A reset ends it (trading resumed).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from cdb_cli.engine.risk import TradingState

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline

__all__ = ["Flatten"]

logger = logging.getLogger(__name__)


class Flatten:
    """The state of an operator's flatten: its reason while under way, and the symbols whose
    exit the venue refused (dust below its minimum: they stay held, and are not tried again)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        self.reason: str | None = None
        self.unsellable: set[str] = set()

    def start(self, reason: str) -> None:
        self.reason = reason
        self.unsellable.clear()

    def step(
        self, pipeline: TradingPipeline, ts: int, *, only: Collection[str] | None = None
    ) -> None:
        """Place the exits still missing at event time ``ts`` (idempotent), of every symbol or
        of those in ``only``; end the flatten when flat, or when trading resumed."""
        reason = self.reason
        if reason is None:
            return
        if pipeline.trading_state is not TradingState.HALTED:  # reset: trading resumed
            self.reason = None
            return
        skip = set(self.unsellable)
        if only is not None:
            skip.update(symbol for symbol in self.symbols if symbol not in only)
        placed = pipeline.flatten(ts, reason, skip=skip)
        for symbol, order in placed.items():
            if order.status == "REJECTED":
                self.unsellable.add(symbol)
                logger.warning("Flatten: the exit of %s was refused; it stays held", symbol)
            else:
                logger.warning("Flatten: selling %s %s", order.quantity, symbol)
        self.check_done(pipeline)

    def check_done(self, pipeline: TradingPipeline) -> None:
        """End the flatten when nothing sellable is held and no order is working, or when
        trading resumed. Places nothing: for a caller whose exits go out at other points (the
        ``risk`` component, at a symbol's next bar), so the flatten ends as soon as it is flat."""
        if self.reason is None:
            return
        if pipeline.trading_state is not TradingState.HALTED:  # reset: trading resumed
            self.reason = None
            return
        held = [
            symbol
            for symbol in self.symbols
            if pipeline.portfolio.quantity(symbol) > 0 and symbol not in self.unsellable
        ]
        if not held and not pipeline.execution.working_orders():
            self.reason = None
            left = f" ({', '.join(sorted(self.unsellable))} could not be sold)"
            logger.warning("Flatten done%s", left if self.unsellable else "")
