"""Failures of the SQL store reach the operator as one-line cdb errors, never with the password."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from cdb_cli.adapters.sql import SqlStore, create_if_new, schema_status, upgrade
from cdb_cli.engine.errors import (
    CdbError,
    ConfigurationError,
    DependencyError,
    SchemaOutOfDate,
    StateError,
)
from cdb_cli.engine.events import Side, TradeTick

PASSWORD = "Hunter2-Secret"
UNREACHABLE = f"postgresql+psycopg://cdb:{PASSWORD}@127.0.0.1:1/cdb"


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


@pytest.mark.parametrize(
    "action",
    [SqlStore, upgrade, schema_status, create_if_new],
    ids=["SqlStore", "upgrade", "schema_status", "create_if_new"],
)
def test_unreachable_postgres_is_one_line_dependency_error_without_password(
    action: Callable[[str], object],
) -> None:
    with pytest.raises(DependencyError) as raised:
        action(UNREACHABLE)
    message = str(raised.value)
    assert message.startswith("Cannot connect to PostgreSQL at 127.0.0.1:1/cdb")
    assert "refused" in message.lower()
    assert "\n" not in message
    for error in _chain(raised.value):
        assert PASSWORD not in str(error)
        assert PASSWORD not in repr(error)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://cdb:{PASSWORD}@127.0.0.1:notaport/cdb",
        f"postgresql//cdb:{PASSWORD}@127.0.0.1/cdb",
        f"mysql://cdb:{PASSWORD}@127.0.0.1/cdb",
    ],
    ids=["bad-port", "no-scheme", "other-dialect"],
)
def test_bad_url_is_configuration_error_without_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        SqlStore(url)
    assert "\n" not in str(raised.value)
    for error in _chain(raised.value):
        assert PASSWORD not in repr(error)


def test_unmigrated_file_is_refused_until_upgrade(sqlite_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match=r"cdb db upgrade"):
        SqlStore(sqlite_url)
    upgrade(sqlite_url)
    SqlStore(sqlite_url).close()


def test_missing_tables_found_late_say_run_upgrade(database_url: str) -> None:
    store = SqlStore(database_url, check_schema=False)  # as a tool inspecting old files would
    try:
        with pytest.raises(SchemaOutOfDate, match=r"run `cdb db upgrade`") as raised:
            store.positions()
        assert "\n" not in str(raised.value)
    finally:
        store.close()


def test_money_the_column_would_round_is_refused_and_batch_rolled_back(
    database_url: str,
) -> None:
    upgrade(database_url)
    store = SqlStore(database_url)
    good = TradeTick(
        symbol="BTCUSDT",
        ts_event=1,
        source="test",
        price=Decimal("1"),
        quantity=Decimal("1"),
        aggressor=Side.BUY,
    )
    too_precise = good.model_copy(
        update={"event_id": "x", "price": Decimal("0.0000000000000000001")}
    )
    try:
        for batch in ([good, too_precise], [good, too_precise] * 100):  # INSERT and COPY paths
            with pytest.raises(StateError, match=r"NUMERIC\(38, 18\)") as raised:
                store.append_events(batch)
            assert "\n" not in str(raised.value)
        assert store.events(TradeTick) == []
        assert store.append_events([good]) == 1  # the store is still usable
    finally:
        store.close()


def test_every_store_error_is_a_cdb_error() -> None:
    for kind in (DependencyError, ConfigurationError, SchemaOutOfDate, StateError):
        assert issubclass(kind, CdbError)
