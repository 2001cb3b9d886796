"""Rebuilding a paper account from the store when ``cdb run`` starts again.

Fills are the source of truth for the ledger; orders that were still working go back to the
simulated venue with what they had filled. Blocking store calls: run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from cdb_cli.engine.events import TradeTick
from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.records import OPEN_ORDER_STATUSES, FillRecord, OrderRecord

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.ports.store import Store

__all__ = [
    "LIVE_STARTING_CASH_KEY",
    "OPENING_KEY",
    "STARTING_CASH_KEY",
    "opening_balances",
    "restore_orders",
    "restore_portfolio",
]


STARTING_CASH_KEY = "paper.starting_cash"
"""The paper account's starting cash (config key; ``CDB_STARTING_CASH`` at its first start)."""
LIVE_STARTING_CASH_KEY = "live.starting_cash"
"""The quote balance the live account started with (config key)."""
OPENING_KEY = "live.opening."
"""+ asset: what the account held of a traded base asset when live trading first started."""


def opening_balances(store: Store, symbols: list[str]) -> tuple[Decimal | None, dict[str, Decimal]]:
    """(starting cash, opening base balances) stored at the first live start (None: none yet)."""
    cash = store.get_config(LIVE_STARTING_CASH_KEY)
    opening: dict[str, Decimal] = {}
    for symbol in symbols:
        base = split_symbol(symbol)[0]
        value = store.get_config(OPENING_KEY + base)
        opening[base] = Decimal(value) if value is not None else Decimal(0)
    return (Decimal(cash) if cash is not None else None), opening


def restore_portfolio(
    store: Store,
    starting_cash: Decimal,
    fills: Sequence[FillRecord],
    quote_currency: str,
    *,
    check_positions: bool = True,
) -> Portfolio:
    """The ledger from ``fills``, checked against the stored positions (unless
    ``check_positions`` is off: live reconciliation may have booked fills the stored positions
    predate), marked at the last stored trade of each symbol held, with the latest snapshot's
    day start and peak."""
    snapshots = store.equity_snapshots(limit=1, descending=True)
    marks: dict[str, Decimal] = {}
    for symbol in {fill.symbol for fill in fills}:
        last = store.events(TradeTick, symbol=symbol, limit=1, descending=True)
        if last:
            marks[symbol] = last[0].price
    return Portfolio.restore(
        starting_cash,
        store.positions() if check_positions else (),
        snapshots[0] if snapshots else None,
        fills,
        marks=marks,
        quote_currency=quote_currency,
    )


def restore_orders(
    store: Store,
    pipeline: TradingPipeline,
    orders: Sequence[OrderRecord],
    symbols: Sequence[str],
) -> int:
    """Give the venue back every order of ``symbols`` that was still working; return how many."""
    restored = 0
    for order in orders:
        if order.status not in OPEN_ORDER_STATUSES or order.symbol not in symbols:
            continue
        pipeline.execution.restore(order, store.fills(client_order_id=order.client_order_id))
        restored += 1
    pipeline.restore_working()
    return restored
