"""The wall clock: the live loop's implementation of the engine's ``Clock`` port."""

from __future__ import annotations

import time

__all__ = ["LiveClock"]


class LiveClock:
    """Nanoseconds since the epoch (UTC), from the system clock."""

    def timestamp_ns(self) -> int:
        return time.time_ns()
