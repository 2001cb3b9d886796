"""``execution``: approvals → the simulated venue, filled in event time → ``execution_events``.

The venue is the paper venue of one process (``kernel.approval_venue``: same fill model, same
seeded slippage) with the approvals' event ids as client order ids. It reads ``market_data`` in
stream order — quotes give the touch, trades fill working orders, with the cash and position of
its own ledger of fills — and, at a **closed bar** (published just before the trade that closed
it), waits for the ``risk`` progress of the bar and the approvals it announces before it goes on,
then places them at the decision's time. So an order approved at time T with latency L fills at
the first trade at or after T + L that follows its bar in the stream, whatever order the two
streams arrive in — as in one process. A wait longer than its timeout (which does not run while
the bus is down) is logged and the component goes on past the bar.

**A late approval** (it came after its bar was handled without it) is never dropped:

- an **exit** (SELL) is placed at once, where ``execution`` is in the market stream (its time:
  the latest market event handled), and fills at the next trade after the latency: reducing a
  position is always still valid;
- an **entry** (BUY) is recorded as an order with status ``EXPIRED`` and the reason (how late it
  came), with its execution report, and never placed: it was sized for its bar's price, and
  buying later, at another price, is a risk nobody approved. ``risk`` books the report as any
  other, so it waits for nothing more from it.

An approval's delivery is acknowledged only once its order is in the outbox (``BarInputs``), and
an approval whose order the store already has (placed before a restart that got the approval
back) is not placed again. An operator's exit (``cdb risk halt --flatten``) is approved at its
symbol's next closed bar and placed there like any other.

It publishes the reports at once and stores orders, fills and reports in batches.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from cdb_cli.engine.events import (
    Bar,
    Event,
    HealthReport,
    OrderApproved,
    QuoteTick,
    Side,
    Topic,
    TradeTick,
)
from cdb_cli.engine.execution import ExecutionResult, SimulatedExecution
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.records import OPEN_ORDER_STATUSES
from cdb_cli.engine.remote import read_progress
from cdb_cli.runtime.components.base import Component
from cdb_cli.runtime.components.inputs import BarInputs
from cdb_cli.services.restore import restore_portfolio

if TYPE_CHECKING:
    from cdb_cli.engine.ports.bus import Delivery

__all__ = ["ExecutionComponent"]

logger = logging.getLogger(__name__)


class ExecutionComponent(Component):
    name = "execution"
    topics = (Topic.MARKET_DATA, Topic.RISK_APPROVED_TRADES)

    venue: SimulatedExecution
    ledger: Portfolio

    async def prepare(self) -> None:
        from cdb_cli.kernel import approval_venue

        store = self.store
        self.venue = approval_venue(self.settings, instruments=self.instruments, run_id=self.run_id)
        fills = await self.call(store.fills)
        self.ledger = await self.call(
            restore_portfolio, store, await self.starting_cash(), fills, self.quote
        )
        orders = await self.call(store.orders)
        self._placed = {order.client_order_id for order in orders}  # named by their approvals
        for order in orders:
            if order.status in OPEN_ORDER_STATUSES and order.symbol in self.symbols:
                mine = [f for f in fills if f.client_order_id == order.client_order_id]
                self.venue.restore(order, mine)
                self.count("restored_orders")
        self._quotes: dict[str, tuple[Decimal, Decimal]] = {}
        self._approvals: BarInputs[tuple[str, int], OrderApproved] = BarInputs("risk approval")
        self._late: list[tuple[OrderApproved, Delivery]] = []
        self._stream_ns = 0  # the time of the latest market event handled

    def drain(self) -> None:
        approvals = self.inboxes[Topic.RISK_APPROVED_TRADES]
        while approvals.queue:
            delivery, arrived = approvals.pop()
            event = delivery.event
            if isinstance(event, OrderApproved):
                key = (event.symbol, event.ts_event)
                if not self._approvals.add(key, event, arrived, approvals, delivery):
                    self._late.append((event, delivery))  # placed or expired: _take_late
                continue
            if isinstance(event, HealthReport):
                progress = read_progress(event)
                if progress is not None and progress[0] == "risk":
                    self._approvals.count(progress[1], progress[2], approvals, delivery)
                    continue
            approvals.done(delivery)

    def settle(self) -> None:
        # The bars' orders, fills and reports are in the outbox: their approvals are handled.
        self._approvals.settle()

    async def step(self) -> None:
        await self.handle_market(self._handle)
        if self._late:  # no market event came to take them
            await self._take_late()
            await self.flush()

    async def _take_late(self) -> None:
        """Apply the rule for late approvals (module docstring) at the current stream time."""
        late, self._late = self._late, []
        approvals = self.inboxes[Topic.RISK_APPROVED_TRADES]
        for approval, delivery in late:
            if approval.event_id in self._placed:
                approvals.done(delivery)
                continue
            self._placed.add(approval.event_id)
            now = max(self._stream_ns, approval.ts_event)
            late_s = (now - approval.ts_event) / 1e9
            if approval.side is Side.SELL:
                logger.warning(
                    "execution: exit %s came after its bar was handled (%.1f s of market "
                    "later): placed now",
                    approval.event_id,
                    late_s,
                )
                position = self.ledger.quantity(approval.symbol)
                result = self.venue.submit(approval, ts_ns=now, position=position)
                self.count("late_exits_placed")
            else:
                reason = (
                    f"expired: the approval came after its bar was handled ({late_s:.1f} s of "
                    "market later); an entry is placed only at its bar"
                )
                logger.warning("execution: entry %s %s", approval.event_id, reason)
                result = self.venue.expire(approval, ts_ns=now, reason=reason)
                self.count("late_entries_expired")
            self.count("orders")
            await self._apply(result)
            approvals.done(delivery)  # its order is in the outbox

    async def _handle(self, event: Event) -> None:
        symbol = event.symbol
        if symbol not in self.symbols:
            return
        self._stream_ns = max(self._stream_ns, event.ts_event)
        if self._late:
            await self._take_late()
        if isinstance(event, QuoteTick):
            self._quotes[symbol] = (event.bid, event.ask)
        elif isinstance(event, TradeTick):
            if not self.venue.has_working(symbol):
                return
            bid, ask = self._quotes.get(symbol, (None, None))
            # the float round trip of one process: its pipeline hands the venue repr(float)
            result = self.venue.on_price(
                symbol,
                event.ts_event,
                Decimal(repr(float(event.price))),
                volume=Decimal(repr(float(event.quantity))),
                bid=bid,
                ask=ask,
                cash=self.ledger.cash,
                position=self.ledger.quantity(symbol),
            )
            await self._apply(result)
        elif isinstance(event, Bar) and event.closed and event.closed_at > 0:
            await self._place(event)

    async def _place(self, bar: Bar) -> None:
        key = (bar.symbol, bar.closed_at)
        # risk may itself wait up to the wait timeout for the bar's signals before it decides
        # (and approves an operator's exit, which needs no signal): wait longer than that.
        await self.wait_for(
            lambda: self._approvals.ready(key, bar.event_id),
            f"the decisions on {bar.event_id}",
            2 * self.wait_timeout_s + 1.0,
        )
        for approval, arrived in self._approvals.take(key, bar.event_id):
            if approval.event_id in self._placed:  # placed before a restart that got it back
                logger.info("execution: %s was placed before; not again", approval.event_id)
                continue
            self._placed.add(approval.event_id)
            self.latency.write(bar.event_id, arrived)
            result = self.venue.submit(
                approval, ts_ns=approval.ts_event, position=self.ledger.quantity(bar.symbol)
            )
            self.count("orders")
            await self._apply(result)

    async def _apply(self, result: ExecutionResult) -> None:
        if not (result.orders or result.fills or result.reports):
            return
        for fill in result.fills:
            self.ledger.apply_fill(fill)
            self.outbox.fill(fill)
            if self.metrics is not None:
                self.metrics.observe_fill(fill)
            self.count("fills")
        for order in result.orders:
            self.outbox.order(order)
        items: list[tuple[Topic, Event]] = [(Topic.EXECUTION_EVENTS, r) for r in result.reports]
        await self.publish(items)
        for topic, report in items:
            self.outbox.event(topic, report)
