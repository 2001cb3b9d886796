"""The message bus port: publish typed events to topics, consume them through consumer groups.

Components of the trading loop talk only through this port, so they run the same in one process
(``InMemoryBus``) and as separate processes over Redis Streams (``RedisBus``). Both honour one
contract (``tests/contract/test_bus_contract.py``):

- ``publish`` accepts only the event types of its topic (``TOPIC_EVENT_TYPES``), else it raises
  ``MalformedEvent``; ``publish_many`` writes all of its events or none.
- Every consumer group of a topic receives every event published after the group was created
  (fan-out across groups); the consumers of one group compete, each event goes to one of them.
- Delivery is at-least-once: a delivered event stays pending until it is acknowledged. A consumer
  that died (or whose handler failed) leaves it pending; ``reclaim`` hands pending events idle
  longer than ``min_idle_s`` to another consumer of the same group. A consumer that restarts
  under the same name first gets back the events it had been given and not acknowledged.
- Within one topic a consumer receives events in publish order (redeliveries excepted).
- A message that cannot be decoded never reaches a handler: it is counted, logged once, moved to
  the topic's dead-letter stream and acknowledged, and the other messages flow on.

Consumers are idempotent by ``event_id``: the runtime's component inboxes fetch, drop duplicates
(``cdb_cli.engine.consumer.DedupWindow``), hand over and acknowledge on top of any
``Subscription``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from cdb_cli.engine.events import Event, Topic

__all__ = ["Delivery", "Handler", "MessageBus", "Subscription"]

Handler = Callable[[Event], Awaitable[None]]
"""An event handler: returns once the event is handled; raising leaves the event pending."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event handed to one consumer; acknowledge it through the subscription that fetched it.

    ``message_id`` is the bus's id of this message within its topic (a Redis stream id such as
    ``1718000000000-0``); publishing the same event twice gives two message ids, one event id.
    """

    topic: Topic
    message_id: str
    event: Event


class Subscription(Protocol):
    """One consumer's membership in one consumer group of one topic."""

    @property
    def topic(self) -> Topic:
        """The topic this subscription reads."""
        ...

    @property
    def group(self) -> str:
        """The consumer group; every group receives every event."""
        ...

    @property
    def consumer(self) -> str:
        """This consumer's name, unique within its group (e.g. ``risk@host-1234``)."""
        ...

    @property
    def dead_lettered(self) -> int:
        """How many undecodable messages this subscription moved to the dead-letter stream."""
        ...

    async def fetch(self, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        """Return up to ``max_count`` events for this consumer, waiting up to ``timeout_s``.

        Events this consumer was given before and never acknowledged (it restarted) come first,
        then new events in publish order. An empty list means nothing arrived in time.
        """
        ...

    async def ack(self, *deliveries: Delivery) -> None:
        """Acknowledge handled deliveries so that they are never delivered again."""
        ...

    async def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        """Take over this group's pending deliveries idle for at least ``min_idle_s`` seconds.

        They come from consumers that died or whose handler failed (including this one).
        """
        ...


class MessageBus(Protocol):
    """Publish events to topics and subscribe consumer groups to them.

    Use it as an async context manager, or call ``close()`` when done.
    """

    async def publish(self, topic: Topic, event: Event) -> str:
        """Append ``event`` to ``topic`` and return its message id (unique within the topic).

        Raises
        ------
        MalformedEvent
            The event's type does not belong to the topic.
        DependencyError
            The bus's server cannot be reached.
        """
        ...

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        """Publish several events (possibly to several topics) atomically: all or none.

        Every pair is validated before anything is written, so one bad event publishes nothing.
        """
        ...

    def publish_soon(self, items: Sequence[tuple[Topic, Event]]) -> Awaitable[list[str]]:
        """``publish_many``, but written before this call returns (from code that cannot await,
        in the middle of a decision); await the result for the message ids and any error.

        Validation errors (``MalformedEvent``) are raised at once. Where no connection is open
        yet, the write happens when the result is awaited.
        """
        ...

    async def subscribe(self, topic: Topic, group: str, consumer: str) -> Subscription:
        """Join ``consumer`` to ``group`` on ``topic``, creating the group if it is new.

        A new group starts at the end of the topic: it receives events published from now on.
        """
        ...

    async def drop_group(self, topic: Topic, group: str) -> None:
        """Delete ``group`` on ``topic`` with what it had pending (a finished ``cdb events
        tail``, a retired component); a group that does not exist is not an error."""
        ...

    async def close(self) -> None:
        """Release the bus's resources; pending deliveries stay pending (on a server)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
