"""``MexcDataClient``: MEXC spot market data over the protobuf WebSocket (mexc_api.md §4).

Topics are sharded ≤ 30 per connection. Each shard runs one supervised connection: it subscribes
(and checks that each ack echoes its topics, since MEXC answers ``code 0`` even on refusal), sends
``{"method":"PING"}`` on a timer, treats a socket that has been silent for ``idle_timeout`` as dead,
rotates the connection before MEXC's 24 h limit, and reconnects with exponential backoff and
jitter, resubscribing everything. Decoded events pass :class:`StreamBook` (no duplicates, no
out-of-order trades) into :attr:`MexcDataClient.events`; per-topic freshness is exposed so the risk
engine can refuse to trade on stale data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from cdb_cli.adapters.mexc.decoder import FrameDecoder, channel_symbol
from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
from cdb_cli.adapters.mexc.streams import StreamBook
from cdb_cli.engine.errors import CdbError, ConfigurationError
from cdb_cli.engine.events import Event

__all__ = [
    "MexcDataClient",
    "book_ticker_topic",
    "deals_topic",
    "kline_topic",
    "probe",
    "topic_symbol",
]

logger = logging.getLogger(__name__)

MAX_TOPICS_PER_CONNECTION = 30
TOPICS_PER_MESSAGE = 10  # keeps control messages well under 1024 bytes (mexc_api.md §4.1)
DAY = 24 * 3600.0


def deals_topic(symbol: str, rate: str = "100ms") -> str:
    """Aggregated trades of ``symbol``."""
    return f"spot@public.aggre.deals.v3.api.pb@{rate}@{symbol.upper()}"


def book_ticker_topic(symbol: str, rate: str = "100ms") -> str:
    """Best bid/ask of ``symbol``."""
    return f"spot@public.aggre.bookTicker.v3.api.pb@{rate}@{symbol.upper()}"


def kline_topic(symbol: str, interval: str = "1m") -> str:
    """Klines of ``symbol`` in any interval naming (``1m`` → ``Min1``)."""
    return f"spot@public.kline.v3.api.pb@{symbol.upper()}@{lookup_interval(interval).ws}"


def topic_symbol(topic: str) -> str:
    """The symbol of a public topic, where MEXC's docs put it (see :func:`channel_symbol`)."""
    return channel_symbol(topic)


class _Idle(Exception):
    """The socket sent nothing for ``idle_timeout`` seconds."""


class _Rotate(Exception):
    """The connection reached its planned lifetime."""


class MexcDataClient:
    """Subscribe to topics, then read :attr:`events`. Use as ``async with`` or start()/stop()."""

    def __init__(
        self,
        url: str,
        topics: Sequence[str] = (),
        *,
        source: str = "mexc",
        ping_interval: float = 20.0,
        idle_timeout: float = 30.0,
        ack_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_lifetime: float = DAY - 1800.0,
        per_connection: int = MAX_TOPICS_PER_CONNECTION,
        queue_size: int = 100_000,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigurationError(f"MEXC WebSocket URL must start with ws:// or wss://: {url!r}")
        if not 1 <= per_connection <= MAX_TOPICS_PER_CONNECTION:
            raise ConfigurationError(f"per_connection must be in 1..{MAX_TOPICS_PER_CONNECTION}")
        self.url = url
        self.topics: list[str] = list(dict.fromkeys(topics))
        self._topic_set = frozenset(self.topics)
        self.ping_interval = ping_interval
        self.idle_timeout = idle_timeout
        self.ack_timeout = ack_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_lifetime = max_lifetime
        self.per_connection = per_connection
        self.events: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self.decoder = FrameDecoder(source)
        self.streams = StreamBook()
        self.refused: set[str] = set()
        self.counters: Counter[str] = Counter()  # connects, reconnects, idle, rotations, …
        self.max_backlog = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.sockets: dict[int, ClientConnection] = {}  # the current socket of each shard
        self._connected: dict[int, asyncio.Event] = {}
        self._logged: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    def shards(self) -> list[list[str]]:
        """The topics of each connection (≤ ``per_connection`` each)."""
        n = self.per_connection
        return [self.topics[i : i + n] for i in range(0, len(self.topics), n)]

    async def start(self) -> None:
        """Open one supervised connection per shard; returns at once (see wait_connected)."""
        if self._tasks:
            return
        for number, shard in enumerate(self.shards()):
            self._connected[number] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run_shard(number, shard)))

    async def wait_connected(self, within: float) -> None:
        """Wait until every shard is connected and subscribed (TimeoutError after ``within`` s)."""
        async with asyncio.timeout(within):
            for connected in self._connected.values():
                await connected.wait()

    async def stop(self) -> None:
        """Close every connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def __aenter__(self) -> MexcDataClient:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- freshness -------------------------------------------------------------------------------

    def freshness(self) -> dict[str, float | None]:
        """Seconds since the last data of each topic (None: nothing received yet)."""
        return {topic: self.streams.age(topic) for topic in self.topics}

    def symbol_age(self, symbol: str) -> float | None:
        """Seconds since any data of ``symbol`` arrived (its freshest topic; None: never).

        What the risk engine's stale-data rule needs per symbol (``last_price_age_ns``).
        """
        ages = [
            age
            for topic in self.topics
            if topic_symbol(topic) == symbol
            if (age := self.streams.age(topic)) is not None
        ]
        return min(ages) if ages else None

    def stale(self, max_age: float) -> list[str]:
        """Subscribed topics without data for more than ``max_age`` seconds."""
        return self.streams.stale([t for t in self.topics if t not in self.refused], max_age)

    # -- one shard -------------------------------------------------------------------------------

    async def _url(self) -> str:
        """The URL of the next connection (a subclass may add a listenKey)."""
        return self.url

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        jitter: float = random.random()  # noqa: S311 - jitter, not crypto
        return ceiling * (0.5 + jitter / 2)

    def _log_once(self, kind: str, message: str, *args: object) -> None:
        self.counters[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning(message + " (further ones are only counted)", *args)

    async def _run_shard(self, number: int, topics: list[str]) -> None:
        attempt = 0
        connected = self._connected[number]
        while True:
            live = [t for t in topics if t not in self.refused]
            if not live:
                connected.set()
                return
            subscribed = rotated = False
            try:
                url = await self._url()
                async with connect(
                    url, ping_interval=None, open_timeout=self.ack_timeout, max_size=2**22
                ) as ws:
                    self.sockets[number] = ws
                    self.counters["connects"] += 1
                    await self._subscribe(ws, live)
                    subscribed, attempt = True, 0
                    connected.set()
                    await self._receive(ws)
            except _Rotate:
                self.counters["rotations"] += 1
                logger.info("Rotating MEXC WebSocket connection %d before its 24 h limit", number)
                rotated = True
            except (_Idle, ConnectionClosed, OSError, TimeoutError, InvalidHandshake) as e:
                self.counters["reconnects"] += 1
                logger.warning("MEXC WebSocket %d lost (%s); reconnecting", number, _why(e))
            except InvalidURI as e:
                raise ConfigurationError(f"Bad MEXC WebSocket URL: {e}") from None
            except CdbError as e:  # e.g. the REST call for a listenKey failed
                self.counters["errors"] += 1
                logger.warning("MEXC WebSocket %d cannot connect: %s", number, e.message)
            except Exception:  # a supervisor must not die silently: log, count, reconnect
                self.counters["errors"] += 1
                logger.exception("MEXC WebSocket %d failed unexpectedly; reconnecting", number)
            if subscribed:
                self.streams.reconnected(live)  # data may have been missed, even on rotation
            connected.clear()
            if not rotated:
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1

    async def _subscribe(self, ws: ClientConnection, topics: list[str]) -> None:
        """Subscribe and wait until every topic is acknowledged or refused."""
        pending = set(topics)
        for i in range(0, len(topics), TOPICS_PER_MESSAGE):
            batch = topics[i : i + TOPICS_PER_MESSAGE]
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": batch, "id": i + 1}))
        async with asyncio.timeout(self.ack_timeout):
            while pending:
                message = await ws.recv()
                if isinstance(message, bytes):
                    await self._deliver(message)
                    continue
                for topic, accepted in self._parse_ack(message, pending):
                    pending.discard(topic)
                    if not accepted:
                        self.refused.add(topic)
                        logger.error("MEXC refused the subscription %s (code 0, Blocked)", topic)

    def _parse_ack(self, text: str, pending: set[str]) -> list[tuple[str, bool]]:
        reply = _json(text)
        if reply is None:
            self._log_once("bad_control", "Non-JSON control frame from MEXC: %.80r", text)
            return []
        msg = str(reply.get("msg", ""))
        if msg.startswith("Not Subscribed successfully"):
            listed = msg[msg.find("[") + 1 : msg.find("]")].split(",")
            return [(t, False) for t in listed if t in pending]
        return [(t, True) for t in msg.split(",") if t in pending]

    async def _receive(self, ws: ClientConnection) -> None:
        opened = last_seen = last_ping = time.monotonic()
        while True:
            now = time.monotonic()
            if now - opened >= self.max_lifetime:
                raise _Rotate
            if now - last_seen >= self.idle_timeout:
                self.counters["idle_timeouts"] += 1
                raise _Idle(f"no message for {self.idle_timeout:.0f} s")
            if now - last_ping >= self.ping_interval:
                await ws.send('{"method":"PING"}')
                last_ping = now
            wait = (
                min(
                    last_seen + self.idle_timeout,
                    last_ping + self.ping_interval,
                    opened + self.max_lifetime,
                )
                - now
            )
            try:
                async with asyncio.timeout(max(wait, 0.001)):
                    message = await ws.recv()
            except TimeoutError:
                continue
            last_seen = time.monotonic()
            if isinstance(message, bytes):
                await self._deliver(message)
            elif (reply := _json(message)) is None:
                self._log_once("bad_control", "Non-JSON control frame from MEXC: %.80r", message)
            elif reply.get("msg") != "PONG":
                self.counters["control"] += 1

    def _on_binary(self, frame: bytes) -> list[Event]:
        channel, events = self.decoder.decode(frame)
        if not channel:
            return []
        if channel not in self._topic_set:
            self._log_once("unknown_channel", "MEXC frame on unsubscribed channel %r", channel)
            return []
        return self.streams.admit(channel, events)

    async def _deliver(self, frame: bytes) -> None:
        for event in self._on_binary(frame):
            if self.events.full():  # the run cannot take them (its bus is down): the bound
                self._log_once(
                    "queue_full",
                    "The market data queue is full (%d events): reading MEXC pauses until the "
                    "run takes them; MEXC may close the connection meanwhile (it reconnects)",
                    self.events.maxsize,
                )
            await self.events.put(event)
        self.max_backlog = max(self.max_backlog, self.events.qsize())


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nesting too deep for the parser is not JSON either
        return None
    return value if isinstance(value, dict) else None


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def probe(url: str, topic: str, *, within: float = 5.0) -> float:
    """Connect, subscribe ``topic`` and wait for its ack; the elapsed milliseconds.

    For ``cdb systemcheck``. Raises ``TransientError`` when the socket cannot be opened or answers
    nothing in time, ``VenueRejected`` when MEXC refuses the topic (its code-0 "Blocked" ack).
    """
    from cdb_cli.engine.errors import TransientError, VenueRejected

    started = time.monotonic()
    try:
        async with (
            asyncio.timeout(within),
            connect(url, ping_interval=None, open_timeout=within) as ws,
        ):
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [topic], "id": 1}))
            while True:
                message = await ws.recv()
                reply = _json(message) if isinstance(message, str) else None
                if reply is None:
                    continue
                msg = str(reply.get("msg", ""))
                if msg.startswith("Not Subscribed successfully"):
                    raise VenueRejected(f"MEXC WebSocket refused {topic}: {msg.strip()}")
                if topic in msg.split(","):
                    return (time.monotonic() - started) * 1000.0
    except (ConnectionClosed, OSError, TimeoutError, InvalidHandshake) as e:
        raise TransientError(f"MEXC WebSocket {url} did not answer: {_why(e)}") from None
    except InvalidURI as e:
        raise ConfigurationError(f"Bad MEXC WebSocket URL: {e}") from None
