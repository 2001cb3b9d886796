"""Rows to and from events and records: which table holds what, and the JSON columns.

Columns are named after fields, so conversion is generic: enums become their values, nested or
mapping fields become JSON text (Decimal as string), and reading validates the row back into the
frozen model, so a row that no longer fits its type fails loudly instead of passing bad data on.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from cdb_cli.engine.events import (
    Bar,
    Event,
    ExecutionReport,
    HealthReport,
    OrderApproved,
    QuoteTick,
    RiskDecision,
    StrategyTrace,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.records import (
    AuditRecord,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    PositionRecord,
)

__all__ = [
    "EVENT_TABLES",
    "JSON_FIELDS",
    "RECORD_TABLES",
    "from_row",
    "table_name_for",
    "to_row",
]

M = TypeVar("M", bound=BaseModel)

EVENT_TABLES: Final[dict[type[Event], str]] = {
    TradeTick: "market_trades",
    QuoteTick: "market_quotes",
    Bar: "market_bars",
    TradingSignal: "trading_signals",
    RiskDecision: "risk_decisions",
    OrderApproved: "order_approvals",
    ExecutionReport: "executions",
    HealthReport: "health_reports",
    StrategyTrace: "strategy_traces",
}
"""The table of each event type; every type in ``EVENT_TYPES`` has one."""

RECORD_TABLES: Final[dict[type[BaseModel], str]] = {
    OrderRecord: "orders",
    FillRecord: "fills",
    PositionRecord: "positions",
    EquitySnapshot: "equity_snapshots",
    AuditRecord: "audits",
}

JSON_FIELDS: Final[dict[type[BaseModel], frozenset[str]]] = {
    TradingSignal: frozenset({"indicators"}),
    RiskDecision: frozenset({"checks", "state"}),
    StrategyTrace: frozenset({"conditions", "values"}),
    AuditRecord: frozenset({"detail"}),
}
"""Fields stored as JSON text; ``RiskDecision.checks`` is the full rule trace."""


def table_name_for(kind: type[Event]) -> str:
    """Return the table of an event type; ``ValueError`` if none stores it."""
    try:
        return EVENT_TABLES[kind]
    except KeyError:
        raise ValueError(f"No table stores {kind.__name__} events") from None


def to_row(model: BaseModel) -> dict[str, Any]:
    """Return the column values for one event or record."""
    json_fields = JSON_FIELDS.get(type(model))
    # __dict__ holds exactly the fields (extra="forbid"); iterating the model is slower.
    row = {
        name: value.value if isinstance(value, Enum) else value
        for name, value in model.__dict__.items()
    }
    if json_fields:
        dumped = model.model_dump(mode="json", include=set(json_fields))
        for name in json_fields:
            row[name] = json.dumps(dumped[name], separators=(",", ":"), sort_keys=True)
    return row


def from_row(kind: type[M], row: Any) -> M:
    """Validate one result row (a mapping of column to value) back into ``kind``."""
    values = dict(row)
    values.pop("id", None)
    for name in JSON_FIELDS.get(kind, ()):
        values[name] = json.loads(values[name])
    return kind.model_validate(values)
