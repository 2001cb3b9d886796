"""The SQL store: SQLModel tables, the ``SqlStore`` adapter and the Alembic migrations.

SQLite (a file by default, or in memory) and PostgreSQL through psycopg 3; see ``store.py``.
"""

from __future__ import annotations

from cdb_cli.adapters.sql.migrations import (
    SchemaStatus,
    create_if_new,
    ensure_schema_current,
    schema_status,
    upgrade,
)
from cdb_cli.adapters.sql.store import SqlStore

__all__ = [
    "SchemaStatus",
    "SqlStore",
    "create_if_new",
    "ensure_schema_current",
    "schema_status",
    "upgrade",
]
