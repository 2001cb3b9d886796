"""Probes of the store's database for ``cdb systemcheck``: reachable, and a write that is undone.

Neither leaves a trace: ``ping`` only reads, ``round_trip`` writes a row and rolls it back, and a
SQLite file that does not exist is reported, not created.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from sqlalchemy import select

from cdb_cli.adapters.sql.database import (
    describe_url,
    is_memory_url,
    make_engine,
    parse_url,
    translate_errors,
)
from cdb_cli.adapters.sql.models import table
from cdb_cli.engine.errors import StateError

__all__ = ["database_exists", "local_data_directory", "ping", "round_trip"]

_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there yet (servers are asked by ``ping``)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or is_memory_url(parsed):
        return True
    return Path(parsed.database or "").expanduser().is_file()


def ping(url: str) -> tuple[str, float]:
    """Connect and run ``SELECT 1``; return what answered and the round trip in milliseconds."""
    parsed = parse_url(url)
    engine = make_engine(parsed)
    try:
        with (
            translate_errors(parsed, "Connecting", connected=False),
            engine.connect() as connection,
        ):
            started = time.perf_counter()
            connection.exec_driver_sql("SELECT 1").scalar()
            elapsed = (time.perf_counter() - started) * 1000.0
            if engine.dialect.name == "postgresql":
                version = connection.exec_driver_sql("SHOW server_version").scalar()
                return f"PostgreSQL {str(version).split()[0]}, {describe_url(parsed)}", elapsed
            return describe_url(parsed), elapsed
    finally:
        engine.dispose()


def round_trip(url: str) -> float:
    """Write a row into ``user_config``, read it back, roll back; return the milliseconds taken.

    Raises ``StateError`` when the value read differs from the value written.
    """
    parsed = parse_url(url)
    engine = make_engine(parsed)
    user_config = table("user_config")
    key, value = f"cdb.systemcheck.{secrets.token_hex(8)}", secrets.token_hex(16)
    try:
        with (
            translate_errors(parsed, "The write/read round trip"),
            engine.connect() as connection,
        ):
            started = time.perf_counter()
            transaction = connection.begin()
            try:
                connection.execute(user_config.insert().values(key=key, value=value))
                query = select(user_config.c.value).where(user_config.c.key == key)
                read = connection.execute(query).scalar()
            finally:
                transaction.rollback()
            elapsed = (time.perf_counter() - started) * 1000.0
        if read != value:
            raise StateError(f"{describe_url(parsed)} returned another value than was written")
        return elapsed
    finally:
        engine.dispose()


def local_data_directory(url: str) -> Path | None:
    """The data directory of a PostgreSQL server on this machine, when it can be seen from here.

    None for a remote server, without the privilege to read the setting (superuser or
    ``pg_read_all_settings``), or when the folder is not accessible to this user.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "postgresql" or parsed.host not in _LOCAL_HOSTS:
        return None
    engine = make_engine(parsed)
    try:
        with (
            translate_errors(parsed, "Reading the data directory", connected=False),
            engine.connect() as connection,
        ):
            visible = connection.exec_driver_sql(
                "SELECT pg_has_role('pg_read_all_settings', 'MEMBER')"
            ).scalar()
            if not visible:
                return None
            folder = connection.exec_driver_sql("SHOW data_directory").scalar()
    finally:
        engine.dispose()
    path = Path(str(folder))
    return path if path.is_dir() else None
