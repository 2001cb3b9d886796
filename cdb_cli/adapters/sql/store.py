"""``SqlStore``: the ``Store`` port on SQLite or PostgreSQL (SQLAlchemy Core on SQLModel tables).

Writes are single transactions. Event batches go to their tables as one ``executemany`` per table
(SQLAlchemy's "insertmanyvalues": multi-row ``INSERT … ON CONFLICT DO NOTHING … RETURNING id``),
so duplicates are skipped by the database and the rows returned are the rows written; on
PostgreSQL, large batches are streamed with COPY instead (``pg_copy.py``). Library errors surface
as cdb errors (``database.translate_errors``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Column, Select, Table, exc, false, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from cdb_cli.adapters.sql.codec import from_row, table_name_for, to_row
from cdb_cli.adapters.sql.database import (
    describe_url,
    is_memory_url,
    make_engine,
    parse_url,
    translate_errors,
)
from cdb_cli.adapters.sql.migrations import ensure_schema_current, upgrade
from cdb_cli.adapters.sql.models import table
from cdb_cli.adapters.sql.pg_copy import COPY_MIN_ROWS, copy_events
from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import Event
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

__all__ = ["SqlStore"]

M = TypeVar("M", bound=BaseModel)

_BAR_KEY = ("symbol", "interval", "ts_event")


def _bar_rounds(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split bar rows so no key repeats within a statement, keeping each key's order.

    PostgreSQL refuses to upsert one row twice in a statement; round k holds the k-th version of
    every bar, so the rounds applied in turn behave like the rows applied one by one.
    """
    rounds: list[list[dict[str, Any]]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = tuple(row[name] for name in _BAR_KEY)
        index = seen.get(key, 0)
        seen[key] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(row)
    return rounds


class SqlStore:
    """The ``Store`` port on a SQL database; see ``cdb_cli.engine.ports.store`` for the rules.

    ``url`` is ``sqlite:///path/to/cdb.db``, ``sqlite://`` (in memory, migrated on creation) or
    ``postgresql://user@host:port/database``. A file or server database must already be at the
    code's schema revision (``SchemaOutOfDate`` otherwise; ``check_schema=False`` skips that for
    tools that inspect old databases). Unreachable databases raise ``DependencyError``.
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self._url = parse_url(url)
        self._engine = make_engine(self._url)
        self._closed = False
        memory = is_memory_url(self._url)
        # In memory, all threads share one connection: serialise its use.
        self._lock: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
        self._inserts: dict[str, Insert] = {}
        try:
            with (
                translate_errors(self._url, "Opening the store", connected=False),
                self._engine.connect(),
            ):
                pass
            if memory:
                upgrade(self._engine)
            elif check_schema:
                ensure_schema_current(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlStore({describe_url(self._url)})"

    # plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, action: str) -> Iterator[Connection]:
        if self._closed:
            raise StateError("The store is closed")
        with self._lock, translate_errors(self._url, action), self._engine.begin() as connection:
            yield connection

    def _dialect_insert(self, target: Table) -> postgresql.Insert | sqlite.Insert:
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(target)
        return sqlite.insert(target)

    def _statement(self, purpose: str, name: str, build: Callable[[Table], Insert]) -> Insert:
        statement = self._inserts.get(f"{purpose}:{name}")
        if statement is None:
            statement = self._inserts[f"{purpose}:{name}"] = build(table(name))
        return statement

    def _append_statement(self, target: Table) -> Insert:
        insert = self._dialect_insert(target)
        if target.name != "market_bars":
            return insert.on_conflict_do_nothing(index_elements=["event_id"]).returning(target.c.id)
        # A bar is replaced while open, by a different event; a closed bar is final.
        replaced = {
            column.name: insert.excluded[column.name]
            for column in target.columns
            if column.name not in {"id", *_BAR_KEY}
        }
        return insert.on_conflict_do_update(
            index_elements=list(_BAR_KEY),
            set_=replaced,
            where=(target.c.closed == false()) & (target.c.event_id != insert.excluded["event_id"]),
        ).returning(target.c.id)

    def _upsert_statement(self, key: str) -> Callable[[Table], Insert]:
        def build(target: Table) -> Insert:
            insert = self._dialect_insert(target)
            replaced = {
                column.name: insert.excluded[column.name]
                for column in target.columns
                if column.name not in {"id", key}
            }
            return insert.on_conflict_do_update(index_elements=[key], set_=replaced)

        return build

    def _read(self, action: str, statement: Select[Any], kind: type[M]) -> list[M]:
        with self._transaction(action) as connection:
            rows = connection.execute(statement).mappings().all()
        return [from_row(kind, row) for row in rows]

    # events -----------------------------------------------------------------------------------

    def append_events(self, events: Sequence[Event]) -> int:
        """Write events in one transaction, skipping stored ids; return how many were written."""
        with self._transaction("Writing events") as connection:
            return self._append_events(connection, events)

    def _append_events(self, connection: Connection, events: Sequence[Event]) -> int:
        batches: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            batches.setdefault(table_name_for(type(event)), []).append(to_row(event))
        written = 0
        copy = self._engine.dialect.name == "postgresql"
        for name, rows in batches.items():
            if copy and name != "market_bars" and len(rows) >= COPY_MIN_ROWS:
                written += copy_events(connection, table(name), rows)
                continue
            statement = self._statement("append", name, self._append_statement)
            for part in _bar_rounds(rows) if name == "market_bars" else [rows]:
                written += len(connection.execute(statement, part).all())
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
        """Write all of it in one transaction (one commit, not one per row): all or nothing."""
        with self._transaction("Writing a batch") as connection:
            self._append_events(connection, events)
            for order in orders:
                self._save_order(connection, order)
            for fill in fills:
                self._add_fill(connection, fill)
            for position in positions:
                self._save_position(connection, position)
            for record in audits:
                self._add_audit(connection, record)

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
        target = table(table_name_for(kind))
        statement = _window(
            select(target), target.c.ts_event, target.c.id, since_ns, until_ns, limit, descending
        )
        if symbol is not None:
            statement = statement.where(target.c.symbol == symbol)
        return self._read(f"Reading {kind.__name__} events", statement, kind)

    def find_event(self, kind: type[E], event_id: str) -> E | None:
        """The stored event of this type with this id (the unique index), if any."""
        target = table(table_name_for(kind))
        statement = select(target).where(target.c.event_id == event_id)
        found = self._read(f"Reading a {kind.__name__} event", statement, kind)
        return found[0] if found else None

    def count_events(
        self,
        kind: type[Event],
        *,
        symbol: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> int:
        """How many events of one type the window holds (one COUNT, no rows read)."""
        target = table(table_name_for(kind))
        statement = select(func.count()).select_from(target)
        if since_ns is not None:
            statement = statement.where(target.c.ts_event >= since_ns)
        if until_ns is not None:
            statement = statement.where(target.c.ts_event < until_ns)
        if symbol is not None:
            statement = statement.where(target.c.symbol == symbol)
        with self._transaction(f"Counting {kind.__name__} events") as connection:
            return int(connection.execute(statement).scalar_one())

    # orders and fills -------------------------------------------------------------------------

    def save_order(self, order: OrderRecord) -> None:
        """Insert or replace the order with this ``client_order_id``."""
        with self._transaction("Saving an order") as connection:
            self._save_order(connection, order)

    def _save_order(self, connection: Connection, order: OrderRecord) -> None:
        statement = self._statement("upsert", "orders", self._upsert_statement("client_order_id"))
        connection.execute(statement, to_row(order))

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
        target = table("orders")
        statement = _window(
            select(target), target.c.ts_created, target.c.id, since_ns, until_ns, limit, descending
        )
        if symbol is not None:
            statement = statement.where(target.c.symbol == symbol)
        if status is not None:
            statement = statement.where(target.c.status.in_(sorted(status)))
        return self._read("Reading orders", statement, OrderRecord)

    def add_fill(self, fill: FillRecord) -> bool:
        """Record a fill of a saved order; False if its ``fill_id`` was already stored."""
        with self._transaction("Recording a fill") as connection:
            return self._add_fill(connection, fill)

    def _add_fill(self, connection: Connection, fill: FillRecord) -> bool:
        statement = self._statement(
            "insert",
            "fills",
            lambda target: (
                self._dialect_insert(target)
                .on_conflict_do_nothing(index_elements=["fill_id"])
                .returning(target.c.id)
            ),
        )
        try:
            return connection.execute(statement, to_row(fill)).first() is not None
        except exc.IntegrityError as e:  # the only constraint left is the order's key
            raise StateError(
                f"Fill {fill.fill_id} refers to order {fill.client_order_id}, which was never saved"
            ) from e

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
        target = table("fills")
        statement = _window(
            select(target), target.c.ts_event, target.c.id, since_ns, until_ns, limit, descending
        )
        if symbol is not None:
            statement = statement.where(target.c.symbol == symbol)
        if client_order_id is not None:
            statement = statement.where(target.c.client_order_id == client_order_id)
        return self._read("Reading fills", statement, FillRecord)

    # positions, equity, audits, config ----------------------------------------------------------

    def save_position(self, position: PositionRecord) -> None:
        """Insert or replace the position in ``position.symbol``."""
        with self._transaction("Saving a position") as connection:
            self._save_position(connection, position)

    def _save_position(self, connection: Connection, position: PositionRecord) -> None:
        statement = self._statement("upsert", "positions", self._upsert_statement("symbol"))
        connection.execute(statement, to_row(position))

    def positions(self) -> list[PositionRecord]:
        """Every stored position, ordered by symbol."""
        target = table("positions")
        statement = select(target).order_by(target.c.symbol)
        return self._read("Reading positions", statement, PositionRecord)

    def add_equity_snapshot(self, snapshot: EquitySnapshot) -> None:
        """Append one equity snapshot."""
        with self._transaction("Saving an equity snapshot") as connection:
            connection.execute(table("equity_snapshots").insert(), to_row(snapshot))

    def equity_snapshots(
        self,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[EquitySnapshot]:
        """Equity snapshots ordered by ``ts_event``."""
        target = table("equity_snapshots")
        statement = _window(
            select(target), target.c.ts_event, target.c.id, since_ns, until_ns, limit, descending
        )
        return self._read("Reading equity snapshots", statement, EquitySnapshot)

    def add_audit(self, record: AuditRecord) -> None:
        """Append one audit record."""
        with self._transaction("Saving an audit record") as connection:
            self._add_audit(connection, record)

    def _add_audit(self, connection: Connection, record: AuditRecord) -> None:
        connection.execute(table("audits").insert(), to_row(record))

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
        target = table("audits")
        statement = _window(
            select(target), target.c.ts_event, target.c.id, since_ns, until_ns, limit, descending
        )
        if action is not None:
            statement = statement.where(target.c.action == action)
        return self._read("Reading audit records", statement, AuditRecord)

    def get_config(self, key: str) -> str | None:
        """Return the value stored under ``key``, or None."""
        target = table("user_config")
        statement = select(target.c.value).where(target.c.key == check_config_key(key))
        with self._transaction("Reading user config") as connection:
            value: str | None = connection.execute(statement).scalar_one_or_none()
        return value

    def set_config(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        statement = self._statement("upsert", "user_config", self._upsert_statement("key"))
        with self._transaction("Saving user config") as connection:
            connection.execute(statement, {"key": check_config_key(key), "value": value})

    def ping_ms(self) -> float:
        """The round trip of one ``SELECT 1`` in milliseconds (the live loop's health)."""
        import time

        started = time.perf_counter()
        with self._transaction("Pinging the database") as connection:
            connection.exec_driver_sql("SELECT 1")
        return (time.perf_counter() - started) * 1000.0

    def connections_active(self) -> int:
        """How many connections the pool holds open right now, idle or checked out (sampled
        between two uses, the checked-out count alone read 0 at almost every scrape)."""
        pool = self._engine.pool
        counts = [getattr(pool, name, None) for name in ("checkedin", "checkedout")]
        return sum(int(count()) for count in counts if callable(count))

    def close(self) -> None:
        """Close the pool's connections; later calls raise ``StateError``."""
        self._closed = True
        self._engine.dispose()


def _window(
    statement: Select[Any],
    ts: Column[int],
    tie: Column[Any],
    since_ns: int | None,
    until_ns: int | None,
    limit: int | None,
    descending: bool,
) -> Select[Any]:
    """Apply the port's window: ``since`` inclusive, ``until`` exclusive, ordered, limited."""
    if since_ns is not None:
        statement = statement.where(ts >= since_ns)
    if until_ns is not None:
        statement = statement.where(ts < until_ns)
    order = (ts.desc(), tie.desc()) if descending else (ts.asc(), tie.asc())
    statement = statement.order_by(*order)
    return statement if limit is None else statement.limit(limit)
