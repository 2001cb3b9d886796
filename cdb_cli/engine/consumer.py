"""Idempotency by event id for the consumers of every bus.

Delivery is at-least-once on every bus, so the same event can arrive twice: redelivered after a
crash or a failed acknowledgement, or published twice by a producer that retried. A consumer
drops the copies with a bounded :class:`DedupWindow` of the event ids it handled (the runtime's
component inboxes, ``cdb_cli.runtime.components.inbox``, for ``InMemoryBus`` and ``RedisBus``
alike).
"""

from __future__ import annotations

__all__ = ["DedupWindow"]


class DedupWindow:
    """Remember the last ``capacity`` handled event ids, forgetting the oldest first.

    One window belongs to one consumer group in one process; share it between the consumers of a
    group that run in the same process.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ids: dict[str, None] = {}  # insertion-ordered: the first key is the oldest

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        """Record ``event_id`` as handled."""
        if event_id in self._ids:
            return
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]
