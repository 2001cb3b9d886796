"""The SQLite database cdb creates, with its WAL and shared-memory files, is for its owner only
(issue 27): 0600 under the usual umask 022, while a file the operator made keeps its mode."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cdb_cli.engine.events import Side, TradeTick
from cdb_cli.kernel import open_store
from cdb_cli.settings import Settings


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _write_a_trade(path: Path) -> dict[str, str]:
    """Open (creating), write, and return the mode of each of the database's files while open."""
    store = open_store(Settings(database_url=f"sqlite:///{path}"), create_if_new=True)
    try:
        store.append_events(
            [
                TradeTick(
                    symbol="BTCUSDT",
                    ts_event=1_700_000_000_000_000_000,
                    source="test",
                    price=Decimal("100"),
                    quantity=Decimal("1"),
                    aggressor=Side.BUY,
                )
            ]
        )
        # while the store is open its WAL and shared-memory files exist
        files = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        return {f.name: oct(f.stat().st_mode & 0o777) for f in files if f.exists()}
    finally:
        store.close()


def test_a_new_database_and_its_wal_are_0600(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "data" / "cdb.db"
    assert _write_a_trade(path) == {
        "cdb.db": "0o600",
        "cdb.db-wal": "0o600",
        "cdb.db-shm": "0o600",
    }


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "cdb.db"
    _write_a_trade(path)
    path.chmod(0o640)  # e.g. readable by a backup group, on purpose
    _write_a_trade(path)
    assert path.stat().st_mode & 0o777 == 0o640
