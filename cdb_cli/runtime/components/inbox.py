"""A component's inbox: one subscription of the bus, pumped into a local queue.

An :class:`Inbox` pumps one subscription into a local queue in a background task (so a component
can wait on several topics at once; a component whose only work is one topic handles it right
there, in the pump's task), reads again once the component took what it got (or after
``READ_AGAIN_S``: the next read's write to Redis does not delay the handling of this batch, and a
slow component does not pile up an unbounded queue) and acknowledges a delivery only after the
component marked it handled and the batch writer stored what came of it (every flush, off the hot
path): a crash leaves what was not handled pending in the consumer group, and a restart under
the same consumer name gets it back first. Duplicates (at-least-once) are dropped by event id
with a ``DedupWindow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from cdb_cli.engine.consumer import DedupWindow
from cdb_cli.engine.errors import CdbError
from cdb_cli.runtime.waits import Backoff, wait_event
from cdb_cli.runtime.watch import Dependency

if TYPE_CHECKING:
    from cdb_cli.engine.ports.bus import Delivery, Subscription
    from cdb_cli.kernel.system import Metrics

__all__ = ["READ_AGAIN_S", "READ_COUNT", "Inbox"]

READ_AGAIN_S = 0.05
"""How long an inbox waits for the component to take a batch before it reads the next one."""

READ_COUNT = 200
"""The most entries one read takes."""


class Inbox:
    """One subscription pumped into a local queue; see the module docstring.

    ``pace_s``: after a read that found the stream caught up (fewer than ``READ_COUNT`` entries),
    wait that long before the next, so a component off the decision path takes what came in
    batches rather than being woken (and taking a CPU from the decision path) by every entry.

    ``handle``: the pump itself awaits it with what it queued, instead of waking the component's
    step: no hand-off between tasks (a turn of the event loop, 60-100 µs of CPU in a cold process
    on the 2-vCPU VM) for a component whose only work is this topic.
    """

    def __init__(
        self,
        subscription: Subscription,
        wake: asyncio.Event,
        pace_s: float = 0.0,
        handle: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.subscription = subscription
        self.pace_s = pace_s
        self.handle = handle
        self.queue: deque[Delivery] = deque()
        self.arrival_ns: deque[int] = deque()
        self._wake = wake
        self._taken = asyncio.Event()
        self._done: list[Delivery] = []
        self._dedup = DedupWindow()
        # event id → message id of what is queued or being handled (or held), not yet done
        self._pending: dict[str, str] = {}
        self.bus_health = Dependency("redis", "Reading the bus", metrics)
        """Down while reading the bus fails."""

    def done(self, delivery: Delivery) -> None:
        """Mark a delivery handled: acknowledged once the batch written next (which holds what
        came of it) is stored."""
        self._done.append(delivery)
        self._dedup.add(delivery.event.event_id)
        self._pending.pop(delivery.event.event_id, None)

    def pop(self) -> tuple[Delivery, int]:
        item = self.queue.popleft(), self.arrival_ns.popleft()
        if not self.queue:
            self._taken.set()
        return item

    def take_done(self) -> list[Delivery]:
        """What was marked handled so far: the writer takes it together with the batch, and
        acknowledges it once that batch is stored (a delivery marked handled during the write
        has its outcome in the next batch, so it waits for that one)."""
        done, self._done = self._done, []
        return done

    def give_back(self, done: list[Delivery]) -> None:
        """Deliveries taken with a batch the store did not take: acknowledged with a later one."""
        self._done[:0] = done

    async def ack(self, done: list[Delivery] | None = None) -> None:
        """Acknowledge ``done`` (by default, everything handled so far); the writer does it
        every flush, off the hot path."""
        if done is None:
            done = self.take_done()
        if done:
            await self.subscription.ack(*done)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch until ``stop``; hand new deliveries to the queue (and to ``handle``, if set)
        and wake the component. A bus that fails (Redis down) is waited out: one line, reads
        again with a growing pause (``bus_health`` down meanwhile), one line when it answers."""
        reclaimed = False
        pause = Backoff()  # 0.5 s, twice as long each time up to 5 s, with jitter
        while not stop.is_set():
            try:
                if not reclaimed:  # what a dead consumer of this group left pending
                    deliveries = await self.subscription.reclaim(60.0)
                    reclaimed = True
                else:
                    deliveries = await self.subscription.fetch(READ_COUNT, 0.25)
                duplicates = self._queue(deliveries)
                if duplicates:
                    await self.subscription.ack(*duplicates)
            except CdbError as e:
                self.bus_health.failed(e)
                await wait_event(stop, pause.next())
                continue
            self.bus_health.answered()
            pause.reset()
            if self.queue and self.handle is not None:
                await self.handle()
            if self.queue:
                self._wake.set()
                self._taken.clear()
                await wait_event(self._taken, READ_AGAIN_S)
            if self.pace_s and len(deliveries) < READ_COUNT and not stop.is_set():
                # Paced and caught up: let the stream fill for a while instead of being woken by
                # every entry (behind, it reads on at once).
                await wait_event(stop, self.pace_s)

    def _queue(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Queue what is new; return the duplicates (to acknowledge at once)."""
        now = time.time_ns()
        duplicates = []
        for delivery in deliveries:
            event_id = delivery.event.event_id
            if event_id in self._dedup:
                duplicates.append(delivery)  # handled before: acknowledge it again
                continue
            held = self._pending.get(event_id)
            if held is not None:
                if held != delivery.message_id:
                    # A copy under another message id (a publish retried after a lost
                    # reply): the entry held stands for it, and its handling will not
                    # acknowledge this one.
                    duplicates.append(delivery)
                continue  # the same entry, read again while held: acknowledged when done
            self._pending[event_id] = delivery.message_id
            self.queue.append(delivery)
            self.arrival_ns.append(now)
        return duplicates

    async def close(self) -> None:
        with contextlib.suppress(CdbError):
            await self.ack()
