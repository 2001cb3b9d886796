"""Row counts and content hashes of every table: what a backup promises and a restore must keep.

The hash of a table is SHA-256 over its rows in primary-key order, each row a JSON array of its
values as text. It is comparable between a database and its restored copy on the same engine
(SQLite ↔ SQLite, PostgreSQL ↔ PostgreSQL), which is all a backup needs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from sqlalchemy import String, inspect
from sqlalchemy.engine import Connection

from cdb_cli.adapters.backup.manifest import TableDigest

__all__ = ["compare_digests", "schema_revision", "table_digests"]

_BATCH: Final = 1000


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _digest(connection: Connection, name: str) -> TableDigest:
    inspector = inspect(connection)
    quote = connection.dialect.identifier_preparer.quote
    columns = {column["name"]: column["type"] for column in inspector.get_columns(name)}
    key = inspector.get_pk_constraint(name).get("constrained_columns") or list(columns)
    # Byte order for text keys: a restored PostgreSQL database may have another default collation.
    binary = ' COLLATE "C"' if connection.dialect.name == "postgresql" else ""
    order = ", ".join(
        quote(column) + (binary if isinstance(columns.get(column), String) else "")
        for column in key
    )
    sql = f"SELECT * FROM {quote(name)} ORDER BY {order}"  # noqa: S608 - quoted identifiers
    hasher = hashlib.sha256()
    rows = 0
    result = connection.execution_options(stream_results=True).exec_driver_sql(sql)
    for batch in result.partitions(_BATCH):
        for row in batch:
            hasher.update(json.dumps([_text(value) for value in row]).encode())
            hasher.update(b"\n")
            rows += 1
    return TableDigest(rows=rows, sha256=hasher.hexdigest())


def table_digests(connection: Connection) -> dict[str, TableDigest]:
    """Row count and hash of every table in the connection's default schema, by name."""
    names = sorted(inspect(connection).get_table_names())
    return {name: _digest(connection, name) for name in names}


def schema_revision(connection: Connection) -> str | None:
    """The Alembic revision recorded in the database, or None when it has no cdb schema."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    value = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if value is None else str(value)


def compare_digests(expected: dict[str, TableDigest], actual: dict[str, TableDigest]) -> list[str]:
    """One line per difference between the manifest's tables and a restored database's."""
    problems = []
    for name in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(name), actual.get(name)
        if got is None:
            problems.append(f"table {name}: missing after restore")
        elif want is None:
            problems.append(f"table {name}: not in the manifest")
        elif want.rows != got.rows:
            problems.append(f"table {name}: {got.rows} rows, the manifest says {want.rows}")
        elif want.sha256 != got.sha256:
            problems.append(f"table {name}: content differs from the manifest (same row count)")
    return problems
