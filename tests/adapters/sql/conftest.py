"""Databases for the SQL adapter tests: a SQLite file in tmp_path, a throw-away PostgreSQL one."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a not yet existing SQLite file (its folder does not exist either)."""
    return f"sqlite:///{tmp_path / 'data' / 'cdb.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.infra)])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """An empty database on each engine: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("postgres_database")
    return url
