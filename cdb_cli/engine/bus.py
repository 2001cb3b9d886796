"""The in-process message bus, and the topic check every bus runs before publishing.

``InMemoryBus`` is the default bus when all components run in one process; it keeps the same
contract as the Redis Streams bus (see ``cdb_cli.engine.ports.bus``): per-group queues, pending
deliveries until acknowledged, reclaim by idle time and dead-lettering. Events travel through
``encode_event`` / ``decode_event`` exactly as on the wire, so an event that would not survive
Redis fails in-process too, and no consumer can mutate another group's copy.

Idempotency by ``event_id`` is the consumer's (``DedupWindow`` in ``cdb_cli.engine.consumer``,
used by the runtime's component inboxes over any bus's ``Subscription``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from cdb_cli.engine.errors import MalformedEvent, StateError
from cdb_cli.engine.events import TOPIC_EVENT_TYPES, Event, Topic, decode_event, encode_event
from cdb_cli.engine.ports.bus import Delivery, Subscription

__all__ = ["DeadLetter", "InMemoryBus", "SubscriptionBase", "check_publication"]

logger = logging.getLogger(__name__)


def check_publication(topic: Topic | str, event: Event) -> Topic:
    """Return ``topic`` as a ``Topic`` if ``event`` may be published on it.

    Raises
    ------
    MalformedEvent
        The topic is unknown or the event's type does not belong to it.
    """
    try:
        known = Topic(topic)
    except ValueError:
        raise MalformedEvent(f"Unknown topic {topic!r}") from None
    allowed = TOPIC_EVENT_TYPES[known]
    # Exact types: a subclass would be decoded as its parent on the other side.
    if type(event) not in allowed:
        names = ", ".join(t.__name__ for t in allowed)
        raise MalformedEvent(
            f"Event {type(event).__name__} cannot be published on {known.value!r}; "
            f"it carries {names}"
        )
    return known


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be decoded, set aside instead of being delivered."""

    topic: Topic
    message_id: str
    group: str
    consumer: str
    error: str
    payload: bytes


@dataclass(slots=True)
class _Pending:
    payload: bytes
    consumer: str
    delivered_ns: int


@dataclass(slots=True)
class _Group:
    topic: Topic
    name: str
    maxlen: int
    queue: deque[tuple[int, bytes]] = field(default_factory=deque)  # (sequence, payload)
    pending: dict[int, _Pending] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0

    def append(self, seq: int, payload: bytes) -> None:
        if len(self.queue) >= self.maxlen:
            # Like Redis' MAXLEN trimming: the oldest undelivered message is lost.
            self.queue.popleft()
            self.dropped += 1
            if self.dropped == 1:  # once per group: the operator learns, the log is not flooded
                logger.warning(
                    "Consumer group %s on %s is %d messages behind; dropping the oldest",
                    self.name,
                    self.topic.value,
                    self.maxlen,
                )
        self.queue.append((seq, payload))
        self.wakeup.set()


def _message_id(seq: int) -> str:
    return f"0-{seq}"  # the Redis stream id format, so ids sort and parse alike


def _sequence(message_id: str) -> int:
    return int(message_id.partition("-")[2])


class InMemoryBus:
    """The message bus of one process: asyncio only, nothing survives the process.

    Parameters
    ----------
    clock
        Monotonic nanoseconds; measures how long a delivery has been idle for ``reclaim``.
        Tests pass a settable clock instead of sleeping.
    maxlen
        How many undelivered messages a consumer group may fall behind before the oldest are
        dropped (the Redis bus trims its streams the same way).
    """

    def __init__(
        self, *, clock: Callable[[], int] = time.monotonic_ns, maxlen: int = 100_000
    ) -> None:
        self._clock = clock
        self._maxlen = maxlen
        self._groups: dict[Topic, dict[str, _Group]] = {topic: {} for topic in Topic}
        self._dead: dict[Topic, list[DeadLetter]] = {topic: [] for topic in Topic}
        self._seq = 0
        self._closed = False

    async def publish(self, topic: Topic, event: Event) -> str:
        """Append ``event`` to ``topic`` and return its message id."""
        return self._append([self._prepare(topic, event)])[0]

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        """Publish all of ``items`` or, if any is invalid, none of them."""
        prepared = [self._prepare(topic, event) for topic, event in items]
        return self._append(prepared)

    def publish_soon(self, items: Sequence[tuple[Topic, Event]]) -> Awaitable[list[str]]:
        """``publish_many`` done before this returns; the ids as an awaitable."""
        prepared = [self._prepare(topic, event) for topic, event in items]
        ids: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        ids.set_result(self._append(prepared))
        return ids

    async def subscribe(self, topic: Topic, group: str, consumer: str) -> Subscription:
        """Join ``consumer`` to ``group`` on ``topic``; a new group starts at the end."""
        self._check_open()
        known = Topic(topic)
        groups = self._groups[known]
        if group not in groups:
            groups[group] = _Group(known, group, self._maxlen)
        return _InMemorySubscription(self, known, group, consumer, groups[group])

    async def drop_group(self, topic: Topic, group: str) -> None:
        """Delete ``group`` and whatever it had pending; unknown groups are ignored."""
        self._check_open()
        dropped = self._groups[Topic(topic)].pop(group, None)
        if dropped is not None:
            dropped.wakeup.set()

    def dead_letters(self, topic: Topic) -> list[DeadLetter]:
        """Return the messages of ``topic`` that were set aside because they did not decode."""
        return list(self._dead[Topic(topic)])

    async def close(self) -> None:
        """Close the bus; waiting fetches return empty, later calls raise ``StateError``."""
        self._closed = True
        for groups in self._groups.values():
            for group in groups.values():
                group.wakeup.set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def now_ns(self) -> int:
        """Return the bus clock's current reading."""
        return self._clock()

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("The message bus is closed")

    def _prepare(self, topic: Topic, event: Event) -> tuple[Topic, bytes]:
        self._check_open()
        return check_publication(topic, event), encode_event(event)

    def _append(self, prepared: list[tuple[Topic, bytes]]) -> list[str]:
        # No await between validation and here: a batch is appended in one step, all or none.
        ids: list[str] = []
        for topic, payload in prepared:
            self._seq += 1
            for group in self._groups[topic].values():
                group.append(self._seq, payload)
            ids.append(_message_id(self._seq))
        return ids

    def _dead_letter(self, letter: DeadLetter) -> None:
        self._dead[letter.topic].append(letter)
        logger.warning(
            "Dead-lettered message %s on %s (group %s): %s",
            letter.message_id,
            letter.topic.value,
            letter.group,
            letter.error,
        )


class SubscriptionBase:
    """What every ``Subscription`` implementation shares: its identity and dead-letter count."""

    def __init__(self, topic: Topic, group: str, consumer: str) -> None:
        self._topic = topic
        self._group = group
        self._consumer = consumer
        self._dead_lettered = 0

    @property
    def topic(self) -> Topic:
        return self._topic

    @property
    def group(self) -> str:
        return self._group

    @property
    def consumer(self) -> str:
        return self._consumer

    @property
    def dead_lettered(self) -> int:
        return self._dead_lettered


class _InMemorySubscription(SubscriptionBase):
    def __init__(
        self, bus: InMemoryBus, topic: Topic, group: str, consumer: str, state: _Group
    ) -> None:
        super().__init__(topic, group, consumer)
        self._bus = bus
        self._state = state
        self._backlog_done = False
        self._backlog_cursor = 0

    async def fetch(self, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        self._bus._check_open()
        while not self._backlog_done:  # a restarted consumer first gets what it never acked
            mine = sorted(
                seq
                for seq, entry in self._state.pending.items()
                if entry.consumer == self._consumer and seq > self._backlog_cursor
            )[:max_count]
            if not mine:
                self._backlog_done = True
                break
            self._backlog_cursor = mine[-1]
            backlog = self._deliver(mine)
            if backlog:
                return backlog
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self._bus.closed:
            if self._state.queue:
                deliveries = self._take(max_count)
                if deliveries:
                    return deliveries
                continue  # everything taken was dead-lettered; look again
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._state.wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._state.wakeup.wait()
            except TimeoutError:
                break
        return []

    async def ack(self, *deliveries: Delivery) -> None:
        for delivery in deliveries:
            if delivery.topic is not self._topic:
                raise ValueError(f"Delivery of {delivery.topic.value!r} acked on {self._topic!r}")
            self._state.pending.pop(_sequence(delivery.message_id), None)

    async def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        self._bus._check_open()
        now = self._bus.now_ns()
        min_idle_ns = int(min_idle_s * 1_000_000_000)
        idle = sorted(
            seq
            for seq, entry in self._state.pending.items()
            if now - entry.delivered_ns >= min_idle_ns
        )
        return self._deliver(idle[:max_count])

    def _take(self, max_count: int) -> list[Delivery]:
        taken: list[int] = []
        while self._state.queue and len(taken) < max_count:
            seq, payload = self._state.queue.popleft()
            self._state.pending[seq] = _Pending(payload, self._consumer, 0)
            taken.append(seq)
        return self._deliver(taken)

    def _deliver(self, seqs: list[int]) -> list[Delivery]:
        now = self._bus.now_ns()
        deliveries: list[Delivery] = []
        for seq in seqs:
            entry = self._state.pending[seq]
            entry.consumer = self._consumer
            entry.delivered_ns = now
            try:
                event = decode_event(entry.payload)
            except MalformedEvent as e:
                del self._state.pending[seq]  # set aside and acknowledged
                self._dead_lettered += 1
                self._bus._dead_letter(
                    DeadLetter(
                        self._topic,
                        _message_id(seq),
                        self._group,
                        self._consumer,
                        e.message,
                        entry.payload,
                    )
                )
                continue
            deliveries.append(Delivery(self._topic, _message_id(seq), event))
        return deliveries
