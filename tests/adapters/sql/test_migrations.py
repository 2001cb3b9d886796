"""Alembic migrations on a fresh SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cdb_cli.adapters.sql.migrations import (
    alembic_config,
    create_if_new,
    ensure_schema_current,
    schema_status,
    upgrade,
)
from cdb_cli.adapters.sql.models import metadata
from cdb_cli.engine.errors import SchemaOutOfDate


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_builds_exactly_the_models_schema(database_url: str) -> None:
    upgrade(database_url)
    assert _diff(database_url) == []
    assert set(metadata.tables) <= _tables(database_url)


def test_schema_status_before_and_after_upgrade(database_url: str) -> None:
    before = schema_status(database_url)
    assert before.current is None
    assert not before.up_to_date
    assert before.pending[-1] == before.head
    assert before.pending[0] == "0001"

    upgrade(database_url)
    after = schema_status(database_url)
    assert after.current == after.head == before.head
    assert after.up_to_date
    assert after.pending == []
    ensure_schema_current(database_url)  # does not raise


def test_downgrade_to_base_then_upgrade_again(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
    finally:
        engine.dispose()
    assert _tables(database_url) == {"alembic_version"}
    assert schema_status(database_url).current is None

    upgrade(database_url)
    assert _diff(database_url) == []


def test_ensure_schema_current_on_empty_database_says_run_upgrade(database_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match=r"run `cdb db upgrade`"):
        ensure_schema_current(database_url)


def test_ensure_schema_current_on_unknown_revision_says_upgrade_cdb(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    engine.dispose()

    status = schema_status(sqlite_url)
    assert (status.current, status.up_to_date, status.pending) == ("9999_future", False, [])
    with pytest.raises(SchemaOutOfDate, match="does not know") as raised:
        ensure_schema_current(sqlite_url)
    assert "\n" not in str(raised.value)


def test_sqlite_file_uses_wal_and_its_folder_is_created(sqlite_url: str) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    assert not path.parent.exists()
    upgrade(sqlite_url)
    with sqlite3.connect(path) as connection:  # a plain client sees the persistent mode
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    connection.close()
    assert mode == "wal"


def test_create_if_new_builds_only_a_database_without_tables(database_url: str) -> None:
    assert create_if_new(database_url) is True
    assert schema_status(database_url).up_to_date
    assert create_if_new(database_url) is False
    assert _diff(database_url) == []


def test_create_if_new_leaves_a_foreign_database_alone(sqlite_url: str) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (body TEXT)")
    engine.dispose()

    assert create_if_new(sqlite_url) is False
    assert _tables(sqlite_url) == {"notes"}
    with pytest.raises(SchemaOutOfDate):
        ensure_schema_current(sqlite_url)
