"""The consumer loop of every bus: fetch, drop duplicates, handle, acknowledge.

Delivery is at-least-once on every bus, so the same event can arrive twice: redelivered after a
crash or a failed acknowledgement, or published twice by a producer that retried. ``Consumer``
makes handlers idempotent by ``event_id`` with a bounded ``DedupWindow`` and is the one place
that implements it, for ``InMemoryBus`` and ``RedisBus`` alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from cdb_cli.engine.ports.bus import Delivery, Handler, Subscription

__all__ = ["Consumer", "DedupWindow"]

logger = logging.getLogger(__name__)


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


class Consumer:
    """Feed one subscription's events to a handler: at-least-once, idempotent by event id.

    Each round reclaims deliveries left idle for ``reclaim_idle_s`` (every ``reclaim_every``
    rounds), fetches new ones, skips ids the ``DedupWindow`` has seen (acknowledging them),
    calls the handler and acknowledges what it handled. A handler that raises is logged and its
    event stays pending, so it comes back by reclaim. Bus errors (``DependencyError``) propagate
    to the caller, which owns the restart policy.
    """

    def __init__(
        self,
        subscription: Subscription,
        handler: Handler,
        *,
        dedup: DedupWindow | None = None,
        max_count: int = 100,
        timeout_s: float = 1.0,
        reclaim_idle_s: float = 30.0,
        reclaim_every: int = 10,
    ) -> None:
        self.subscription = subscription
        self.handler = handler
        self.dedup = DedupWindow() if dedup is None else dedup
        self.max_count = max_count
        self.timeout_s = timeout_s
        self.reclaim_idle_s = reclaim_idle_s
        self.reclaim_every = max(1, reclaim_every)
        self.handled = 0
        self.duplicates = 0
        self.failures = 0
        self._rounds = 0

    async def poll(self) -> int:
        """Run one round (reclaim when due, then fetch) and return how many events were handled."""
        handled = 0
        if self._rounds % self.reclaim_every == 0:
            stale = await self.subscription.reclaim(self.reclaim_idle_s, self.max_count)
            handled += await self.process(stale)
        self._rounds += 1
        fresh = await self.subscription.fetch(self.max_count, self.timeout_s)
        return handled + await self.process(fresh)

    async def process(self, deliveries: Sequence[Delivery]) -> int:
        """Handle deliveries in order; acknowledge the handled and the duplicate ones."""
        done: list[Delivery] = []
        handled = 0
        try:
            for delivery in deliveries:
                event = delivery.event
                if event.event_id in self.dedup:
                    self.duplicates += 1
                    done.append(delivery)
                    continue
                try:
                    await self.handler(event)
                except Exception:
                    self.failures += 1
                    logger.exception(
                        "Handler failed on %s %s (message %s, group %s); it stays pending",
                        event.TYPE,
                        event.event_id,
                        delivery.message_id,
                        self.subscription.group,
                    )
                    continue
                self.dedup.add(event.event_id)
                handled += 1
                done.append(delivery)
        finally:
            # Acknowledge what was handled even when cancelled mid-batch: fewer redeliveries.
            if done:
                await self.subscription.ack(*done)
        self.handled += handled
        return handled

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; returns within about ``timeout_s`` of it being set."""
        while not stop.is_set():
            await self.poll()
