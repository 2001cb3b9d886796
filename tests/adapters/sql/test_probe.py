"""The systemcheck probes on both engines: they answer, and they leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from cdb_cli.adapters.sql import upgrade
from cdb_cli.adapters.sql.probe import database_exists, local_data_directory, ping, round_trip
from cdb_cli.engine.errors import DependencyError


def _user_config_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT count(*) FROM user_config").scalar_one())
    finally:
        engine.dispose()


def test_probes_answer_and_leave_no_row(database_url: str) -> None:
    upgrade(database_url)
    where, elapsed = ping(database_url)
    assert elapsed >= 0
    assert where.startswith(("SQLite at", "PostgreSQL "))
    assert round_trip(database_url) >= 0
    assert _user_config_rows(database_url) == 0


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    assert database_exists(url) is False
    assert not (tmp_path / "absent.db").exists()
    assert database_exists("postgresql://u@127.0.0.1:1/x") is True  # servers are asked by ping


def test_ping_of_a_dead_server_is_a_dependency_error() -> None:
    with pytest.raises(DependencyError, match=r"127\.0\.0\.1:1"):
        ping("postgresql://u:Hunter2Secret@127.0.0.1:1/x")


def test_data_directory_is_none_for_sqlite_and_remote_servers(tmp_path: Path) -> None:
    assert local_data_directory(f"sqlite:///{tmp_path / 'x.db'}") is None
    assert local_data_directory("postgresql://u@db.example.invalid:5432/x") is None


@pytest.mark.infra
def test_data_directory_of_the_local_server(postgres_database: str) -> None:
    folder = local_data_directory(postgres_database)
    assert folder is None or folder.is_dir()  # None when the role may not read the setting
