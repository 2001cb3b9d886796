"""The kernel's schema door: status, upgrade and the database's name for the operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.kernel.database import (
    UnknownRevision,
    describe_database,
    schema_status,
    upgrade_schema,
)


def test_upgrade_creates_a_new_sqlite_database_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'cdb.db'}"
    before = schema_status(url)
    assert before.current is None
    assert not before.up_to_date
    assert before.pending

    assert upgrade_schema(url) == (None, before.head)

    after = schema_status(url)
    assert after.up_to_date
    assert after.pending == []
    assert upgrade_schema(url) == (before.head, before.head)  # nothing left to do


def test_an_unknown_revision_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cdb.db'}"

    with pytest.raises(UnknownRevision, match="'nope' is not a revision of cdb's schema"):
        upgrade_schema(url, "nope")

    assert schema_status(url).current is None


def test_the_database_is_named_without_credentials() -> None:
    assert describe_database("sqlite:///:memory:") == "SQLite in memory"
    named = describe_database("postgresql://cdb:s3cret@db.example:6543/trading")
    assert named == "PostgreSQL at db.example:6543/trading"
    assert "s3cret" not in named
    with pytest.raises(ConfigurationError, match="not supported"):
        describe_database("mysql://db.example/cdb")
