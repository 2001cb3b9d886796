"""Persisting a finished replay to the store, and restoring its portfolio from the store alone.

A persisted run is one ``AuditRecord`` (action ``replay``) that names the run id, its order-id
prefix, the starting cash and the last marks, plus everything the run produced: market data,
signals, risk decisions with their traces, approvals, execution reports, orders, fills, the final
positions and an equity snapshot. ``cdb risk explain`` and ``cdb report`` read those tables;
:func:`restore_run` rebuilds the run's portfolio from its fills (the source of truth), so a fresh
process gets exactly the ledger the replay ended with.

Pure: the engine's ``Store`` port and records only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import Event
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord

__all__ = ["REPLAY_ACTION", "find_run", "persist_run", "restore_run"]

REPLAY_ACTION: Final = "replay"
_BATCH: Final = 5_000
_MARK_PREFIX: Final = "mark."


def persist_run(
    store: Store,
    *,
    audit: AuditRecord,
    portfolio: Portfolio,
    marks: dict[str, Decimal],
    events: Iterable[Event],
    orders: Sequence[OrderRecord],
    fills: Sequence[FillRecord],
    ts_end: int,
) -> None:
    """Write a finished run: events in batches, orders before their fills, then the ledger."""
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= _BATCH:
            store.append_events(batch)
            batch = []
    if batch:
        store.append_events(batch)
    for order in orders:
        store.save_order(order)
    for fill in fills:
        store.add_fill(fill)
    for position in portfolio.positions_records(ts_end):
        store.save_position(position)
    store.add_equity_snapshot(portfolio.snapshot(ts_end))
    detail = dict(audit.detail)
    detail.update({f"{_MARK_PREFIX}{symbol}": str(price) for symbol, price in marks.items()})
    detail["starting_cash"] = str(portfolio.starting_cash)
    detail["quote_currency"] = portfolio.quote_currency
    store.add_audit(audit.model_copy(update={"detail": detail}))


def find_run(store: Store, run_id: str | None = None) -> AuditRecord:
    """The audit record of persisted replay ``run_id`` (the latest one when None)."""
    for record in store.audits(action=REPLAY_ACTION, descending=True):
        if run_id is None or record.run_id == run_id:
            return record
    raise StateError(
        f"No persisted replay {run_id!r} in the store"
        if run_id
        else "No persisted replay in the store (run 'cdb replay --persist')"
    )


def restore_run(store: Store, run_id: str | None = None) -> Portfolio:
    """Rebuild the portfolio a persisted replay ended with, from its fills and last marks."""
    record = find_run(store, run_id)
    prefix = record.detail.get("order_prefix", "")
    if not prefix or "starting_cash" not in record.detail:
        raise StateError(f"Replay {record.run_id} has an incomplete audit record: {record.detail}")
    fills = [fill for fill in store.fills() if fill.client_order_id.startswith(prefix)]
    marks = {
        key.removeprefix(_MARK_PREFIX): Decimal(value)
        for key, value in record.detail.items()
        if key.startswith(_MARK_PREFIX)
    }
    return Portfolio.restore(
        Decimal(record.detail["starting_cash"]),
        positions=(),
        latest_snapshot=None,
        fills=fills,
        marks={s: p for s, p in marks.items() if any(f.symbol == s for f in fills)},
        quote_currency=record.detail.get("quote_currency", "USDT"),
    )
