"""Databases and folders for the backup tests: seeded SQLite files and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from services_testkit import new_database_name
from sqlalchemy import create_engine, make_url

from cdb_cli.adapters.sql import upgrade


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def seeded_sqlite(tmp_path: Path, seed_store: Callable[..., int]) -> str:
    """A migrated SQLite file with real rows in every kind of table."""
    url = f"sqlite:///{tmp_path / 'live' / 'cdb.db'}"
    upgrade(url)
    seed_store(url)
    return url


@pytest.fixture
def new_postgres_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """A factory of empty throw-away databases on the real server; all dropped afterwards."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def create() -> str:
        name = new_database_name()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        names.append(name)
        return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def seeded_postgres(
    new_postgres_database: Callable[[], str],
    seed_store: Callable[..., int],
    pg_client_tools: None,
) -> str:
    """A migrated database on the real PostgreSQL with real rows in every kind of table."""
    url = new_postgres_database()
    upgrade(url)
    seed_store(url)
    return url


def write_script(path: Path, text: str) -> Path:
    """An executable shell script (stand-in for a system program such as an old pg_dump)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + text, encoding="utf-8")
    path.chmod(0o755)
    return path
