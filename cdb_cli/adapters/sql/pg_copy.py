"""Bulk event inserts on PostgreSQL: COPY into a session temp table, then one INSERT … SELECT.

A multi-row ``INSERT … VALUES`` with thousands of parameters spends most of its time in the
driver parsing the statement (about 8,000 rows/s); COPY streams rows instead. The final
``INSERT … SELECT … ORDER BY seq ON CONFLICT (event_id) DO NOTHING`` keeps batch order and
idempotency, and its row count is the number of rows written. It runs on the caller's
transaction; the staging table empties itself at commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import psycopg
from psycopg import sql
from sqlalchemy import Table, exc
from sqlalchemy.engine import Connection

from cdb_cli.adapters.sql.types import Money

__all__ = ["COPY_MIN_ROWS", "copy_events"]

COPY_MIN_ROWS: Final = 100
"""Smaller batches go through a plain INSERT: three round trips are not worth it for a few rows."""


def copy_events(connection: Connection, target: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert event rows into ``target`` skipping stored ``event_id``s; return rows written."""
    columns = [column.name for column in target.columns if column.name != "id"]
    money = [isinstance(target.columns[name].type, Money) for name in columns]
    check_money = Money().process_bind_param
    dialect = connection.dialect
    stage = sql.Identifier(f"cdb_stage_{target.name}")
    names = sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    driver = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
    statement = "COPY"
    try:
        with driver.cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "
                    "SELECT 0::bigint AS seq, {} FROM {} WITH NO DATA"
                ).format(stage, names, sql.Identifier(target.name))
            )
            copy = sql.SQL("COPY {} (seq, {}) FROM STDIN").format(stage, names)
            with cursor.copy(copy) as stream:
                for seq, row in enumerate(rows):
                    values = [row[name] for name in columns]
                    for index, is_money in enumerate(money):
                        if is_money:  # refuse what NUMERIC(38, 18) would round, as INSERT does
                            values[index] = check_money(values[index], dialect)
                    stream.write_row((seq, *values))
            statement = "INSERT … SELECT"
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {target} ({names}) SELECT {names} FROM {stage} ORDER BY seq "
                    "ON CONFLICT (event_id) DO NOTHING"
                ).format(target=sql.Identifier(target.name), names=names, stage=stage)
            )
            written = cursor.rowcount
            cursor.execute(sql.SQL("TRUNCATE {}").format(stage))
            return written
    except psycopg.Error as e:
        raise exc.DBAPIError.instance(statement, None, e, psycopg.Error) from e
    except ValueError as e:  # money that does not fit the column
        raise exc.StatementError(str(e), statement, None, e) from e
