"""``portfolio``: fills from ``execution_events`` and marks from ``market_data`` → the ledger.

The ledger is rebuilt from the stored fills at start (like one process), then kept by the fills
the reports carry; trades mark it. It writes the positions after each batch of fills and an equity
snapshot every ``snapshot_interval_s`` and at stop. It decides nothing, so it needs no catch-up
rule: its figures are the ledger's at the time it reads them.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from cdb_cli.engine.events import ExecutionReport, Topic, TradeTick
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.remote import report_fill
from cdb_cli.runtime.components.base import Component
from cdb_cli.runtime.restore import restore_portfolio

__all__ = ["PortfolioComponent"]


class PortfolioComponent(Component):
    name = "portfolio"
    topics = (Topic.MARKET_DATA, Topic.EXECUTION_EVENTS)

    ledger: Portfolio

    def __init__(self, *args: Any, snapshot_interval_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot_interval_s = snapshot_interval_s
        self._next_snapshot = 0.0

    async def prepare(self) -> None:
        fills = await self.call(self.store.fills)
        self.ledger = await self.call(
            restore_portfolio, self.store, await self.starting_cash(), fills, self.quote
        )

    async def step(self) -> None:
        reports = self.inboxes[Topic.EXECUTION_EVENTS]
        market = self.inboxes[Topic.MARKET_DATA]
        if not reports.queue and not market.queue:
            await self.idle()
        filled = False
        while reports.queue:
            delivery, _ = reports.pop()
            report = delivery.event
            if isinstance(report, ExecutionReport) and report.last_quantity > 0:
                filled |= self.ledger.apply_fill(report_fill(report))
                self.count("fills")
            reports.done(delivery)
        while market.queue:
            delivery, _ = market.pop()
            trade = delivery.event
            if isinstance(trade, TradeTick) and trade.symbol in self.symbols:
                self.ledger.roll_day(trade.ts_event)
                if self.ledger.quantity(trade.symbol) > 0:
                    self.ledger.mark(trade.symbol, trade.price)
            market.done(delivery)
        if filled:
            self.positions.extend(self.ledger.positions_records(time.time_ns()))
        if self.metrics is not None:
            ledger, metrics = self.ledger, self.metrics
            equity = ledger.equity()
            metrics.equity.set(float(equity))
            metrics.daily_drawdown.set(float(ledger.daily_drawdown_pct()))
            metrics.drawdown_from_peak.set(float(ledger.drawdown_from_peak_pct()))
            metrics.total_exposure.set(float(ledger.exposure() / equity * 100) if equity > 0 else 0)
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_snapshot:
            self._next_snapshot = loop.time() + self._snapshot_interval_s
            await self._snapshot()

    async def _snapshot(self) -> None:
        snapshot = self.ledger.snapshot(time.time_ns())
        await self.call(self.store.add_equity_snapshot, snapshot)

    async def finish(self) -> None:
        await self._snapshot()

    def equity(self) -> Decimal:
        return self.ledger.equity()
