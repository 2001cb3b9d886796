"""The tables of the cdb store (SQLModel), one per event type plus the ledger records.

Column names equal the field names of the event or record a row holds, so rows convert
generically (``codec.py``). Money is ``Money`` (``NUMERIC(38, 18)``, exact text on SQLite), time is
``BIGINT`` nanoseconds UTC. Every table has explicit, convention-named constraints and indexes, so
migrations and the models compare equal on both engines.

Schema changes need a new migration in ``migrations/versions`` (``cdb db upgrade`` applies it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from cdb_cli.adapters.sql.types import IdType, Money

__all__ = [
    "NAMING_CONVENTION",
    "Audit",
    "CdbTable",
    "EquitySnapshotRow",
    "Execution",
    "Fill",
    "HealthReportRow",
    "MarketBar",
    "MarketQuote",
    "MarketTrade",
    "Order",
    "OrderApproval",
    "Position",
    "RiskDecisionRow",
    "StrategyTraceRow",
    "TradingSignalRow",
    "UserConfig",
    "metadata",
    "table",
]

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CdbTable(SQLModel, registry=registry(metadata=metadata)):
    """Base of every cdb table; its ``metadata`` is the store's schema."""


def _id() -> Any:
    return Field(default=None, primary_key=True, sa_type=IdType)


def _str(length: int, **kwargs: Any) -> Any:
    return Field(sa_type=String(length), **kwargs)


def _money(**kwargs: Any) -> Any:
    return Field(sa_type=Money, **kwargs)


def _ts(**kwargs: Any) -> Any:
    return Field(sa_type=BigInteger, **kwargs)


def _symbol_ts_index(table_name: str) -> Index:
    return Index(f"ix_{table_name}_symbol_ts_event", "symbol", "ts_event")


class _EventRow(CdbTable):
    id: int | None = _id()
    event_id: str = _str(64, unique=True)
    symbol: str = _str(32)
    ts_event: int = _ts()
    source: str = _str(64)


class MarketTrade(_EventRow, table=True):
    """``TradeTick``: one public trade."""

    __tablename__ = "market_trades"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    price: Decimal = _money()
    quantity: Decimal = _money()
    aggressor: str = _str(4)
    trade_id: str = _str(64)


class MarketQuote(_EventRow, table=True):
    """``QuoteTick``: best bid and ask."""

    __tablename__ = "market_quotes"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    bid: Decimal = _money()
    ask: Decimal = _money()
    bid_size: Decimal = _money()
    ask_size: Decimal = _money()


class MarketBar(_EventRow, table=True):
    """``Bar``: one candle per (symbol, interval, open time)."""

    __tablename__ = "market_bars"
    __table_args__ = (UniqueConstraint("symbol", "interval", "ts_event"),)

    interval: str = _str(8)
    open: Decimal = _money()
    high: Decimal = _money()
    low: Decimal = _money()
    close: Decimal = _money()
    volume: Decimal = _money()
    closed: bool = Field(sa_type=Boolean)
    closed_at: int = _ts(sa_column_kwargs={"server_default": "0"})


class TradingSignalRow(_EventRow, table=True):
    """``TradingSignal``; ``indicators`` is a JSON object."""

    __tablename__ = "trading_signals"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    side: str = _str(8)
    strategy: str = _str(64)
    price: Decimal = _money()
    strength: float = Field(sa_type=Double)
    indicators: str = Field(sa_type=Text)
    bar_id: str = _str(64, sa_column_kwargs={"server_default": ""})
    trace_id: str = _str(64, sa_column_kwargs={"server_default": ""})


class StrategyTraceRow(_EventRow, table=True):
    """``StrategyTrace``: one closed bar as the strategy saw it; ``conditions`` and ``values``
    are JSON (each condition's value, threshold and outcome; the indicator values)."""

    __tablename__ = "strategy_traces"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    strategy: str = _str(64)
    status: str = _str(16)
    close: float = Field(sa_type=Double)
    volume: float = Field(sa_type=Double)
    bars_needed: int = Field(sa_type=BigInteger)
    gap_bars: int = Field(sa_type=BigInteger)
    conditions: str = Field(sa_type=Text)
    values: str = Field(sa_type=Text)
    signal: str = _str(8)
    signal_id: str = _str(64)


class RiskDecisionRow(_EventRow, table=True):
    """``RiskDecision``; ``checks`` is the full rule trace and ``state`` what it saw, as JSON."""

    __tablename__ = "risk_decisions"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    signal_id: str = _str(64, index=True)
    verdict: str = _str(16)
    side: str = _str(8)
    requested_quote: Decimal = _money()
    final_quote: Decimal = _money()
    checks: str = Field(sa_type=Text)
    state: str = Field(sa_type=Text)


class OrderApproval(_EventRow, table=True):
    """``OrderApproved``: what the risk engine handed to execution."""

    __tablename__ = "order_approvals"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    decision_id: str = _str(64, index=True)
    side: str = _str(4)
    quote_amount: Decimal = _money()
    reference_price: Decimal = _money()


class Execution(_EventRow, table=True):
    """``ExecutionReport``: one change of an order's state at the venue."""

    __tablename__ = "executions"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    client_order_id: str = _str(32, index=True)
    venue_order_id: str = _str(64)
    side: str = _str(4)
    status: str = _str(24)
    last_quantity: Decimal = _money()
    last_price: Decimal = _money()
    fee: Decimal = _money()
    fee_asset: str = _str(16)
    reason: str = Field(sa_type=Text)


class HealthReportRow(_EventRow, table=True):
    """``HealthReport`` of one component."""

    __tablename__ = "health_reports"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    component: str = _str(64)
    status: str = _str(16)
    detail: str = Field(sa_type=Text)


class Order(CdbTable, table=True):
    """``OrderRecord``, upserted by ``client_order_id``; ``id`` keeps the first-write order."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_symbol_ts_created", "symbol", "ts_created"),)

    id: int | None = _id()
    client_order_id: str = _str(32, unique=True)
    venue_order_id: str = _str(64)
    decision_id: str = _str(64, index=True)
    symbol: str = _str(32)
    side: str = _str(4)
    order_type: str = _str(24)
    quantity: Decimal | None = _money(nullable=True)
    price: Decimal | None = _money(nullable=True)
    quote_amount: Decimal | None = _money(nullable=True)
    status: str = _str(24, index=True)
    ts_created: int = _ts()
    ts_updated: int = _ts()
    mode: str = _str(8)


class Fill(CdbTable, table=True):
    """``FillRecord``; the foreign key enforces "no fill without an order"."""

    __tablename__ = "fills"
    __table_args__ = (_symbol_ts_index(__tablename__),)

    id: int | None = _id()
    fill_id: str = _str(64, unique=True)
    client_order_id: str = _str(32, foreign_key="orders.client_order_id", index=True)
    symbol: str = _str(32)
    side: str = _str(4)
    quantity: Decimal = _money()
    price: Decimal = _money()
    fee: Decimal = _money()
    fee_asset: str = _str(16)
    ts_event: int = _ts()
    liquidity: str = _str(8)


class Position(CdbTable, table=True):
    """``PositionRecord``, one row per symbol."""

    __tablename__ = "positions"

    symbol: str = _str(32, primary_key=True)
    quantity: Decimal = _money()
    average_price: Decimal = _money()
    realized_pnl: Decimal = _money()
    ts_updated: int = _ts()


class EquitySnapshotRow(CdbTable, table=True):
    """``EquitySnapshot``: the equity curve."""

    __tablename__ = "equity_snapshots"

    id: int | None = _id()
    ts_event: int = _ts(index=True)
    cash: Decimal = _money()
    position_value: Decimal = _money()
    equity: Decimal = _money()
    day_start_equity: Decimal = _money()
    peak_equity: Decimal = _money()
    currency: str = _str(16)


class Audit(CdbTable, table=True):
    """``AuditRecord``; ``detail`` is a JSON object of strings."""

    __tablename__ = "audits"
    __table_args__ = (Index("ix_audits_action_ts_event", "action", "ts_event"),)

    id: int | None = _id()
    ts_event: int = _ts(index=True)
    action: str = _str(64)
    actor: str = _str(64)
    detail: str = Field(sa_type=Text)
    run_id: str = _str(64)


class UserConfig(CdbTable, table=True):
    """Operator settings kept in the database (key/value)."""

    __tablename__ = "user_config"

    key: str = _str(128, primary_key=True)
    value: str = Field(sa_type=Text)


def table(name: str) -> Table:
    """Return the ``Table`` called ``name`` from the store's schema."""
    return metadata.tables[name]
