"""Strategy traces: what the strategy saw on each closed bar, and the signal's link to it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types of this revision (models.py may move on; this must not).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.BigInteger()
NAME = "strategy_traces"


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False)


def upgrade() -> None:
    """Apply this revision: a new table, and a column with a default on trading_signals."""
    op.create_table(
        NAME,
        sa.Column("id", ID, nullable=False),
        _text("event_id", 64),
        _text("symbol", 32),
        sa.Column("ts_event", TS, nullable=False),
        _text("source", 64),
        _text("strategy", 64),
        _text("status", 16),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("bars_needed", sa.BigInteger(), nullable=False),
        sa.Column("gap_bars", sa.BigInteger(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),  # JSON: each condition on the bar
        sa.Column("values", sa.Text(), nullable=False),  # JSON: the indicator values
        _text("signal", 8),
        _text("signal_id", 64),
        sa.PrimaryKeyConstraint("id", name=f"pk_{NAME}"),
        sa.UniqueConstraint("event_id", name=f"uq_{NAME}_event_id"),
    )
    op.create_index(f"ix_{NAME}_symbol_ts_event", NAME, ["symbol", "ts_event"])
    with op.batch_alter_table("trading_signals") as table:
        table.add_column(sa.Column("trace_id", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("trading_signals") as table:
        table.drop_column("trace_id")
    op.drop_index(f"ix_{NAME}_symbol_ts_event", table_name=NAME)
    op.drop_table(NAME)
