"""The engine's side of component mode: one pipeline stage per process, linked by the bus.

In component mode (``cdb run --paper --component NAME``) the stages of one
:class:`~cdb_cli.engine.pipeline.TradingPipeline` run in separate processes. The ``risk`` process
keeps a whole pipeline — marks, spread, price age, loss-limit tripwires and a ledger mirror — but
its strategies and its venue live elsewhere:

- :class:`RemoteStrategy` stands in for a symbol's strategy: it returns, for the bar being closed,
  the intent the ``signals`` process published for it (or nothing), so the decision runs through
  the pipeline's own bar-close path, exactly as in one process.
- :class:`RemoteExecution` is the venue: ``submit`` records the order (status NEW; its client
  order id is the approval's event id) and the pipeline publishes the approval; the execution
  process's reports are handed to :meth:`RemoteExecution.deliver` and booked by ``on_price`` at the
  trade they filled at, so the ledger mirror changes at the same place as the venue's.
- :class:`ApprovalIdExecution` is the ``execution`` process's simulated venue: a
  :class:`~cdb_cli.engine.execution.SimulatedExecution` whose client order ids are the approvals'
  event ids, so both sides name an order alike.

Progress: a stage that may publish nothing for a bar (no signal; a rejected or no decision) says it
is done with it (:func:`progress_report`), with how many events it published for the bar, in the
stream the next stage reads (``trading_signals``, ``risk_approved_trades``: a marker after the
bar's events, so the next stage is woken by one stream); the next stage waits for it before it
acts past the bar (see ``cdb_cli.runtime.components``).

Pure: stdlib, pydantic records and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from cdb_cli.engine.events import ExecutionReport, HealthReport, OrderApproved, Side
from cdb_cli.engine.execution import ExecutionResult, SimulatedExecution, approval_order
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.records import (
    OPEN_ORDER_STATUSES,
    FillRecord,
    Mode,
    OrderRecord,
    OrderStatus,
)
from cdb_cli.engine.signals import SignalIntent, StrategyView

__all__ = [
    "ApprovalIdExecution",
    "RemoteExecution",
    "RemoteStrategy",
    "progress_report",
    "read_progress",
    "report_fill",
]

_ZERO: Final = Decimal(0)
_NS_PER_MS: Final = 1_000_000
_PROGRESS: Final = "bar"


def progress_report(
    component: str, *, symbol: str, bar_id: str, ts: int, count: int
) -> HealthReport:
    """``component`` is done with the bar ``bar_id`` and published ``count`` events for it."""
    return HealthReport(
        event_id=f"{component}-{bar_id}"[:64],
        symbol=symbol,
        ts_event=ts,
        source=component,
        component=component,
        status="ok",
        detail=f"{_PROGRESS} {bar_id} {count}",
    )


def read_progress(report: HealthReport) -> tuple[str, str, int] | None:
    """(component, bar id, count) of a :func:`progress_report`; None for any other report."""
    parts = report.detail.split(" ")
    if len(parts) != 3 or parts[0] != _PROGRESS or not parts[2].isdigit():
        return None
    return report.component, parts[1], int(parts[2])


class RemoteStrategy:
    """A symbol's strategy whose decisions are made in another process; see the module doc.

    :meth:`expect` sets what the next closed bar returns; ``on_bar`` hands it over once.
    """

    __slots__ = ("_next", "name")
    warmup = 0  # the signals process warms the real strategy

    def __init__(self, name: str = "ema_cross") -> None:
        self.name = name
        self._next: SignalIntent | None = None

    def expect(self, intent: SignalIntent | None, name: str | None = None) -> None:
        self._next = intent
        if name:
            self.name = name

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        intent, self._next = self._next, None
        return intent

    def explain(self, close: float, volume: float) -> StrategyView:
        """No conditions here: the ``signals`` process ran them and stored their trace."""
        return StrategyView("evaluated", 0, (), {})


@dataclass(slots=True)
class _Remote:
    order: OrderRecord
    active_ns: int
    quote_left: Decimal


@dataclass(slots=True)
class _Inbox:
    reports: list[ExecutionReport] = field(default_factory=list)
    latest_ns: dict[str, int] = field(default_factory=dict)  # client order id → last report time


class RemoteExecution:
    """The venue of the ``risk`` process: orders go out as approvals, reports come back.

    ``has_working`` and ``pending_buy_quote`` count what was approved minus what the reports say
    was filled or ended. Reports wait in an inbox until the pipeline reaches the trade they
    filled at (``on_price`` at that trade's time books them), so fills change the ledger mirror
    at the same place as in one process; :meth:`settled` says whether the reports needed before a
    trade have arrived.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        *,
        latency_ms: int,
        mode: Mode = Mode.PAPER,
    ) -> None:
        self.instruments = dict(instruments)
        self._latency_ns = latency_ms * _NS_PER_MS
        self._mode: Mode = mode
        self._working: dict[str, dict[str, _Remote]] = {}
        self._inbox: dict[str, _Inbox] = {}
        self._restored: set[str] = set()  # ids of the stored fills of restored orders
        self.on_submit: Callable[[OrderApproved], None] | None = None
        """Called with each approval as soon as it is recorded, before the pipeline writes its
        paperwork (the ``risk`` component sends it on at that moment)."""

    @property
    def id_prefix(self) -> str:
        return "remote"

    def has_working(self, symbol: str) -> bool:
        return bool(self._working.get(symbol))

    def working_orders(self) -> list[OrderRecord]:
        return [w.order for orders in self._working.values() for w in orders.values()]

    def pending_buy_quote(self, symbol: str) -> Decimal:
        return sum(
            (
                w.quote_left
                for w in self._working.get(symbol, {}).values()
                if w.order.side is Side.BUY
            ),
            _ZERO,
        )

    def submit(self, order: OrderApproved, *, ts_ns: int, position: Decimal) -> ExecutionResult:
        """Record the order the approval asks for; reject at once what the venue would reject
        at once (no instrument; an exit with nothing to sell). An exit ends working buys."""
        result = ExecutionResult()
        working = self._working.setdefault(order.symbol, {})
        if order.side is Side.SELL:
            for key, item in list(working.items()):
                if item.order.side is Side.BUY:
                    status: OrderStatus = (
                        "PARTIALLY_CANCELED"
                        if item.quote_left < (item.order.quote_amount or _ZERO)
                        else "CANCELED"
                    )
                    result.orders.append(
                        item.order.model_copy(update={"status": status, "ts_updated": ts_ns})
                    )
                    del working[key]
        record = approval_order(order, order.event_id, ts_ns, position, self._mode)
        instrument = self.instruments.get(order.symbol)
        if instrument is None or (
            order.side is Side.SELL and instrument.round_quantity(position) <= 0
        ):
            result.orders.append(record.model_copy(update={"status": "REJECTED"}))
        else:
            quote = order.quote_amount if order.side is Side.BUY else _ZERO
            working[record.client_order_id] = _Remote(record, ts_ns + self._latency_ns, quote)
            result.orders.append(record)
        if self.on_submit is not None:
            self.on_submit(order)
        return result

    def restore(self, order: OrderRecord, fills: Sequence[FillRecord]) -> None:
        """Take back an order that was still open (a restart), with its fills so far."""
        spent = sum((f.quantity * f.price + f.fee for f in fills), _ZERO)
        quote = (order.quote_amount or _ZERO) - spent if order.side is Side.BUY else _ZERO
        self._restored.update(f.fill_id for f in fills)
        self._working.setdefault(order.symbol, {})[order.client_order_id] = _Remote(
            order, order.ts_created + self._latency_ns, quote
        )

    # --- reports ----------------------------------------------------------------------------

    def deliver(self, report: ExecutionReport) -> None:
        """A report of the execution process; booked when the pipeline reaches its time."""
        inbox = self._inbox.setdefault(report.symbol, _Inbox())
        inbox.reports.append(report)
        seen = inbox.latest_ns.get(report.client_order_id, -1)
        inbox.latest_ns[report.client_order_id] = max(seen, report.ts_event)

    def settled(self, symbol: str, ts_ns: int) -> bool:
        """True when every working order of ``symbol`` that may fill at ``ts_ns`` has a report
        at ``ts_ns`` or later (so what happened to it at ``ts_ns`` is known)."""
        working = self._working.get(symbol)
        if not working:
            return True
        inbox = self._inbox.get(symbol)
        latest = inbox.latest_ns if inbox is not None else {}
        return all(
            item.active_ns > ts_ns or latest.get(key, -1) >= ts_ns for key, item in working.items()
        )

    def on_price(
        self,
        symbol: str,
        ts_ns: int,
        price: Decimal,
        *,
        volume: Decimal | None = None,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        cash: Decimal,
        position: Decimal,
        until_ns: int | None = None,
    ) -> ExecutionResult:
        """Book the reports of ``symbol`` up to ``ts_ns`` (the venue filled there)."""
        return self.book(symbol, ts_ns)

    def book(self, symbol: str, ts_ns: int) -> ExecutionResult:
        """The fills and order changes of the reports of ``symbol`` up to ``ts_ns``."""
        result = ExecutionResult()
        inbox = self._inbox.get(symbol)
        if inbox is None or not inbox.reports:
            return result
        due = [r for r in inbox.reports if r.ts_event <= ts_ns]
        if not due:
            return result
        inbox.reports = [r for r in inbox.reports if r.ts_event > ts_ns]
        working = self._working.get(symbol, {})
        for report in due:
            item = working.get(report.client_order_id)
            if item is None:
                continue  # known already: the NEW, or an end this side recorded itself
            fill = report_fill(report) if report.last_quantity > 0 else None
            if fill is not None and fill.fill_id not in self._restored:  # else booked already
                result.fills.append(fill)
                if item.order.side is Side.BUY:
                    item.quote_left -= fill.quantity * fill.price + fill.fee
            if report.status == "NEW":
                continue
            item.order = item.order.model_copy(
                update={"status": report.status, "ts_updated": report.ts_event}
            )
            result.orders.append(item.order)
            if report.status not in OPEN_ORDER_STATUSES:
                del working[report.client_order_id]
        return result


def report_fill(report: ExecutionReport) -> FillRecord:
    """The fill an execution report carries (``last_quantity`` > 0); its id is the report's,
    which the venue gives its fill (``ApprovalIdExecution``): the same fill as the stored one, so
    a report delivered again after a restart is known by its id."""
    return FillRecord(
        fill_id=report.event_id,
        client_order_id=report.client_order_id,
        symbol=report.symbol,
        side=report.side,
        quantity=report.last_quantity,
        price=report.last_price,
        fee=report.fee,
        fee_asset=report.fee_asset,
        ts_event=report.ts_event,
        liquidity="taker",
    )


class ApprovalIdExecution(SimulatedExecution):
    """The ``execution`` process's simulated venue: an order's client id is its approval's id."""

    _approval_id: str | None = None

    def submit(self, order: OrderApproved, *, ts_ns: int, position: Decimal) -> ExecutionResult:
        self._approval_id = order.event_id
        try:
            return super().submit(order, ts_ns=ts_ns, position=position)
        finally:
            self._approval_id = None

    def expire(self, order: OrderApproved, *, ts_ns: int, reason: str) -> ExecutionResult:
        self._approval_id = order.event_id
        try:
            return super().expire(order, ts_ns=ts_ns, reason=reason)
        finally:
            self._approval_id = None

    def _next_id(self) -> str:
        if self._approval_id is not None:
            return self._approval_id
        return super()._next_id()
