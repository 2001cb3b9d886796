"""The tables mirror the records they hold: rows convert generically, money is never a float."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import Float, Numeric

from cdb_cli.adapters.sql.codec import EVENT_TABLES, RECORD_TABLES
from cdb_cli.adapters.sql.models import metadata, table
from cdb_cli.adapters.sql.types import Money
from cdb_cli.engine.events import EVENT_TYPES

TABLES: dict[type[BaseModel], str] = dict(RECORD_TABLES)
for _kind, _name in EVENT_TABLES.items():
    TABLES[_kind] = _name


def test_every_event_type_has_a_table() -> None:
    assert set(EVENT_TABLES) == set(EVENT_TYPES.values())


@pytest.mark.parametrize("kind", list(TABLES), ids=lambda kind: kind.__name__)
def test_table_columns_are_the_model_fields(kind: type[BaseModel]) -> None:
    columns = set(table(TABLES[kind]).columns.keys()) - {"id"}
    assert columns == set(kind.model_fields)


def test_user_config_and_all_tables_are_in_the_schema() -> None:
    assert set(metadata.tables) == {*TABLES.values(), "user_config"}


def test_money_columns_are_exact_and_floats_are_only_analytics() -> None:
    floats = []
    for name, target in metadata.tables.items():
        for column in target.columns:
            if isinstance(column.type, Money):
                assert isinstance(column.type.impl_instance, Numeric)
            elif isinstance(column.type, Float | Numeric):
                floats.append(f"{name}.{column.name}")
    # A 0..1 score, and the close and volume a strategy trace saw (the strategy's float
    # domain): none of them is money; the bar itself is stored exactly in market_bars.
    assert sorted(floats) == [
        "strategy_traces.close",
        "strategy_traces.volume",
        "trading_signals.strength",
    ]
