"""Component mode: the time a bar was closed at, the bar a signal came from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision: two columns with defaults, so the rows already stored keep valid."""
    with op.batch_alter_table("market_bars") as table:
        table.add_column(
            sa.Column("closed_at", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("trading_signals") as table:
        table.add_column(sa.Column("bar_id", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("trading_signals") as table:
        table.drop_column("bar_id")
    with op.batch_alter_table("market_bars") as table:
        table.drop_column("closed_at")
