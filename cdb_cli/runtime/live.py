"""The live venue: real MEXC orders, the account reconciled with MEXC before the first one.

:class:`LiveVenue` is what a live run hands the one :class:`~cdb_cli.runtime.loop.TradingLoop`
(a paper run hands it a :class:`~cdb_cli.runtime.paper.PaperVenue`). It differs in three ways:

* **Start.** Before trading it reconciles the store with the venue
  (:mod:`cdb_cli.services.reconcile`): open orders are resolved by querying their client order
  id, missing fills are booked, external orders reported; then the ledger is rebuilt from the
  stored fills and compared with the account's balances. A difference beyond
  ``CDB_LIVE_BALANCE_TOLERANCE_PCT`` refuses the start (``CheckFailed``, exit 4) and places
  nothing. On the very first live start the account's holdings become the opening balance: the
  quote currency is the starting cash, base assets already held are kept apart and never sold.
* **Orders.** The pipeline's :class:`~cdb_cli.engine.live_execution.LiveExecution` only queues
  orders. A sender task saves each one (``PENDING_NEW``) **before** it sends it, so a crash at any
  point leaves a record that the next start resolves by querying the venue — never by sending
  again. While signed requests fail on the clock, nothing is sent (the order is rejected with
  that reason). On a symbol without MARKET orders the execution sends LIMIT orders
  ``CDB_LIVE_LIMIT_SLIPPAGE_PCT`` past the decision's price instead; a MARKET order MEXC refuses
  for its type (30051) is sent again at once that way.
* **Reports.** Order states and fills from the user-data stream and from REST polling (the
  :class:`~cdb_cli.engine.ports.execution.ExecutionClient` merges and deduplicates them) are
  booked into the ledger with their real commission as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from cdb_cli.engine.errors import CdbError, CheckFailed, StateError
from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.live_execution import LiveExecution
from cdb_cli.engine.ports.execution import VenueOrderState
from cdb_cli.engine.records import Mode
from cdb_cli.engine.runs import VENUE_FAULT_ACTION
from cdb_cli.runtime.lifecycle import run_record
from cdb_cli.services.reconcile import (
    Reconciliation,
    compare_balances,
    reconcile_orders,
    restore_open_orders,
)
from cdb_cli.services.restore import (
    LIVE_STARTING_CASH_KEY,
    OPENING_KEY,
    opening_balances,
    restore_portfolio,
)

if TYPE_CHECKING:
    from cdb_cli.engine.execution import ExecutionResult
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.ports.execution import ExecutionClient
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.records import FillRecord, OrderRecord
    from cdb_cli.runtime.loop import TradingLoop

__all__ = ["LiveVenue"]

logger = logging.getLogger(__name__)


class LiveVenue:
    """A live run's venue (:class:`~cdb_cli.runtime.venue.Venue`); see the module docstring."""

    mode = Mode.LIVE

    def __init__(self, client: ExecutionClient) -> None:
        self.client = client
        self.failure: BaseException | None = None
        self.reconciliation: Reconciliation | None = None
        self.orders_sent = 0
        self._store: Store | None = None
        self._run_id = ""
        self._clock_ns: Callable[[], int] = time.time_ns  # the loop's clock, from open()
        self._fills: list[FillRecord] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop: asyncio.Event | None = None
        self._sending = True

    # --- start ----------------------------------------------------------------------------------

    async def open(self, loop: TradingLoop, orders: list[OrderRecord]) -> Portfolio:
        """Reconcile the store with the venue, rebuild the ledger from the stored fills and
        compare it with the account's balances: beyond the tolerance, refuse to trade."""
        store = self._store = loop.store
        self._run_id = loop.run_id
        self._clock_ns = loop.clock.timestamp_ns
        settings = loop.settings
        starting_cash, opening = await self._opening(loop, orders)
        reconciliation = await reconcile_orders(
            store, self.client, loop.symbols, now_ns=self._clock_ns(), apply=True
        )
        self.reconciliation = reconciliation
        for line in reconciliation.lines():
            logger.warning("Reconciliation: %s", line)
        fills = await asyncio.to_thread(store.fills)
        self._fills = fills
        loop.summary.restored_fills = len(fills)
        quote = split_symbol(loop.symbols[0])[1]
        portfolio = await asyncio.to_thread(
            restore_portfolio, store, starting_cash, fills, quote, check_positions=False
        )
        reconciliation.balances = compare_balances(
            portfolio,
            await self.client.balances(),
            opening,
            loop.symbols,
            tolerance_pct=settings.live_balance_tolerance_pct,
        )
        if not reconciliation.balances_ok:
            raise CheckFailed(
                "The account's balances differ from the ledger beyond "
                f"{settings.live_balance_tolerance_pct} %: not trading "
                "(see 'cdb reconcile')",
                details=[line for line in reconciliation.lines() if line.startswith("balance ")],
            )
        return portfolio

    async def resume(
        self, loop: TradingLoop, pipeline: TradingPipeline, orders: list[OrderRecord]
    ) -> dict[str, str]:
        """The orders still open at the venue back into the live execution (and tracked), the
        positions as the reconciled ledger has them."""
        reconciliation = self.reconciliation
        if reconciliation is None:
            raise StateError("The live venue resumes only after it opened")
        execution = self._execution(pipeline)
        execution.fallback_slippage_pct = loop.settings.live_limit_slippage_pct
        loop.summary.restored_orders = restore_open_orders(
            execution, reconciliation.still_open, self._fills
        )
        for order in reconciliation.still_open:
            self.client.track(order)
        pipeline.restore_working()
        for position in pipeline.portfolio.positions_records(self._clock_ns()):
            await asyncio.to_thread(loop.store.save_position, position)
        return {
            "reconciled_orders": str(len(reconciliation.resolved)),
            "booked_fills": str(len(reconciliation.booked)),
            "external_orders": str(len(reconciliation.external_orders)),
        }

    async def _opening(
        self, loop: TradingLoop, orders: list[OrderRecord]
    ) -> tuple[Decimal, dict[str, Decimal]]:
        """The starting cash and opening base balances; stored from the account at the first
        live start (what the account held then is not ours to trade)."""
        store = loop.store
        cash, opening = await asyncio.to_thread(opening_balances, store, loop.symbols)
        if cash is not None:
            await self._open_new_symbols(store, opening, orders)
            return cash, opening
        balances = await self.client.balances()
        quote = split_symbol(loop.symbols[0])[1]
        cash = balances.get(quote, Decimal(0))
        for base in opening:
            opening[base] = balances.get(base, Decimal(0))
            await asyncio.to_thread(store.set_config, OPENING_KEY + base, str(opening[base]))
        await asyncio.to_thread(store.set_config, LIVE_STARTING_CASH_KEY, str(cash))
        logger.warning(
            "First live start: starting cash %s %s, opening balances %s (never traded)",
            cash,
            quote,
            {k: str(v) for k, v in opening.items()},
        )
        return cash, opening

    async def _open_new_symbols(
        self, store: Store, opening: dict[str, Decimal], orders: list[OrderRecord]
    ) -> None:
        """A symbol added after the first live start: what the account holds of its base asset
        now is its opening balance (never ours to sell), unless cdb ever ordered it."""
        traded = {split_symbol(o.symbol)[0] for o in orders}
        missing = []
        for base in opening:
            key = OPENING_KEY + base
            if base not in traded and await asyncio.to_thread(store.get_config, key) is None:
                missing.append(base)
        if not missing:
            return
        balances = await self.client.balances()
        for base in missing:
            opening[base] = balances.get(base, Decimal(0))
            await asyncio.to_thread(store.set_config, OPENING_KEY + base, str(opening[base]))
            logger.warning("New symbol: opening balance %s %s (never traded)", opening[base], base)

    # --- the venue at work ----------------------------------------------------------------------

    async def start(self, pipeline: TradingPipeline, stop: asyncio.Event) -> None:
        self._stop = stop
        execution = self._execution(pipeline)
        await self.client.start()
        self._tasks = [
            asyncio.create_task(self._send_loop(pipeline, execution), name="live-send"),
            asyncio.create_task(self._update_loop(pipeline, execution), name="live-updates"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_done)
        self._wake.set()  # orders restored as PENDING_NEW, if any

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.failure is None:
            logger.error("Live %s failed: %s", task.get_name(), error)
            self.failure = error
            if self._stop is not None:
                self._stop.set()

    def readiness(self) -> list[str]:
        if not self.client.signing_ok:
            return ["MEXC refuses our signatures (clock skew): not trading"]
        return []

    async def stop(self, pipeline: TradingPipeline) -> None:
        execution = self._execution(pipeline)
        sender = self._tasks[0] if self._tasks else None
        others = self._tasks[1:]
        for task in others:  # the updates: what already arrived is booked below
            task.cancel()
        self._sending = False  # the sender finishes the send in flight, then stops
        self._wake.set()
        try:
            if sender is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(sender, 10.0)
            if self.failure is None:  # never place orders from a ledger known to be wrong
                with contextlib.suppress(CdbError):
                    await self._send_pending(pipeline, execution)  # decided before the stop
            for task in others:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            while self.failure is None and not self.client.updates.empty():
                self._book(pipeline, execution.on_update(self.client.updates.get_nowait()))
        finally:
            with contextlib.suppress(Exception):
                await self.client.stop()

    @staticmethod
    def _execution(pipeline: TradingPipeline) -> LiveExecution:
        execution = pipeline.execution
        if not isinstance(execution, LiveExecution):
            raise StateError("A live run needs the live venue (the kernel did not pick it)")
        return execution

    def nudge(self, pipeline: TradingPipeline) -> None:
        execution = pipeline.execution
        if isinstance(execution, LiveExecution) and execution.has_outgoing():
            self._wake.set()

    def flushed(self, pipeline: TradingPipeline, now_ns: int) -> None:
        self._execution(pipeline).expired(now_ns)  # limit entries timed out
        self.nudge(pipeline)

    async def _send_loop(self, pipeline: TradingPipeline, execution: LiveExecution) -> None:
        while self._sending:
            await self._wake.wait()
            self._wake.clear()
            if self._sending:
                await self._send_pending(pipeline, execution)

    async def _send_pending(self, pipeline: TradingPipeline, execution: LiveExecution) -> None:
        for record in execution.take_cancels():
            try:
                state = await self.client.cancel(record.symbol, record.client_order_id)
            except CdbError as e:
                logger.warning("Cancel of %s failed: %s", record.client_order_id, e.message)
                continue
            self._book(pipeline, execution.on_update(state))
        while outgoing := execution.take_outgoing():  # a refused MARKET order comes back LIMIT
            for record in outgoing:
                await self._send(pipeline, execution, record)

    async def _send(
        self, pipeline: TradingPipeline, execution: LiveExecution, record: OrderRecord
    ) -> None:
        """Save, then send; an order the store did not take is never sent."""
        try:
            await asyncio.to_thread(self._saved_store().save_order, record)
        except CdbError as e:
            self._reject(pipeline, execution, record, f"not sent: the store failed ({e.message})")
            return
        if not self.client.signing_ok:
            self._reject(
                pipeline,
                execution,
                record,
                "not sent: MEXC refuses our signatures (clock skew beyond recvWindow)",
            )
            return
        try:
            state = await self.client.place(record)
        except CdbError as e:
            # The client resolves an unknown outcome by query; if even that failed, the order
            # stays PENDING_NEW and tracked: polling (or the next start) settles it.
            logger.error("Order %s: outcome unknown: %s", record.client_order_id, e.message)
            self.client.track(record)
            await self._audit_fault(record, f"outcome unknown: {e.message}")
            return
        self.orders_sent += 1
        self._book(pipeline, execution.on_update(state))
        if state.fault:
            await self._audit_fault(record, state.fault)

    async def _audit_fault(self, record: OrderRecord, fault: str) -> None:
        """The venue's lost answer, as an audit record (``cdb parity`` names it as a cause)."""
        detail = {"client_order_id": record.client_order_id, "symbol": record.symbol,
                  "fault": fault}  # fmt: skip
        audit = run_record(VENUE_FAULT_ACTION, self._run_id, self._clock_ns(), detail)
        try:
            await asyncio.to_thread(self._saved_store().add_audit, audit)
        except CdbError as e:  # the order went its way; only its paperwork is missing
            logger.warning("Could not record the venue fault of %s: %s", record.client_order_id, e)

    def _reject(
        self, pipeline: TradingPipeline, execution: LiveExecution, record: OrderRecord, reason: str
    ) -> None:
        logger.error("Order %s %s", record.client_order_id, reason)
        state = VenueOrderState(
            client_order_id=record.client_order_id,
            venue_order_id="",
            symbol=record.symbol,
            side=record.side,
            status="REJECTED",
            filled_quantity=Decimal(0),
            filled_quote=Decimal(0),
            ts_ns=self._clock_ns(),
            reason=reason,
        )
        self._book(pipeline, execution.on_update(state))

    async def _update_loop(self, pipeline: TradingPipeline, execution: LiveExecution) -> None:
        while True:
            update = await self.client.updates.get()
            self._book(pipeline, execution.on_update(update))

    def _book(self, pipeline: TradingPipeline, result: ExecutionResult) -> None:
        if result.orders or result.fills or result.reports:
            pipeline.apply_execution(result)

    def _saved_store(self) -> Store:
        if self._store is None:
            raise StateError("The live venue sends only after it opened")
        return self._store
