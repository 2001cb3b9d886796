"""The paper venue: the account rebuilt from the store, orders filled by the simulated venue.

:class:`PaperVenue` is what a paper run hands the one :class:`~cdb_cli.runtime.loop.TradingLoop`.
The account opens with ``CDB_STARTING_CASH`` the first time (stored, so a later change of the
setting does not rewrite history) and from the stored fills after that; the orders that were
still working go back to the pipeline's simulated venue, with what they had filled. Orders leave
inside the pipeline (the simulated venue fills them against the market's trades), so the venue
has nothing to start, send or stop.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.records import Mode
from cdb_cli.services.restore import STARTING_CASH_KEY, restore_orders, restore_portfolio

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.records import OrderRecord
    from cdb_cli.runtime.loop import TradingLoop

__all__ = ["PaperVenue"]

logger = logging.getLogger(__name__)


class PaperVenue:
    """A paper run's venue (:class:`~cdb_cli.runtime.venue.Venue`); see the module docstring."""

    mode = Mode.PAPER

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self._fills = 0

    async def open(self, loop: TradingLoop, orders: list[OrderRecord]) -> Portfolio:
        store = loop.store
        stored_cash = await asyncio.to_thread(store.get_config, STARTING_CASH_KEY)
        if stored_cash is None:
            stored_cash = str(loop.settings.starting_cash)
            await asyncio.to_thread(store.set_config, STARTING_CASH_KEY, stored_cash)
        fills = await asyncio.to_thread(store.fills)
        self._fills = loop.summary.restored_fills = len(fills)
        quote = split_symbol(loop.symbols[0])[1]
        return await asyncio.to_thread(restore_portfolio, store, Decimal(stored_cash), fills, quote)

    async def resume(
        self, loop: TradingLoop, pipeline: TradingPipeline, orders: list[OrderRecord]
    ) -> dict[str, str]:
        restored = await asyncio.to_thread(
            restore_orders, loop.store, pipeline, orders, loop.symbols
        )
        loop.summary.restored_orders = restored
        if self._fills or orders:  # a restart: say what it resumed (the run_start audit has it)
            portfolio = pipeline.portfolio
            held = sum(1 for p in portfolio.positions.values() if p.quantity > 0)
            logger.info(
                "Resumed the paper account: %d fills, %d working orders; cash %s %s, %d "
                "positions open",
                self._fills,
                restored,
                f"{portfolio.cash.normalize():f}",
                split_symbol(loop.symbols[0])[1],
                held,
            )
        return {}

    async def start(self, pipeline: TradingPipeline, stop: asyncio.Event) -> None:
        """Nothing to start: the simulated venue is inside the pipeline."""

    def nudge(self, pipeline: TradingPipeline) -> None:
        """Nothing to send: the pipeline's simulated venue took the orders as they were made."""

    def flushed(self, pipeline: TradingPipeline, now_ns: int) -> None:
        """Nothing waits outside the pipeline."""

    async def stop(self, pipeline: TradingPipeline) -> None:
        """Nothing to stop."""

    def readiness(self) -> list[str]:
        return []
