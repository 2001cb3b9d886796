"""The clock port: the engine reads time only through it, so a replay is deterministic.

``TestClock`` is set by its driver (the replay loop, a test); the live clock that reads the wall
clock belongs to the runtime, outside the engine.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Clock", "TestClock"]


class Clock(Protocol):
    """Current time as int nanoseconds since the epoch (UTC)."""

    def timestamp_ns(self) -> int: ...


class TestClock:
    """A clock that only moves when told to; never goes backwards."""

    __test__ = False  # not a pytest test class
    __slots__ = ("now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self.now_ns = start_ns
        """The current time; a replay driver that has checked its data's order may assign it."""

    def timestamp_ns(self) -> int:
        return self.now_ns

    def set_time(self, ts_ns: int) -> None:
        """Move to ``ts_ns``; an earlier time is refused with ``ValueError``."""
        if ts_ns < self.now_ns:
            raise ValueError(f"TestClock cannot go back from {self.now_ns} to {ts_ns}")
        self.now_ns = ts_ns
