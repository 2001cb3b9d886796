"""The wall clock: the implementation of the engine's ``Clock`` port for paper and live runs
(``cdb_cli.kernel.clock_for`` hands it out)."""

from __future__ import annotations

import time

__all__ = ["LiveClock"]


class LiveClock:
    """Nanoseconds since the epoch (UTC), from the system clock."""

    def timestamp_ns(self) -> int:
        return time.time_ns()
