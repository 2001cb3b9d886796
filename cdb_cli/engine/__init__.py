"""The engine: cdb's pure domain (events, bus, ports; later signals, risk, execution, portfolio).

It imports no adapter, network, SQL or CLI library (ruff TID251 enforces it); replay, paper and live
run this same code with different implementations of its ports, chosen by ``cdb_cli.kernel``.
"""

from __future__ import annotations

from cdb_cli.engine.errors import (
    CdbError,
    CheckFailed,
    ConfigurationError,
    DependencyError,
    MalformedEvent,
    RateLimited,
    SchemaOutOfDate,
    StateError,
    TransientError,
    VenueError,
    VenueRejected,
    VenueServerError,
)
from cdb_cli.engine.events import Event, Topic, decode_event, encode_event

__all__ = [
    "CdbError",
    "CheckFailed",
    "ConfigurationError",
    "DependencyError",
    "Event",
    "MalformedEvent",
    "RateLimited",
    "SchemaOutOfDate",
    "StateError",
    "Topic",
    "TransientError",
    "VenueError",
    "VenueRejected",
    "VenueServerError",
    "decode_event",
    "encode_event",
]
