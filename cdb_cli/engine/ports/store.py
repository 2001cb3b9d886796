"""The ``Store`` port: what the trading loop persists and reads back.

Methods are synchronous; the async runtime calls them through ``asyncio.to_thread``. Every
implementation must be safe to call from several threads.

Conventions shared by every query method:

* ``since_ns`` is inclusive and ``until_ns`` exclusive (half-open windows tile without overlap);
* results are in time order, ties in write order; ``descending=True`` reverses that, so
  ``limit=1, descending=True`` is "the latest one";
* ``limit`` is applied after ordering.

Writes that can repeat after a crash or a redelivery are idempotent: events by ``event_id``,
fills by ``fill_id``; orders, positions and config are upserts by their key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, TypeVar

from cdb_cli.engine.events import Event
from cdb_cli.engine.records import (
    AuditRecord,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    OrderStatus,
    PositionRecord,
)

__all__ = ["E", "Store"]

E = TypeVar("E", bound=Event)


class Store(Protocol):
    """Persistence of events, orders, fills, positions, equity, audits and user config.

    Errors: ``DependencyError`` (``TransientError`` for a dropped connection) when the backend is
    unreachable, ``StateError`` when a write breaks an invariant (a fill for an unknown order, an
    event id reused for a different bar) or the store is closed.
    """

    def append_events(self, events: Sequence[Event]) -> int:
        """Write a batch of events in one transaction; return how many rows were written.

        Each event goes to its type's table. An event whose ``event_id`` is already stored is
        skipped. A ``Bar`` is keyed by (symbol, interval, open time): a later version replaces a
        stored bar that was not yet closed; a closed bar is final.
        """
        ...

    def save_batch(
        self,
        *,
        events: Sequence[Event] = (),
        orders: Sequence[OrderRecord] = (),
        fills: Sequence[FillRecord] = (),
        positions: Sequence[PositionRecord] = (),
        audits: Sequence[AuditRecord] = (),
    ) -> None:
        """Write a loop's batch in one transaction: all of it, or (on an error) none of it.

        In this order, by the rules of the single writes (:meth:`append_events`,
        :meth:`save_order`, :meth:`add_fill`, :meth:`save_position`, :meth:`add_audit`): a fill
        may refer to an order of the same batch. So a crash or an outage never leaves an order
        without the fill that came with it, and a batch written again after a failure changes
        nothing that the first attempt wrote.
        """
        ...

    def events(
        self,
        kind: type[E],
        *,
        symbol: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[E]:
        """Read back events of one type, ordered by ``ts_event``."""
        ...

    def find_event(self, kind: type[E], event_id: str) -> E | None:
        """The stored event of this type with this id, if any."""
        ...

    def count_events(
        self,
        kind: type[Event],
        *,
        symbol: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> int:
        """How many events of one type the window holds (without reading them)."""
        ...

    def save_order(self, order: OrderRecord) -> None:
        """Insert or replace the order with this ``client_order_id``."""
        ...

    def orders(
        self,
        *,
        symbol: str | None = None,
        status: Collection[OrderStatus] | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[OrderRecord]:
        """Orders ordered by ``ts_created``; ``status=OPEN_ORDER_STATUSES`` gives the open ones."""
        ...

    def add_fill(self, fill: FillRecord) -> bool:
        """Record a fill of a saved order; return False if its ``fill_id`` was already stored."""
        ...

    def fills(
        self,
        *,
        symbol: str | None = None,
        client_order_id: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[FillRecord]:
        """Fills ordered by ``ts_event``."""
        ...

    def save_position(self, position: PositionRecord) -> None:
        """Insert or replace the position in ``position.symbol``."""
        ...

    def positions(self) -> list[PositionRecord]:
        """Every stored position (closed ones too), ordered by symbol."""
        ...

    def add_equity_snapshot(self, snapshot: EquitySnapshot) -> None:
        """Append one equity snapshot."""
        ...

    def equity_snapshots(
        self,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[EquitySnapshot]:
        """Equity snapshots ordered by ``ts_event``."""
        ...

    def add_audit(self, record: AuditRecord) -> None:
        """Append one audit record."""
        ...

    def audits(
        self,
        *,
        action: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[AuditRecord]:
        """Audit records ordered by ``ts_event``."""
        ...

    def get_config(self, key: str) -> str | None:
        """Return the user config value stored under ``key``, or None."""
        ...

    def set_config(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        ...

    def close(self) -> None:
        """Release connections; later calls raise ``StateError``. Closing twice is harmless."""
        ...
