"""The message bus over Redis Streams, for components running as separate processes or hosts.

Layout: one stream per topic, ``<prefix>:<topic>``, whose entries carry one field ``event`` with the
``encode_event`` envelope; undecodable entries are moved to ``<prefix>:dead:<topic>``. Consumer
groups are Redis consumer groups created at ``$`` (new groups see new events only), reads are
``XREADGROUP … BLOCK``, acknowledgements ``XACK`` and reclaiming ``XAUTOCLAIM``. Streams are trimmed
to about ``maxlen`` entries on every ``XADD``.

Publishing, reading and acknowledging go over lean connections (:mod:`.redis_wire`: the hot
path); group management, reclaiming and dead letters over redis-py.

Redis errors never leave this module: they become ``DependencyError`` (unreachable, one line,
no password), ``TransientError`` (timeouts) or ``ConfigurationError`` (credentials refused).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.typing import EncodableT, FieldT

from cdb_cli.adapters.redis_wire import WireConnection
from cdb_cli.engine.bus import SubscriptionBase, check_publication
from cdb_cli.engine.errors import (
    ConfigurationError,
    DependencyError,
    MalformedEvent,
    TransientError,
)
from cdb_cli.engine.events import Event, Topic, decode_event, encode_event
from cdb_cli.engine.ports.bus import Delivery, Subscription
from cdb_cli.redaction import describe_url, redact, url_secrets

__all__ = ["RedisBus"]

logger = logging.getLogger(__name__)

EVENT_FIELD = b"event"
DEAD_LETTER_MAXLEN = 10_000
# redis-py retries a failed command 10 times by default; on a dead network that holds a publish for
# minutes. Two quick retries ride out a dropped connection and then let the caller decide.
COMMAND_RETRIES = 2


def _reason(error: BaseException) -> str:
    """Name the operating-system cause of a connection error, e.g. ``Connection refused``."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TimeoutError | redis_errors.TimeoutError):
            return "timed out"
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno) if seen.errno > 0 else str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class RedisBus:
    """The ``MessageBus`` on Redis Streams (Redis ≥ 6.2).

    Parameters
    ----------
    url
        ``redis://[:password@]host:port/db``, ``rediss://…`` or ``unix://…``.
    prefix
        Prefix of every key this bus touches, so several deployments can share one server.
    maxlen
        Approximate number of entries kept per topic stream; older ones are trimmed.
    connect_timeout_s, command_timeout_s
        Socket timeouts; a blocking ``fetch`` waits at most ``command_timeout_s - 1`` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cdb",
        maxlen: int = 100_000,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 10.0,
    ) -> None:
        self.prefix = prefix
        self.maxlen = maxlen
        self.where = describe_url(url)
        self._secrets = url_secrets(url)
        self.max_block_s = max(0.0, command_timeout_s - 1.0)
        self._url = url
        self._timeouts = {
            "connect_timeout_s": connect_timeout_s,
            "command_timeout_s": command_timeout_s,
            "retries": COMMAND_RETRIES,
        }
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=command_timeout_s,
            decode_responses=False,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), COMMAND_RETRIES),
        )
        self._wires: list[WireConnection] = []
        self._wire = self.wire()  # publications and acknowledgements

    def wire(self) -> WireConnection:
        """A new lean connection to the server (closed with the bus): a subscription blocks on
        its own."""
        name = "".join(c if c.isprintable() and not c.isspace() else "_" for c in self.prefix)
        wire = WireConnection(self._url, name=f"{name}:bus", **self._timeouts)  # type: ignore[arg-type]
        self._wires.append(wire)
        return wire

    def stream_key(self, topic: Topic) -> str:
        """Return the stream that carries ``topic``."""
        return f"{self.prefix}:{Topic(topic).value}"

    def dead_letter_key(self, topic: Topic) -> str:
        """Return the stream that holds ``topic``'s undecodable messages."""
        return f"{self.prefix}:dead:{Topic(topic).value}"

    async def publish(self, topic: Topic, event: Event) -> str:
        """Append ``event`` to ``topic``'s stream and return its stream id."""
        known = check_publication(topic, event)
        with self.translate_errors():
            message_id = await self._wire.execute(*self._xadd(self.stream_key(known), event))
        return _text(message_id)

    def _xadd(self, key: str, event: Event) -> tuple[str | bytes | int, ...]:
        return ("XADD", key, "MAXLEN", "~", self.maxlen, "*", EVENT_FIELD, encode_event(event))

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        """Publish all of ``items`` in one MULTI/EXEC transaction, after validating every one."""
        prepared = [
            self._xadd(self.stream_key(check_publication(topic, event)), event)
            for topic, event in items
        ]
        if not prepared:
            return []
        with self.translate_errors():
            replies = await self._wire.pipeline([("MULTI",), *prepared, ("EXEC",)])
        ids: list[bytes] = replies[-1]
        return [_text(message_id) for message_id in ids]

    def publish_soon(self, items: Sequence[tuple[Topic, Event]]) -> Awaitable[list[str]]:
        """``publish_many`` with the MULTI/EXEC on the socket before this returns (when the
        connection is open); the ids, or the error, when the result is awaited."""
        prepared = [
            self._xadd(self.stream_key(check_publication(topic, event)), event)
            for topic, event in items
        ]
        return self._published(self._wire.send_soon([("MULTI",), *prepared, ("EXEC",)]))

    async def _published(self, replies: Awaitable[list[Any]]) -> list[str]:
        with self.translate_errors():
            ids: list[bytes] = (await replies)[-1]
        return [_text(message_id) for message_id in ids]

    async def ack(self, topic: Topic, group: str, message_ids: Sequence[str | bytes]) -> None:
        """Acknowledge ``message_ids`` of ``group`` on ``topic``'s stream (XACK)."""
        if message_ids:
            with self.translate_errors():
                await self._wire.execute("XACK", self.stream_key(topic), group, *message_ids)

    async def subscribe(self, topic: Topic, group: str, consumer: str) -> Subscription:
        """Join ``consumer`` to ``group`` on ``topic``; a new group starts at ``$``."""
        known = Topic(topic)
        await self.ensure_group(known, group)
        return _RedisSubscription(self, known, group, consumer)

    async def ensure_group(self, topic: Topic, group: str) -> None:
        """Create ``group`` on ``topic``'s stream (and the stream) unless it exists."""
        with self.translate_errors():
            try:
                await self._redis.xgroup_create(
                    self.stream_key(topic), group, id="$", mkstream=True
                )
            except redis_errors.ResponseError as e:
                if not str(e).startswith("BUSYGROUP"):
                    raise

    async def drop_group(self, topic: Topic, group: str) -> None:
        """Delete ``group`` (XGROUP DESTROY) with its pending entries; unknown ones are ignored."""
        with self.translate_errors():
            try:
                await self._redis.xgroup_destroy(self.stream_key(Topic(topic)), group)
            except redis_errors.ResponseError as e:
                # No stream: "no such key" (older servers), "requires the key to exist" (7.x).
                message = str(e).lower()
                if "no such key" not in message and "requires the key to exist" not in message:
                    raise

    async def ping_latency_ms(self) -> float:
        """Return the round-trip time of one PING in milliseconds."""
        with self.translate_errors():
            started = time.perf_counter()
            await self._wire.execute("PING")
            return (time.perf_counter() - started) * 1000.0

    async def close(self) -> None:
        """Close every connection: the lean ones and redis-py's pool."""
        for wire in self._wires:
            await wire.close()
        await self._redis.aclose()

    async def __aenter__(self) -> Self:
        """Check the server answers, so a wrong URL fails here in one line."""
        try:
            await self.ping_latency_ms()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def client(self) -> aioredis.Redis:
        """The underlying client, for this module's subscriptions."""
        return self._redis

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Translate redis-py exceptions into the cdb error tree, scrubbing the password."""
        try:
            yield
        except redis_errors.AuthenticationError as e:
            raise ConfigurationError(
                f"{self.where} refused the credentials: {self._scrub(str(e))}"
            ) from e
        except redis_errors.TimeoutError as e:
            raise TransientError(f"{self.where} did not answer in time") from e
        except redis_errors.ConnectionError as e:
            raise DependencyError(f"{self.where} is unreachable: {_reason(e)}") from e
        except redis_errors.RedisError as e:
            first_line = self._scrub(str(e)).splitlines()[0] if str(e) else type(e).__name__
            raise DependencyError(f"{self.where} failed: {first_line}") from e

    def _scrub(self, text: str) -> str:
        return redact(text, self._secrets)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _RedisSubscription(SubscriptionBase):
    def __init__(self, bus: RedisBus, topic: Topic, group: str, consumer: str) -> None:
        super().__init__(topic, group, consumer)
        self._bus = bus
        self._redis = bus.client
        self._wire = bus.wire()  # blocks on XREADGROUP: a connection of its own
        self._key = bus.stream_key(topic)
        self._backlog_cursor: str | None = "0"  # None once this consumer's old pending is read

    async def fetch(self, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        while self._backlog_cursor is not None:
            # Reading from an id instead of ">" returns what this consumer was given and never
            # acknowledged: the work of a crashed predecessor with the same name.
            entries = await self._read(self._backlog_cursor, max_count, block_ms=None)
            if not entries:
                self._backlog_cursor = None
                break
            self._backlog_cursor = _text(entries[-1][0])
            backlog = await self._deliver(entries)
            if backlog:
                return backlog
        block_s = min(timeout_s, self._bus.max_block_s)
        # BLOCK 0 would wait forever; no timeout means do not block at all.
        block_ms = max(1, int(block_s * 1000)) if block_s > 0 else None
        opened = self._wire.opened
        try:
            entries = await self._read(">", max_count, block_ms)
        except (DependencyError, TransientError):
            self._backlog_cursor = "0"
            raise
        if opened and self._wire.opened != opened:
            # The connection dropped during the read and a retry answered: the reply on the old
            # one may have been lost, and what it gave this consumer is pending under its name.
            # Read that first next time (what was delivered twice is dropped by event id).
            self._backlog_cursor = "0"
        return await self._deliver(entries)

    async def ack(self, *deliveries: Delivery) -> None:
        for delivery in deliveries:
            if delivery.topic is not self._topic:
                raise ValueError(f"Delivery of {delivery.topic.value!r} acked on {self._topic!r}")
        await self._bus.ack(self._topic, self._group, [d.message_id for d in deliveries])

    async def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        entries: list[tuple[bytes, dict[bytes, bytes] | None]] = []
        start: bytes | str = "0-0"
        with self._bus.translate_errors():
            while len(entries) < max_count:
                # XAUTOCLAIM scans the pending list by cursor; "0-0" means the scan is complete.
                cursor, claimed, *_ = await self._redis.xautoclaim(
                    self._key,
                    self._group,
                    self._consumer,
                    int(min_idle_s * 1000),
                    start_id=start,
                    count=max_count - len(entries),
                )
                entries.extend(claimed)
                if _text(cursor) == "0-0":
                    break
                start = cursor
        return await self._deliver(entries)

    async def _read(
        self, from_id: str, max_count: int, block_ms: int | None
    ) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        with self._bus.translate_errors():
            try:
                reply = await self._xreadgroup(from_id, max_count, block_ms)
            except redis_errors.ResponseError as e:
                if not str(e).startswith("NOGROUP"):
                    raise
                # The stream or group was deleted under us (e.g. by an operator): recreate it.
                logger.warning(
                    "Consumer group %s on %s vanished; recreating it", self._group, self._key
                )
                await self._bus.ensure_group(self._topic, self._group)
                reply = await self._xreadgroup(from_id, max_count, block_ms)
        if not reply:
            return []
        _stream, entries = reply[0]
        # RESP2: [id, [field, value, …]], or [id, nil] for an entry deleted while pending
        return [
            (raw_id, dict(zip(flat[::2], flat[1::2], strict=True)) if flat else None)
            for raw_id, flat in entries
        ]

    async def _xreadgroup(self, from_id: str, max_count: int, block_ms: int | None) -> Any:
        command: list[str | int] = ["XREADGROUP", "GROUP", self._group, self._consumer]
        command += ["COUNT", max_count]
        if block_ms is not None:
            command += ["BLOCK", block_ms]
        command += ["STREAMS", self._key, from_id]
        # A blocking read waits up to block_ms before the server answers (an empty reply).
        timeout_s = self._wire.command_timeout_s + (block_ms or 0) / 1000
        return await self._wire.execute(*command, timeout_s=timeout_s)

    async def _deliver(
        self, entries: list[tuple[bytes, dict[bytes, bytes] | None]]
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        gone: list[bytes] = []
        for raw_id, fields in entries:
            if not fields:  # trimmed or deleted from the stream while pending: nothing to deliver
                gone.append(raw_id)
                continue
            payload = fields.get(EVENT_FIELD)
            try:
                if payload is None:
                    raise MalformedEvent(f"Stream entry has no {EVENT_FIELD.decode()!r} field")
                event = decode_event(payload)
            except MalformedEvent as e:
                await self._dead_letter(raw_id, fields, e.message)
                continue
            deliveries.append(Delivery(self._topic, _text(raw_id), event))
        await self._bus.ack(self._topic, self._group, gone)
        return deliveries

    async def _dead_letter(self, raw_id: bytes, fields: dict[bytes, bytes], error: str) -> None:
        payload = fields.get(EVENT_FIELD)
        record: dict[FieldT, EncodableT] = {
            "message_id": raw_id,
            "stream": self._key,
            "group": self._group,
            "consumer": self._consumer,
            "error": error,
            "payload": payload if payload is not None else repr(fields),
        }
        with self._bus.translate_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xadd(
                    self._bus.dead_letter_key(self._topic),
                    record,
                    maxlen=DEAD_LETTER_MAXLEN,
                )
                pipe.xack(self._key, self._group, raw_id)
                await pipe.execute()
        self._dead_lettered += 1
        logger.warning(
            "Dead-lettered message %s on %s (group %s): %s",
            _text(raw_id),
            self._key,
            self._group,
            error,
        )
