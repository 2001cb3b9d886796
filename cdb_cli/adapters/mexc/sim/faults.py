"""Fault injection for the simulator: set by CLI flags, changed at runtime by tests or over HTTP.

Counters (``http_5xx`` …) apply to that many next REST requests and count down; rates and delays
hold until changed. ``drop_ws`` / ``stall_ws`` act on the WebSocket connections open right now.
``accept_then_5xx`` counts order placements only: the order is booked (and pushed on the user
stream), but the HTTP answer is a 503, so the client cannot tell it was accepted.
``clock_offset_ms`` shifts the simulator's server clock (``/api/v3/time`` and the signature's
timestamp check) ahead of (positive) or behind (negative) wall time. ``hide_client_ids`` leaves the
client order id out of private pushes and ``myTrades`` rows (real captures show it null there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["Faults"]

_SIGNED = frozenset({"clock_offset_ms"})  # integers that may be negative


@dataclass
class Faults:
    """What the simulator should do wrong next. All zero: a well-behaved exchange."""

    http_5xx: int = 0  # answer the next N REST requests with 503 {"code":503,...}
    http_429: int = 0  # answer the next N REST requests with 429 and Retry-After
    retry_after: float = 1.0  # seconds in Retry-After
    http_html: int = 0  # answer the next N REST requests with a proxy's HTML 502 page
    http_empty: int = 0  # answer the next N REST requests with 200 and an empty body
    delay: float = 0.0  # seconds added before every REST answer
    ws_duplicate_rate: float = 0.0  # probability that a data frame is sent twice
    ws_garbage_rate: float = 0.0  # probability of an extra broken binary frame and non-JSON text
    ws_stalled: bool = False  # keep sockets open but send nothing (no data, no PONG)
    accept_then_5xx: int = 0  # book the next N new orders, then answer 503 (outcome unknown)
    clock_offset_ms: int = 0  # server clock minus wall time, ms; may be negative
    hide_client_ids: bool = False  # private pushes and myTrades without the client order id

    def take(self, name: str) -> bool:
        """Consume one unit of counter ``name``; True when the fault fires for this request."""
        value = getattr(self, name)
        if value > 0:
            setattr(self, name, value - 1)
            return True
        return False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``{"http_5xx": 2, …}``; ValueError on an unknown name or a wrong type."""
        known = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(known)}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"fault {name!r} takes true/false")
            elif name in _SIGNED:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"fault {name!r} takes an integer")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"fault {name!r} takes a non-negative integer")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"fault {name!r} takes a non-negative number")
            setattr(self, name, type(current)(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
