"""Reconciliation: make the store agree with the venue before live trading, or say why not.

Run by ``cdb run --live`` before its first order and by ``cdb reconcile`` on demand:

1. **Open orders in the store** (``PENDING_NEW``, ``NEW``, ``PARTIALLY_FILLED``) are looked up at
   the venue by their client order id — never sent again. One the venue does not know was never
   accepted: a ``PENDING_NEW`` one is marked ``REJECTED`` ("never reached the venue"); an
   acknowledged one the venue has forgotten is reported as an anomaly and closed. One it knows
   takes the venue's state, and its fills are fetched.
2. **Recent fills** (``myTrades`` since our oldest open order or the last stored fill) of our
   orders that the store does not have are booked with their real commission; fills of orders
   we never placed are external and only reported.
3. **Open orders at the venue** that are not ours are reported as external and left alone.
4. **Balances**: the venue's free + locked of the quote currency and of each traded base asset
   against the ledger rebuilt from the stored fills (plus what the account held in base assets
   when live trading first started). A difference beyond the tolerance refuses the start.

Our orders are recognised by their client order id (``l`` + 11 hex digits of the run id + a
10-digit counter, see :func:`is_our_client_order_id`), so an order placed by hand or by another
program on the same account is never touched.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.live_execution import LiveExecution
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState
from cdb_cli.engine.records import OPEN_ORDER_STATUSES, FillRecord, OrderRecord

if TYPE_CHECKING:
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.ports.execution import ExecutionClient
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = [
    "BalanceRow",
    "Reconciliation",
    "check_account",
    "compare_balances",
    "is_our_client_order_id",
    "reconcile_orders",
]

_OURS: Final = re.compile(r"l[0-9a-f]{11}\d{10}")
_ZERO: Final = Decimal(0)
_MINUTE_NS: Final = 60_000_000_000
_QUERYABLE_NS: Final = 29 * 24 * 3600 * 1_000_000_000  # MEXC: myTrades of the last month
NEVER_REACHED = "never reached the venue (unknown there after a restart)"


def is_our_client_order_id(client_order_id: str) -> bool:
    """True for a client order id ``cdb run --live`` gave (``l`` + 11 hex + 10 digits)."""
    return _OURS.fullmatch(client_order_id) is not None


@dataclass(frozen=True, slots=True)
class BalanceRow:
    """One asset: what the venue holds, what the ledger says it should hold, and the verdict."""

    asset: str
    venue: Decimal
    ledger: Decimal
    tolerance: Decimal

    @property
    def difference(self) -> Decimal:
        return self.venue - self.ledger

    @property
    def ok(self) -> bool:
        return abs(self.difference) <= self.tolerance


@dataclass
class Reconciliation:
    """What one reconciliation found and (when applied) changed."""

    resolved: list[tuple[OrderRecord, str]] = field(default_factory=list)
    """(the order's new record, what its stored status was)."""
    booked: list[FillRecord] = field(default_factory=list)
    """Fills of our orders the store did not have."""
    still_open: list[OrderRecord] = field(default_factory=list)
    """Our orders still open at the venue (the run takes them back)."""
    external_orders: list[VenueOrderState] = field(default_factory=list)
    external_fills: list[VenueFill] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    balances: list[BalanceRow] = field(default_factory=list)

    @property
    def balances_ok(self) -> bool:
        return all(row.ok for row in self.balances)

    def lines(self) -> list[str]:
        """One line per finding, for the log and the command's plain output."""
        out = [
            f"order {record.client_order_id} {was} -> {record.status}"
            for record, was in self.resolved
        ]
        out += [
            f"booked missing fill {f.fill_id} of {f.client_order_id}: {f.side} {f.quantity} "
            f"{f.symbol} @ {f.price} fee {f.fee} {f.fee_asset}"
            for f in self.booked
        ]
        out += [
            f"external open order {o.venue_order_id} ({o.client_order_id or 'no client id'}) "
            f"on {o.symbol}: left alone"
            for o in self.external_orders
        ]
        out += [
            f"external fill {f.fill_id} on {f.symbol}: {f.side} {f.quantity} @ {f.price}"
            for f in self.external_fills
        ]
        out += self.anomalies
        out += [
            f"balance {row.asset}: venue {row.venue} ledger {row.ledger} "
            f"difference {row.difference} (tolerance {row.tolerance})"
            for row in self.balances
            if not row.ok
        ]
        return out


def _record_from(order: OrderRecord, state: VenueOrderState) -> OrderRecord:
    return order.model_copy(
        update={
            "status": state.status,
            "venue_order_id": state.venue_order_id or order.venue_order_id,
            "ts_updated": max(order.ts_updated, state.ts_ns),
        }
    )


def _fill_record(order: OrderRecord, fill: VenueFill) -> FillRecord:
    return FillRecord(
        fill_id=fill.fill_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        fee_asset=fill.fee_asset,
        ts_event=fill.ts_ns,
        liquidity=fill.liquidity,
    )


async def reconcile_orders(
    store: Store,
    client: ExecutionClient,
    symbols: Sequence[str],
    *,
    now_ns: int,
    apply: bool,
) -> Reconciliation:
    """Steps 1 to 3 of the module docstring; with ``apply`` the store is brought up to date.

    Blocking store calls run in a worker thread; venue calls go through ``client``.
    """
    stored = [o for o in await asyncio.to_thread(store.orders) if o.mode == "live"]
    fill_ids = {f.fill_id for f in await asyncio.to_thread(store.fills)}
    run = _Reconciler(client, stored, fill_ids, now_ns)
    for order in stored:
        if order.status in OPEN_ORDER_STATUSES and order.symbol in symbols:
            await run.open_order(order)
    for symbol in symbols:
        await run.recent_fills(symbol, await _fills_since(store, stored, symbol, now_ns))
    await run.venue_open_orders(symbols)
    if apply:
        await asyncio.to_thread(_write, store, list(run.changed.values()), run.result.booked)
    return run.result


async def _fills_since(
    store: Store, stored: Sequence[OrderRecord], symbol: str, now_ns: int
) -> int | None:
    """Where to start reading the venue's fills of ``symbol``: a minute before the oldest of
    our open orders and our last stored fill (everything, when we never traded it), but not
    before what MEXC keeps queryable (the last month)."""
    mine = [o for o in stored if o.symbol == symbol]
    if not mine:
        return None
    last = await asyncio.to_thread(store.fills, symbol=symbol, limit=1, descending=True)
    open_since = [o.ts_created for o in mine if o.status in OPEN_ORDER_STATUSES]
    since = min([last[0].ts_event if last else mine[0].ts_created, *open_since]) - _MINUTE_NS
    return max(since, now_ns - _QUERYABLE_NS, 0)


class _Reconciler:
    def __init__(
        self,
        client: ExecutionClient,
        stored: Sequence[OrderRecord],
        stored_fill_ids: set[str],
        now_ns: int,
    ) -> None:
        self.client = client
        self.result = Reconciliation()
        self.by_client = {o.client_order_id: o for o in stored}
        self.by_venue = {o.venue_order_id: o for o in stored if o.venue_order_id}
        self.stored_fill_ids = stored_fill_ids
        self.seen = set(stored_fill_ids)
        self.changed: dict[str, OrderRecord] = {}
        self.now_ns = now_ns

    def _book(self, order: OrderRecord, fill: VenueFill) -> None:
        if fill.fill_id not in self.seen:
            self.seen.add(fill.fill_id)
            self.result.booked.append(_fill_record(order, fill))

    def _change(self, updated: OrderRecord, was: str) -> None:
        self.result.resolved.append((updated, was))
        self.changed[updated.client_order_id] = updated
        if updated.venue_order_id:
            self.by_venue[updated.venue_order_id] = updated

    async def open_order(self, order: OrderRecord) -> None:
        state = await self.client.query(order.symbol, order.client_order_id)
        if state is None:
            status = "REJECTED" if order.status == "PENDING_NEW" else "CANCELED"
            if status == "CANCELED":
                self.result.anomalies.append(
                    f"order {order.client_order_id} was {order.status} but the venue does not "
                    "know it: closed as CANCELED"
                )
            self._change(
                order.model_copy(update={"status": status, "ts_updated": self.now_ns}),
                order.status,
            )
            return
        updated = _record_from(order, state)
        if updated.status != order.status or updated.venue_order_id != order.venue_order_id:
            self._change(updated, order.status)
        if updated.status in OPEN_ORDER_STATUSES:
            self.result.still_open.append(updated)
        if updated.venue_order_id and state.filled_quantity > 0:
            for fill in await self.client.fills(
                order.symbol, venue_order_id=updated.venue_order_id
            ):
                self._book(updated, fill)

    async def recent_fills(self, symbol: str, since_ns: int | None) -> None:
        for fill in await self.client.fills(symbol, since_ns=since_ns):
            order = self.by_client.get(fill.client_order_id) or self.by_venue.get(
                fill.venue_order_id
            )
            if order is not None:
                self._book(self.changed.get(order.client_order_id, order), fill)
            elif fill.fill_id in self.stored_fill_ids:
                continue
            elif is_our_client_order_id(fill.client_order_id):
                self.result.anomalies.append(
                    f"fill {fill.fill_id} of our order {fill.client_order_id} that the store "
                    "does not know (was the database replaced?)"
                )
            else:
                self.result.external_fills.append(fill)

    async def venue_open_orders(self, symbols: Sequence[str]) -> None:
        for state in await self.client.open_orders(symbols):
            if state.client_order_id in self.by_client:
                continue
            if is_our_client_order_id(state.client_order_id):
                self.result.anomalies.append(
                    f"open order {state.client_order_id} looks like ours but is not in the store"
                )
            else:
                self.result.external_orders.append(state)


def _write(store: Store, orders: Sequence[OrderRecord], fills: Sequence[FillRecord]) -> None:
    for order in orders:
        store.save_order(order)
    for fill in sorted(fills, key=lambda f: (f.ts_event, f.fill_id)):
        store.add_fill(fill)


def compare_balances(
    portfolio: Portfolio,
    venue: dict[str, Decimal],
    opening: dict[str, Decimal],
    symbols: Sequence[str],
    *,
    tolerance_pct: Decimal,
) -> list[BalanceRow]:
    """The quote currency and each traded base asset: venue (free + locked) against the ledger
    (cash, or the position plus what the account held when live trading started, less the fees
    paid in that asset for other symbols' fills: MX deduction while trading MXUSDT)."""
    rows: list[BalanceRow] = []

    def row(asset: str, ledger: Decimal) -> BalanceRow:
        held = venue.get(asset, _ZERO)
        tolerance = max(abs(held), abs(ledger)) * tolerance_pct / 100
        return BalanceRow(asset, held, ledger, tolerance)

    rows.append(row(portfolio.quote_currency, portfolio.cash))
    for symbol in symbols:
        base = split_symbol(symbol)[0]
        spent = portfolio.other_fees.get(base, _ZERO)
        rows.append(row(base, portfolio.quantity(symbol) + opening.get(base, _ZERO) - spent))
    return rows


def restore_open_orders(
    execution: LiveExecution, orders: Sequence[OrderRecord], fills: Sequence[FillRecord]
) -> int:
    """Give the live venue back our orders still open after reconciliation."""
    for order in orders:
        execution.restore(order, [f for f in fills if f.client_order_id == order.client_order_id])
    return len(orders)


async def check_account(
    settings: Settings, symbols: Sequence[str], *, apply: bool
) -> Reconciliation:
    """Reconcile the store at ``CDB_DATABASE_URL`` with the account of the configured keys:
    steps 1 to 4 of the module docstring (``cdb reconcile``, and the gate of ``cdb run --live``).
    Balances are compared once live trading has started on this database."""
    import time

    from cdb_cli.engine.instruments import split_symbol
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.kernel import mexc_execution_client, mexc_http_client, open_store
    from cdb_cli.services.restore import opening_balances

    store = await asyncio.to_thread(open_store, settings)
    try:
        async with mexc_http_client(settings) as http:
            instruments = await http.exchange_info(symbols)
            client = mexc_execution_client(http, settings.mexc_ws_url, instruments)
            result = await reconcile_orders(
                store, client, symbols, now_ns=time.time_ns(), apply=apply
            )
            cash, opening = await asyncio.to_thread(opening_balances, store, list(symbols))
            if cash is None:
                return result  # never traded live on this database: nothing to balance
            fills = await asyncio.to_thread(store.fills)
            if not apply:
                fills = [*fills, *result.booked]
            portfolio = Portfolio.restore(
                cash, [], None, fills, quote_currency=split_symbol(symbols[0])[1]
            )
            result.balances = compare_balances(
                portfolio,
                await client.balances(),
                opening,
                symbols,
                tolerance_pct=settings.live_balance_tolerance_pct,
            )
            return result
    finally:
        await asyncio.to_thread(store.close)
