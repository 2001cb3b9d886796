"""``InMemoryStore``: the ``Store`` port on dicts and lists, for tests and replay.

It keeps the same rules as the SQL store (the contract suite runs against both): idempotent
events and fills, upserts by key, bars replaced only while open, no fill without an order,
time-ordered queries with ties in write order. Nothing survives the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TypeVar

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import EVENT_TYPES, Bar, Event
from cdb_cli.engine.ports.store import E
from cdb_cli.engine.records import (
    AuditRecord,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    OrderStatus,
    PositionRecord,
    check_config_key,
)

__all__ = ["InMemoryStore"]

T = TypeVar("T")

_KNOWN_EVENT_TYPES: frozenset[type[Event]] = frozenset(EVENT_TYPES.values())

BarKey = tuple[str, str, int]


def _bar_key(bar: Bar) -> BarKey:
    return (bar.symbol, bar.interval, bar.ts_event)


def _select(
    items: Iterable[T],
    ts: Callable[[T], int],
    *,
    since_ns: int | None,
    until_ns: int | None,
    limit: int | None,
    descending: bool,
    keep: Callable[[T], bool] = lambda _: True,
) -> list[T]:
    chosen = [
        item
        for item in items
        if keep(item)
        and (since_ns is None or ts(item) >= since_ns)
        and (until_ns is None or ts(item) < until_ns)
    ]
    chosen.sort(key=ts)  # stable: ties stay in write order
    if descending:
        chosen.reverse()
    return chosen if limit is None else chosen[:limit]


def _check_kind(kind: type[Event]) -> None:
    if kind not in _KNOWN_EVENT_TYPES:
        raise ValueError(f"No table stores {kind.__name__} events")


class InMemoryStore:
    """The ``Store`` port kept in memory. Thread-safe; see ``cdb_cli.engine.ports.store``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._events: dict[type[Event], list[Event]] = {}
        self._event_ids: dict[type[Event], set[str]] = {}
        self._bars: dict[BarKey, Bar] = {}  # insertion order is write order; replacing keeps it
        self._bar_keys_by_id: dict[str, BarKey] = {}
        self._orders: dict[str, OrderRecord] = {}
        self._fills: dict[str, FillRecord] = {}
        self._positions: dict[str, PositionRecord] = {}
        self._equity: list[EquitySnapshot] = []
        self._audits: list[AuditRecord] = []
        self._config: dict[str, str] = {}

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("The store is closed")

    # events ---------------------------------------------------------------------------------

    def append_events(self, events: Sequence[Event]) -> int:
        """Write events, skipping ids already stored; return how many were written."""
        for event in events:
            _check_kind(type(event))
        with self._lock:
            self._check_open()
            written = 0
            for event in events:
                if isinstance(event, Bar):
                    written += self._put_bar(event)
                    continue
                ids = self._event_ids.setdefault(type(event), set())
                if event.event_id in ids:
                    continue
                ids.add(event.event_id)
                self._events.setdefault(type(event), []).append(event)
                written += 1
            return written

    def save_batch(
        self,
        *,
        events: Sequence[Event] = (),
        orders: Sequence[OrderRecord] = (),
        fills: Sequence[FillRecord] = (),
        positions: Sequence[PositionRecord] = (),
        audits: Sequence[AuditRecord] = (),
    ) -> None:
        """Write all of it or, if any part would be refused, none of it (checked first)."""
        for event in events:
            _check_kind(type(event))
        with self._lock:
            self._check_open()
            self._check_bar_ids(events)
            saved = {order.client_order_id for order in orders}
            for fill in fills:
                if fill.fill_id not in self._fills and not (
                    fill.client_order_id in self._orders or fill.client_order_id in saved
                ):
                    raise StateError(
                        f"Fill {fill.fill_id} refers to order {fill.client_order_id}, "
                        "which was never saved"
                    )
            self.append_events(events)
            for order in orders:
                self.save_order(order)
            for fill in fills:
                self.add_fill(fill)
            for position in positions:
                self.save_position(position)
            for record in audits:
                self.add_audit(record)

    def _check_bar_ids(self, events: Sequence[Event]) -> None:
        """Refuse a bar whose event id is stored (or earlier in ``events``) for another bar."""
        keys: dict[str, BarKey] = {}
        for event in events:
            if isinstance(event, Bar):
                key = _bar_key(event)
                known = keys.get(event.event_id, self._bar_keys_by_id.get(event.event_id))
                if known is not None and known != key:
                    raise StateError(f"Event id {event.event_id} is already stored for another bar")
                keys[event.event_id] = key

    def _put_bar(self, bar: Bar) -> int:
        key = _bar_key(bar)
        known_key = self._bar_keys_by_id.get(bar.event_id)
        if known_key is not None and known_key != key:
            raise StateError(f"Event id {bar.event_id} is already stored for another bar")
        stored = self._bars.get(key)
        if stored is not None and (stored.closed or stored.event_id == bar.event_id):
            return 0
        if stored is not None:
            del self._bar_keys_by_id[stored.event_id]
        self._bars[key] = bar
        self._bar_keys_by_id[bar.event_id] = key
        return 1

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
        _check_kind(kind)
        with self._lock:
            self._check_open()
            stored: Iterable[Event] = (
                self._bars.values() if kind is Bar else self._events.get(kind, ())
            )
            typed = [event for event in stored if isinstance(event, kind)]
        return _select(
            typed,
            lambda event: event.ts_event,
            since_ns=since_ns,
            until_ns=until_ns,
            limit=limit,
            descending=descending,
            keep=lambda event: symbol is None or event.symbol == symbol,
        )

    # orders and fills -------------------------------------------------------------------------

    def find_event(self, kind: type[E], event_id: str) -> E | None:
        """The stored event of this type with this id, if any."""
        return next((e for e in self.events(kind) if e.event_id == event_id), None)

    def count_events(
        self,
        kind: type[Event],
        *,
        symbol: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> int:
        """How many events of one type the window holds."""
        return len(self.events(kind, symbol=symbol, since_ns=since_ns, until_ns=until_ns))

    def save_order(self, order: OrderRecord) -> None:
        """Insert or replace the order with this ``client_order_id``."""
        with self._lock:
            self._check_open()
            self._orders[order.client_order_id] = order

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
        """Orders ordered by ``ts_created``."""
        with self._lock:
            self._check_open()
            stored = list(self._orders.values())
        return _select(
            stored,
            lambda order: order.ts_created,
            since_ns=since_ns,
            until_ns=until_ns,
            limit=limit,
            descending=descending,
            keep=lambda order: (
                (symbol is None or order.symbol == symbol)
                and (status is None or order.status in status)
            ),
        )

    def add_fill(self, fill: FillRecord) -> bool:
        """Record a fill of a saved order; False if its ``fill_id`` was already stored."""
        with self._lock:
            self._check_open()
            if fill.fill_id in self._fills:
                return False
            if fill.client_order_id not in self._orders:
                raise StateError(
                    f"Fill {fill.fill_id} refers to order {fill.client_order_id}, "
                    "which was never saved"
                )
            self._fills[fill.fill_id] = fill
            return True

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
        with self._lock:
            self._check_open()
            stored = list(self._fills.values())
        return _select(
            stored,
            lambda fill: fill.ts_event,
            since_ns=since_ns,
            until_ns=until_ns,
            limit=limit,
            descending=descending,
            keep=lambda fill: (
                (symbol is None or fill.symbol == symbol)
                and (client_order_id is None or fill.client_order_id == client_order_id)
            ),
        )

    # positions, equity, audits, config ----------------------------------------------------------

    def save_position(self, position: PositionRecord) -> None:
        """Insert or replace the position in ``position.symbol``."""
        with self._lock:
            self._check_open()
            self._positions[position.symbol] = position

    def positions(self) -> list[PositionRecord]:
        """Every stored position, ordered by symbol."""
        with self._lock:
            self._check_open()
            return sorted(self._positions.values(), key=lambda position: position.symbol)

    def add_equity_snapshot(self, snapshot: EquitySnapshot) -> None:
        """Append one equity snapshot."""
        with self._lock:
            self._check_open()
            self._equity.append(snapshot)

    def equity_snapshots(
        self,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[EquitySnapshot]:
        """Equity snapshots ordered by ``ts_event``."""
        with self._lock:
            self._check_open()
            stored = list(self._equity)
        return _select(
            stored,
            lambda snapshot: snapshot.ts_event,
            since_ns=since_ns,
            until_ns=until_ns,
            limit=limit,
            descending=descending,
        )

    def add_audit(self, record: AuditRecord) -> None:
        """Append one audit record."""
        with self._lock:
            self._check_open()
            self._audits.append(record)

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
        with self._lock:
            self._check_open()
            stored = list(self._audits)
        return _select(
            stored,
            lambda record: record.ts_event,
            since_ns=since_ns,
            until_ns=until_ns,
            limit=limit,
            descending=descending,
            keep=lambda record: action is None or record.action == action,
        )

    def get_config(self, key: str) -> str | None:
        """Return the value stored under ``key``, or None."""
        with self._lock:
            self._check_open()
            return self._config.get(check_config_key(key))

    def set_config(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        with self._lock:
            self._check_open()
            self._config[check_config_key(key)] = value

    def close(self) -> None:
        """Mark the store closed; later calls raise ``StateError``."""
        with self._lock:
            self._closed = True
