"""``portfolio``: fills from ``execution_events`` and marks from ``market_data`` → the ledger.

The ledger is rebuilt from the stored fills at start (like one process), then kept by the fills
the reports carry; trades mark it. A report with a fill is acknowledged only once ``execution``
has stored that fill (checked every ``confirm_interval_s``): a restart before that gets the report
again and books it, instead of a ledger rebuilt from a store that does not have it yet; a report
whose fill the store already has is not booked twice (the report carries its fill's id). A fill
not stored after ``confirm_timeout_s`` is acknowledged with a warning; no position is written
until the store has it. It writes the positions once the stored fills explain them, each as of
its last fill (a restart checks the two against each other), and an equity snapshot every
``snapshot_interval_s`` and at stop. It decides nothing, so it needs no catch-up rule: its
figures are the ledger's at the time it reads them.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any, ClassVar

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.events import ExecutionReport, Topic, TradeTick
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.remote import report_fill
from cdb_cli.runtime.components.base import Component
from cdb_cli.runtime.components.confirm import StoredFills
from cdb_cli.services.restore import restore_portfolio

__all__ = ["PortfolioComponent"]

logger = logging.getLogger(__name__)


class PortfolioComponent(Component):
    name = "portfolio"
    topics = (Topic.MARKET_DATA, Topic.EXECUTION_EVENTS)
    paced: ClassVar[dict[Topic, float]] = {Topic.MARKET_DATA: 0.25}

    ledger: Portfolio

    def __init__(
        self,
        *args: Any,
        snapshot_interval_s: float = 60.0,
        confirm_interval_s: float = 0.5,
        confirm_timeout_s: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot_interval_s = snapshot_interval_s
        self._next_snapshot = 0.0
        self._confirm_interval_s = confirm_interval_s
        self._confirm_timeout_s = confirm_timeout_s
        self._positions_due = False

    async def prepare(self) -> None:
        # Until the store has a booked fill, no position is written (a restart would find it
        # disagreeing with the stored fills).
        self.stored_fills = StoredFills(
            self.name,
            self.inboxes,
            self.store,
            self.call,
            interval_s=self._confirm_interval_s,
            timeout_s=self._confirm_timeout_s,
            consequence="no position is written until it has; a restart goes by the store",
        )
        fills = await self.call(self.store.fills)
        self.ledger = await self.call(
            restore_portfolio, self.store, await self.starting_cash(), fills, self.quote
        )

    async def step(self) -> None:
        reports = self.inboxes[Topic.EXECUTION_EVENTS]
        market = self.inboxes[Topic.MARKET_DATA]
        if not reports.queue and not market.queue:
            await self.idle()
        filled = self._take_fills()
        while market.queue:
            delivery, _ = market.pop()
            trade = delivery.event
            if isinstance(trade, TradeTick) and trade.symbol in self.symbols:
                self.ledger.roll_day(trade.ts_event)
                if self.ledger.quantity(trade.symbol) > 0:
                    self.ledger.mark(trade.symbol, trade.price)
            market.done(delivery)
        self._positions_due |= filled
        self._set_metrics()
        await self.stored_fills.confirm_due()
        if self._positions_due and self.stored_fills.all_stored:
            # Only positions the stored fills explain, each as of its last fill: a restart checks
            # a record against the stored fills up to that time (and not one older than a fill
            # this ledger has not seen yet).
            self.positions.extend(self.ledger.positions_records())
            self._positions_due = False
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_snapshot:
            self._next_snapshot = loop.time() + self._snapshot_interval_s
            await self._snapshot()

    def _take_fills(self) -> bool:
        """Book the fills of the reports that arrived; True if one was new to the ledger."""
        reports = self.inboxes[Topic.EXECUTION_EVENTS]
        filled = False
        while reports.queue:
            delivery, _ = reports.pop()
            report = delivery.event
            if isinstance(report, ExecutionReport) and report.last_quantity > 0:
                fill = report_fill(report)
                if self.ledger.apply_fill(fill):  # False: booked (stored) already
                    filled = True
                    self.count("fills")
                self.stored_fills.hold(delivery, fill)  # done once execution stored it
            else:
                reports.done(delivery)
        return filled

    def _set_metrics(self) -> None:
        if self.metrics is None:
            return
        ledger, metrics = self.ledger, self.metrics
        equity = ledger.equity()
        metrics.equity.set(float(equity))
        metrics.daily_drawdown.set(float(ledger.daily_drawdown_pct()))
        metrics.drawdown_from_peak.set(float(ledger.drawdown_from_peak_pct()))
        metrics.total_exposure.set(float(ledger.exposure() / equity * 100) if equity > 0 else 0)

    async def _snapshot(self) -> None:
        """Store an equity snapshot; a store that fails skips this one (the next comes within
        ``snapshot_interval_s``: a snapshot is a reading, not a record to keep)."""
        snapshot = self.ledger.snapshot(self.clock.timestamp_ns())
        try:
            await self.call(self.store.add_equity_snapshot, snapshot)
        except CdbError as e:
            self.database_up = False
            logger.warning("portfolio: no equity snapshot this time: %s", e)

    async def finish(self) -> None:
        await self._snapshot()

    def equity(self) -> Decimal:
        return self.ledger.equity()
