"""Live execution, the engine's half: orders for a real venue, and the venue's reports booked.

:class:`LiveExecution` is the :class:`~cdb_cli.engine.ports.execution.ExecutionVenue` of
``cdb run --live``. It does no I/O: ``submit`` sizes the order to the venue's filters, gives it
its deterministic client order id and queues it (status ``PENDING_NEW``); the runtime takes the
queue with :meth:`take_outgoing`, **saves each order before it sends it**, sends it through the
:class:`~cdb_cli.engine.ports.execution.ExecutionClient`, and hands every answer and every
streamed or polled update to :meth:`on_update`, whose result the pipeline books with
``apply_execution``.

Sizing: by default a buy is a MARKET order by quote amount (MEXC's ``quoteOrderQty``), rounded
down to the quote currency's tick. With ``entry="LIMIT"`` it is a LIMIT buy at the decision's
price (rounded down to the tick) for the quantity the quote amount buys there (rounded down to
the step); what has not filled after ``limit_timeout_ns`` is canceled (:meth:`expired`). An exit
sells the held quantity rounded down to the step, at market. An order below the venue's
minimum notional or quantity is rejected here, with the reason, and never sent.

MARKET → LIMIT: on a symbol that takes no MARKET orders (its instrument's ``market_orders`` is
False: MEXC's ``orderTypes`` lack MARKET) what would go at market goes as a LIMIT order that
crosses the book: a buy at the decision's price plus ``fallback_slippage_pct`` (rounded up to the
tick), a sell at it minus the allowance (rounded down), so it never fills further than the
allowance from the price the strategy decided at. It is canceled after ``limit_timeout_ns`` like
any LIMIT order. When the venue refuses a MARKET order for that reason at run time (MEXC
30051/30019/30018/30041: the adapter's reason starts with :data:`MARKET_REFUSED`), the symbol is
marked so from then on and the refused order is sent again at once as such a LIMIT order (same
decision, a new client order id). Each symbol's switch is logged once; the LIMIT order's
reports carry the reason (:meth:`fallback_note`).

Fills are deduplicated by the venue's trade id, order states by (status, filled quantity), so a
report that comes both from the user-data stream and from polling is booked once. A fill may
arrive after the order's final state (MEXC pushes the order before its deals): orders are kept
by id, not only while open.

Pure: stdlib, pydantic records and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Final, Literal

from cdb_cli.engine.events import ExecutionReport, OrderApproved, Side
from cdb_cli.engine.execution import ExecutionResult
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState, VenueUpdate
from cdb_cli.engine.records import (
    OPEN_ORDER_STATUSES,
    FillRecord,
    Mode,
    OrderRecord,
    OrderStatus,
)

__all__ = ["MARKET_REFUSED", "LiveExecution", "client_order_id_prefix", "market_refused"]

logger = logging.getLogger(__name__)

_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)
MARKET_REFUSED: Final = "MARKET orders refused"
"""How an adapter's REJECTED reason starts when the venue refused a MARKET order because the
symbol takes none (MEXC 30051 / 30019 / 30018 / 30041): the order is sent again as LIMIT."""


def market_refused(detail: str) -> str:
    """The REJECTED reason for a MARKET order the venue refused because the symbol takes none."""
    return f"{MARKET_REFUSED}: {detail}"


def client_order_id_prefix(run_id: str) -> str:
    """The client order id prefix of a run: its run id without dashes (at most 22 characters),
    so every id is ``<prefix><10 digits>`` — at most 32 characters of ``[A-Za-z0-9_]``."""
    return run_id.replace("-", "_")[:22]


@dataclass(slots=True)
class _Order:
    record: OrderRecord
    filled: Decimal = _ZERO
    spent: Decimal = _ZERO  # quote paid by a buy's fills (notional)
    states: set[tuple[str, Decimal]] = field(default_factory=set)
    reference_price: Decimal | None = None  # the decision's price (None: restored)
    note: str = ""  # why it is what it is (a LIMIT standing in for a MARKET order)


class LiveExecution:
    """The live venue's engine side; see the module docstring."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        *,
        id_prefix: str,
        mode: Mode = Mode.LIVE,
        source: str = "mexc",
        entry: Literal["MARKET", "LIMIT"] = "MARKET",
        limit_timeout_ns: int = 30_000_000_000,
        fallback_slippage_pct: Decimal = Decimal("0.5"),
    ) -> None:
        if not id_prefix or len(id_prefix) > 22 or not id_prefix.replace("_", "").isalnum():
            raise ValueError(f"id_prefix must be 1..22 of [A-Za-z0-9_], received {id_prefix!r}")
        self.instruments = dict(instruments)
        self._prefix = id_prefix
        self._mode: Mode = mode
        self._source = source
        self._counter = 0
        self._reports = 0
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, set[str]] = {}  # symbol → client order ids that may still fill
        self._fill_ids: set[str] = set()
        self._outgoing: list[OrderRecord] = []
        self._cancels: list[OrderRecord] = []
        self._entry = entry
        self._limit_timeout_ns = limit_timeout_ns
        self._cancel_asked: set[str] = set()
        self.fallback_slippage_pct = fallback_slippage_pct
        self._fallback_logged: set[str] = set()
        self._no_market_why: dict[str, str] = {}  # symbol → how we learned it takes no MARKET

    @property
    def id_prefix(self) -> str:
        return self._prefix

    # --- the pipeline's side --------------------------------------------------------------------

    def has_working(self, symbol: str) -> bool:
        return bool(self._open.get(symbol))

    def working_orders(self) -> list[OrderRecord]:
        return [self._orders[cid].record for ids in self._open.values() for cid in ids]

    def pending_buy_quote(self, symbol: str) -> Decimal:
        pending = _ZERO
        for cid in self._open.get(symbol, ()):
            order = self._orders[cid]
            record = order.record
            if record.side is not Side.BUY:
                continue
            if record.quote_amount is not None:
                pending += max(_ZERO, record.quote_amount - order.spent)
            elif record.quantity is not None and record.price is not None:
                pending += max(_ZERO, (record.quantity - order.filled) * record.price)
        return pending

    def expired(self, now_ns: int) -> int:
        """Queue the cancel of LIMIT orders older than the timeout; return how many."""
        queued = 0
        for ids in self._open.values():
            for cid in sorted(ids):
                record = self._orders[cid].record
                if (
                    record.order_type == "LIMIT"
                    and record.status in ("NEW", "PARTIALLY_FILLED")
                    and now_ns - record.ts_created >= self._limit_timeout_ns
                    and cid not in self._cancel_asked
                ):
                    self._cancel_asked.add(cid)
                    self._cancels.append(record)
                    queued += 1
        return queued

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:010d}"

    def submit(self, order: OrderApproved, *, ts_ns: int, position: Decimal) -> ExecutionResult:
        """Size ``order`` and queue it for sending (``PENDING_NEW``), or reject it at once.

        An exit also queues the cancel of working buys of the symbol (they would re-open what
        it closes).
        """
        result = ExecutionResult()
        buy = order.side is Side.BUY
        quote, quantity, price, reason = self._size(order, position)
        note = ""
        stands_in = order.side is Side.SELL or self._entry == "MARKET"
        if price is not None and reason is None and stands_in:
            note = "" if self._takes_market(order.symbol) else self.fallback_note(order.symbol)
        record = OrderRecord(
            client_order_id=self._next_id(),
            decision_id=order.decision_id,
            symbol=order.symbol,
            side=order.side,
            order_type="LIMIT" if price is not None else "MARKET",
            quantity=quantity,
            price=price,
            quote_amount=quote,
            status="PENDING_NEW" if reason is None else "REJECTED",
            ts_created=ts_ns,
            ts_updated=ts_ns,
            mode=self._mode,
        )
        self._orders[record.client_order_id] = _Order(
            record, reference_price=order.reference_price, note=note
        )
        result.orders.append(record)
        if reason is not None:
            result.reports.append(self._report(record, ts_ns, reason=reason))
            return result
        if not buy:
            for cid in sorted(self._open.get(order.symbol, ())):
                working = self._orders[cid].record
                if (
                    working.side is Side.BUY
                    and working.status != "PENDING_NEW"
                    and cid not in self._cancel_asked
                ):
                    self._cancel_asked.add(cid)
                    self._cancels.append(working)
        self._open.setdefault(order.symbol, set()).add(record.client_order_id)
        self._outgoing.append(record)
        return result

    def _size(
        self, order: OrderApproved, position: Decimal
    ) -> tuple[Decimal | None, Decimal | None, Decimal | None, str | None]:
        """(quote amount, quantity, limit price, why it cannot be sent) of ``order``."""
        instrument = self.instruments.get(order.symbol)
        if instrument is None:
            return None, None, None, f"no instrument known for {order.symbol}"
        if order.side is Side.SELL:
            quantity = instrument.round_quantity(position)
            notional = quantity * order.reference_price
            if quantity <= 0 or quantity < instrument.min_quantity:
                return (
                    None,
                    quantity,
                    None,
                    f"nothing to sell: position {position} rounds to {quantity}",
                )
            if notional < instrument.min_notional:
                return (
                    None,
                    quantity,
                    None,
                    f"exit notional {notional} is below the minimum notional",
                )
            if instrument.market_orders:
                return None, quantity, None, None
            price = self._crossing_price(instrument, Side.SELL, order.reference_price)
            return None, quantity, price, instrument.check_order(quantity, price)
        quote = order.quote_amount.quantize(instrument.tick_size, rounding=ROUND_FLOOR)
        if quote < instrument.min_notional or quote <= 0:
            return quote, None, None, f"quote amount {quote} is below the minimum notional"
        if self._entry == "MARKET":
            if instrument.market_orders:
                return quote, None, None, None
            price = self._crossing_price(instrument, Side.BUY, order.reference_price)
        else:
            price = instrument.round_price(order.reference_price, up=False)
        quantity = instrument.round_quantity(quote / price)
        return None, quantity, price, instrument.check_order(quantity, price)

    def _crossing_price(self, instrument: Instrument, side: Side, reference: Decimal) -> Decimal:
        """The LIMIT price standing in for a MARKET order: ``reference`` plus (buy) or minus
        (sell) :attr:`fallback_slippage_pct`, rounded away from crossing further."""
        allowance = reference * self.fallback_slippage_pct / _HUNDRED
        if side is Side.BUY:
            return instrument.round_price(reference + allowance, up=True)
        return instrument.round_price(reference - allowance, up=False)

    def _takes_market(self, symbol: str) -> bool:
        instrument = self.instruments.get(symbol)
        return instrument is None or instrument.market_orders

    def fallback_note(self, symbol: str) -> str:
        """The reason a LIMIT order stands in for a MARKET one on ``symbol``; the first time for
        a symbol it is also logged."""
        why = self._no_market_why.get(symbol, "its orderTypes lack MARKET")
        note = (
            f"LIMIT instead of MARKET: {symbol} takes no MARKET orders ({why}); at most "
            f"{self.fallback_slippage_pct} % from the decision's price, canceled after "
            f"{self._limit_timeout_ns // 1_000_000_000} s"
        )
        if symbol not in self._fallback_logged:
            self._fallback_logged.add(symbol)
            logger.warning("%s", note)
        return note

    def market_refused(self, symbol: str, why: str) -> None:
        """The venue takes no MARKET orders on ``symbol`` (learned at run time, ``why``): from
        now on what would go at market goes as LIMIT."""
        instrument = self.instruments.get(symbol)
        if instrument is not None and instrument.market_orders:
            self.instruments[symbol] = replace(instrument, market_orders=False)
            self._no_market_why.setdefault(symbol, why)

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
        """The venue fills, not a price: nothing to do here."""
        return ExecutionResult()

    def restore(self, order: OrderRecord, fills: Sequence[FillRecord]) -> None:
        """Take back an order that was open at the venue when the process stopped (after
        reconciliation). Ids of this prefix continue after the highest restored counter."""
        if order.status not in OPEN_ORDER_STATUSES:
            raise ValueError(f"order {order.client_order_id} is {order.status}, not open")
        tracked = _Order(order)
        for fill in fills:
            self._fill_ids.add(fill.fill_id)
            tracked.filled += fill.quantity
            tracked.spent += fill.quantity * fill.price
        self._orders[order.client_order_id] = tracked
        self._open.setdefault(order.symbol, set()).add(order.client_order_id)
        suffix = order.client_order_id.removeprefix(self._prefix)
        if order.client_order_id.startswith(self._prefix) and suffix.isdigit():
            self._counter = max(self._counter, int(suffix))
        if order.status == "PENDING_NEW":
            self._outgoing.append(order)

    # --- the runtime's side ---------------------------------------------------------------------

    def has_outgoing(self) -> bool:
        """True when orders or cancels wait for the runtime to send them."""
        return bool(self._outgoing or self._cancels)

    def take_outgoing(self) -> list[OrderRecord]:
        """Orders to save and then send, oldest first (each exactly once)."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def take_cancels(self) -> list[OrderRecord]:
        """Working orders to cancel at the venue (an exit's working buys)."""
        cancels, self._cancels = self._cancels, []
        return cancels

    def order(self, client_order_id: str) -> OrderRecord | None:
        tracked = self._orders.get(client_order_id)
        return tracked.record if tracked is not None else None

    def on_update(self, update: VenueUpdate) -> ExecutionResult:
        """Book one venue update of one of our orders: the changed order record and its report,
        or the fill with its report. Duplicates and other orders' updates give an empty result."""
        if isinstance(update, VenueFill):
            return self._on_fill(update)
        return self._on_state(update)

    def _on_state(self, state: VenueOrderState) -> ExecutionResult:
        result = ExecutionResult()
        tracked = self._orders.get(state.client_order_id)
        if tracked is None:
            return result
        key = (state.status, state.filled_quantity)
        record = tracked.record
        if (
            key in tracked.states
            or (record.status not in OPEN_ORDER_STATUSES and state.status in OPEN_ORDER_STATUSES)
            or (
                state.status in OPEN_ORDER_STATUSES
                and any(filled > state.filled_quantity for _, filled in tracked.states)
            )
        ):
            return result  # seen, or stale (a late NEW after a fill or the final state)
        tracked.states.add(key)
        type_refused = (
            state.status == "REJECTED"
            and record.order_type == "MARKET"
            and state.reason.startswith(MARKET_REFUSED)
        )
        if type_refused:
            self.market_refused(record.symbol, state.reason.removeprefix(f"{MARKET_REFUSED}: "))
        record = record.model_copy(
            update={
                "status": state.status,
                "venue_order_id": state.venue_order_id or record.venue_order_id,
                "ts_updated": max(record.ts_updated, state.ts_ns),
            }
        )
        tracked.record = record
        if state.status not in OPEN_ORDER_STATUSES:
            self._open.get(record.symbol, set()).discard(record.client_order_id)
        result.orders.append(record)
        if state.status != "PENDING_NEW":
            reason = state.reason or tracked.note
            result.reports.append(self._report(record, state.ts_ns, reason=reason))
        if type_refused:
            self._resend_as_limit(tracked, state.ts_ns, result)
        return result

    def _resend_as_limit(self, refused: _Order, ts_ns: int, result: ExecutionResult) -> None:
        """A MARKET order the venue refused for its type, sent again as the LIMIT order that
        stands in for it (same decision); not when its decision's price is unknown (restored)."""
        record, reference = refused.record, refused.reference_price
        # a sell is sized by its quantity; its quote amount only has to be positive here
        quote = record.quote_amount or (record.quantity or _ZERO) * (reference or _ZERO)
        if reference is None or quote <= 0:
            return
        approved = OrderApproved(
            event_id=f"{record.client_order_id}-limit",
            symbol=record.symbol,
            ts_event=ts_ns,
            source="execution",
            decision_id=record.decision_id,
            side=record.side,
            quote_amount=quote,
            reference_price=reference,
        )
        again = self.submit(approved, ts_ns=ts_ns, position=record.quantity or _ZERO)
        result.orders.extend(again.orders)
        result.reports.extend(again.reports)

    def _on_fill(self, fill: VenueFill) -> ExecutionResult:
        result = ExecutionResult()
        tracked = self._orders.get(fill.client_order_id)
        if tracked is None or fill.fill_id in self._fill_ids:
            return result
        self._fill_ids.add(fill.fill_id)
        tracked.filled += fill.quantity
        tracked.spent += fill.quantity * fill.price
        record = tracked.record
        result.fills.append(
            FillRecord(
                fill_id=fill.fill_id,
                client_order_id=record.client_order_id,
                symbol=record.symbol,
                side=record.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                ts_event=fill.ts_ns,
                liquidity=fill.liquidity,
            )
        )
        result.reports.append(
            self._report(
                record,
                fill.ts_ns,
                last_quantity=fill.quantity,
                last_price=fill.price,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                status="PARTIALLY_FILLED" if record.status in OPEN_ORDER_STATUSES else None,
            )
        )
        return result

    def _report(
        self,
        record: OrderRecord,
        ts_ns: int,
        *,
        reason: str = "",
        last_quantity: Decimal = _ZERO,
        last_price: Decimal = _ZERO,
        fee: Decimal = _ZERO,
        fee_asset: str = "",
        status: OrderStatus | None = None,
    ) -> ExecutionReport:
        self._reports += 1
        reported = status or record.status
        if reported == "PENDING_NEW":
            reported = "NEW"
        return ExecutionReport(
            event_id=f"{record.client_order_id}-{self._prefix}r{self._reports}",
            symbol=record.symbol,
            ts_event=ts_ns,
            source=self._source,
            client_order_id=record.client_order_id,
            venue_order_id=record.venue_order_id,
            side=record.side,
            status=reported,
            last_quantity=last_quantity,
            last_price=last_price,
            fee=fee,
            fee_asset=fee_asset,
            reason=reason,
        )
