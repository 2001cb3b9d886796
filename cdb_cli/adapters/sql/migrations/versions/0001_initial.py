"""Initial schema: market data, signals, risk decisions, orders, fills, ledger, audits, config.

Revision ID: 0001
Revises:
Create Date: 2025-11-23 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types of this revision (models.py may move on; this must not).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")  # exact text on SQLite
TS = sa.BigInteger()

EVENT_TABLES = (
    "market_trades",
    "market_quotes",
    "market_bars",
    "trading_signals",
    "risk_decisions",
    "order_approvals",
    "executions",
    "health_reports",
)


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False)


def _money(name: str, *, nullable: bool = False) -> sa.Column[Decimal]:
    return sa.Column(name, MONEY, nullable=nullable)


def _event_table(name: str, *items: sa.schema.SchemaItem, symbol_ts_index: bool = True) -> None:
    op.create_table(
        name,
        sa.Column("id", ID, nullable=False),
        _text("event_id", 64),
        _text("symbol", 32),
        sa.Column("ts_event", TS, nullable=False),
        _text("source", 64),
        *items,
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        sa.UniqueConstraint("event_id", name=f"uq_{name}_event_id"),
    )
    if symbol_ts_index:
        op.create_index(f"ix_{name}_symbol_ts_event", name, ["symbol", "ts_event"])


def _create_event_tables() -> None:
    _event_table(
        "market_trades",
        _money("price"),
        _money("quantity"),
        _text("aggressor", 4),
        _text("trade_id", 64),
    )
    _event_table(
        "market_quotes", _money("bid"), _money("ask"), _money("bid_size"), _money("ask_size")
    )
    _event_table(
        "market_bars",
        _text("interval", 8),
        *(_money(name) for name in ("open", "high", "low", "close", "volume")),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.UniqueConstraint(
            "symbol", "interval", "ts_event", name="uq_market_bars_symbol_interval_ts_event"
        ),
        symbol_ts_index=False,  # the unique key leads with symbol and ends with ts_event
    )
    _event_table(
        "trading_signals",
        _text("side", 8),
        _text("strategy", 64),
        _money("price"),
        sa.Column("strength", sa.Double(), nullable=False),
        sa.Column("indicators", sa.Text(), nullable=False),
    )
    _event_table(
        "risk_decisions",
        _text("signal_id", 64),
        _text("verdict", 16),
        _text("side", 8),
        _money("requested_quote"),
        _money("final_quote"),
        sa.Column("checks", sa.Text(), nullable=False),  # JSON: every rule's trace
        sa.Column("state", sa.Text(), nullable=False),  # JSON: the portfolio state it saw
    )
    op.create_index("ix_risk_decisions_signal_id", "risk_decisions", ["signal_id"])
    _event_table(
        "order_approvals",
        _text("decision_id", 64),
        _text("side", 4),
        _money("quote_amount"),
        _money("reference_price"),
    )
    op.create_index("ix_order_approvals_decision_id", "order_approvals", ["decision_id"])
    _event_table(
        "executions",
        _text("client_order_id", 32),
        _text("venue_order_id", 64),
        _text("side", 4),
        _text("status", 24),
        _money("last_quantity"),
        _money("last_price"),
        _money("fee"),
        _text("fee_asset", 16),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_executions_client_order_id", "executions", ["client_order_id"])
    _event_table(
        "health_reports",
        _text("component", 64),
        _text("status", 16),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def _create_ledger_tables() -> None:
    op.create_table(
        "orders",
        sa.Column("id", ID, nullable=False),
        _text("client_order_id", 32),
        _text("venue_order_id", 64),
        _text("decision_id", 64),
        _text("symbol", 32),
        _text("side", 4),
        _text("order_type", 24),
        _money("quantity", nullable=True),
        _money("price", nullable=True),
        _money("quote_amount", nullable=True),
        _text("status", 24),
        sa.Column("ts_created", TS, nullable=False),
        sa.Column("ts_updated", TS, nullable=False),
        _text("mode", 8),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_decision_id", "orders", ["decision_id"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_symbol_ts_created", "orders", ["symbol", "ts_created"])
    op.create_table(
        "fills",
        sa.Column("id", ID, nullable=False),
        _text("fill_id", 64),
        _text("client_order_id", 32),
        _text("symbol", 32),
        _text("side", 4),
        _money("quantity"),
        _money("price"),
        _money("fee"),
        _text("fee_asset", 16),
        sa.Column("ts_event", TS, nullable=False),
        _text("liquidity", 8),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.UniqueConstraint("fill_id", name="uq_fills_fill_id"),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name="fk_fills_client_order_id_orders",
        ),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    op.create_index("ix_fills_symbol_ts_event", "fills", ["symbol", "ts_event"])
    op.create_table(
        "positions",
        _text("symbol", 32),
        _money("quantity"),
        _money("average_price"),
        _money("realized_pnl"),
        sa.Column("ts_updated", TS, nullable=False),
        sa.PrimaryKeyConstraint("symbol", name="pk_positions"),
    )
    op.create_table(
        "equity_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("ts_event", TS, nullable=False),
        *(
            _money(name)
            for name in ("cash", "position_value", "equity", "day_start_equity", "peak_equity")
        ),
        _text("currency", 16),
        sa.PrimaryKeyConstraint("id", name="pk_equity_snapshots"),
    )
    op.create_index("ix_equity_snapshots_ts_event", "equity_snapshots", ["ts_event"])
    op.create_table(
        "audits",
        sa.Column("id", ID, nullable=False),
        sa.Column("ts_event", TS, nullable=False),
        _text("action", 64),
        _text("actor", 64),
        sa.Column("detail", sa.Text(), nullable=False),  # JSON object of strings
        _text("run_id", 64),
        sa.PrimaryKeyConstraint("id", name="pk_audits"),
    )
    op.create_index("ix_audits_ts_event", "audits", ["ts_event"])
    op.create_index("ix_audits_action_ts_event", "audits", ["action", "ts_event"])
    op.create_table(
        "user_config",
        _text("key", 128),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_user_config"),
    )


def upgrade() -> None:
    """Create every table of the first schema."""
    _create_event_tables()
    _create_ledger_tables()


def downgrade() -> None:
    """Drop every table (dependent tables first)."""
    for name in ("user_config", "audits", "equity_snapshots", "positions", "fills", "orders"):
        op.drop_table(name)
    for name in reversed(EVENT_TABLES):
        op.drop_table(name)
