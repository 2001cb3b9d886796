"""How fast the SQL store writes market data: ``append_events`` with ``TradeTick`` batches.

``measure_insert_rate(url)`` migrates a fresh database at ``url``, writes ``rows`` trades in
batches and returns rows per second (the target is at least 20,000 on SQLite and PostgreSQL).
Run as a script, it prints a table for a SQLite file and a throw-away PostgreSQL database::

    python benchmarks/store_insert.py [--rows 50000] [--postgres-url postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, make_url

from cdb_cli.adapters.sql import SqlStore, upgrade
from cdb_cli.engine.events import Side, TradeTick

BATCH_SIZE = 5_000
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _trades(rows: int) -> list[TradeTick]:
    start_ns = 1_700_000_000_000_000_000
    return [
        TradeTick(
            symbol="BTCUSDT",
            ts_event=start_ns + index * 1_000_000,
            source="benchmark",
            price=Decimal("43251.17") + Decimal(index % 100) / 100,
            quantity=Decimal("0.000312"),
            aggressor=Side.BUY if index % 2 else Side.SELL,
            trade_id=str(index),
        )
        for index in range(rows)
    ]


def measure_insert_rate(url: str, rows: int = 50_000) -> float:
    """Return rows/s of ``append_events`` writing ``rows`` trades into a fresh database at ``url``.

    The database must be empty (it is migrated here). Events are built before the clock starts;
    the time covers only the store writing batches of 5,000.
    """
    upgrade(url)
    store = SqlStore(url)
    try:
        trades = _trades(rows)
        started = time.perf_counter()
        written = 0
        for offset in range(0, rows, BATCH_SIZE):
            written += store.append_events(trades[offset : offset + BATCH_SIZE])
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    if written != rows:
        raise RuntimeError(f"Wrote {written} rows of {rows}; the database was not fresh")
    return rows / elapsed


@contextmanager
def sqlite_scratch_database() -> Iterator[str]:
    """Yield the URL of a SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="cdb_bench_") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextmanager
def postgres_scratch_database(admin_url: str = DEFAULT_ADMIN_URL) -> Iterator[str]:
    """Create a uniquely named PostgreSQL database, yield its URL, drop it afterwards."""
    name = f"cdb_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def main() -> None:
    """Print rows/s for a SQLite file and a throw-away PostgreSQL database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    arguments = parser.parse_args()

    results: list[tuple[str, float]] = []
    with sqlite_scratch_database() as sqlite_url:
        results.append(("SQLite file (WAL)", measure_insert_rate(sqlite_url, arguments.rows)))
    with postgres_scratch_database(arguments.postgres_url) as postgres_url:
        results.append(("PostgreSQL", measure_insert_rate(postgres_url, arguments.rows)))

    print(f"{'backend':<20} {'rows':>8} {'rows/s':>10}")
    for backend, rate in results:
        print(f"{backend:<20} {arguments.rows:>8} {rate:>10,.0f}")


if __name__ == "__main__":
    main()
