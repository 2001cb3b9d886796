"""The simulator's WebSocket (mexc_api.md §4): JSON control frames, protobuf pushes, MEXC's limits.

It acknowledges subscriptions by echoing the topics, refuses unknown or non-``.pb`` topics with
MEXC's ``code 0`` "Blocked" message, answers PING, enforces 30 topics per connection, closes
sockets idle for 30 s without subscription or 60 s without a client message, and ends every
connection at a maximum age (24 h at MEXC). Faults: stall (send nothing), duplicate and garbage
frames, and dropping every connection without a close frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from cdb_cli.adapters.mexc.sim.exchange import SimExchange
from cdb_cli.adapters.mexc.sim.frames import MarketView, Topic, encode_frame, parse_topic
from cdb_cli.adapters.mexc.sim.market import PublicTrade

__all__ = ["Connection", "SimWebSocket"]

logger = logging.getLogger(__name__)

# MEXC writes a full-width colon here (mexc_api.md §4.1).
BLOCKED = "Reason\uff1a Blocked! "


@dataclass(eq=False)
class Connection:
    """One client socket and its subscriptions."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    topics: dict[str, Topic] = field(default_factory=dict)
    opened: float = field(default_factory=time.monotonic)
    account: str | None = None  # API key of a ?listenKey= connection (private channels)


class SimWebSocket:
    """All WebSocket connections of one simulator."""

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self.connections: set[Connection] = set()
        self.frames_sent = 0
        self._rng = random.Random(exchange.config.seed)

    def drop_all(self) -> int:
        """Cut every connection without a close frame (like a network failure)."""
        dropped = 0
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
                dropped += 1
        return dropped

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.ws.close()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The ``/ws`` endpoint: control frames in, acks and protobuf pushes out."""
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = Connection(ws, request.transport)
        listen_key = request.query.get("listenKey")
        if listen_key is not None:
            conn.account = self.exchange.listen_keys.owner(listen_key)
            if conn.account is None:
                await ws.send_str("Invalid listen key")  # plain text, as MEXC (mexc_api.md §4.7)
                await ws.close()
                return ws
        self.connections.add(conn)
        config = self.exchange.config
        try:
            while not ws.closed:
                if time.monotonic() - conn.opened > config.max_connection_age:
                    logger.info("Closing a WebSocket at its maximum age (as MEXC does after 24 h)")
                    break
                idle = (
                    config.idle_without_messages
                    if conn.topics
                    else config.idle_without_subscription
                )
                left = config.max_connection_age - (time.monotonic() - conn.opened)
                try:
                    msg = await ws.receive(timeout=max(0.001, min(idle, left)))
                except TimeoutError:
                    if time.monotonic() - conn.opened > config.max_connection_age:
                        continue  # the loop head closes it
                    logger.info("Closing an idle WebSocket after %.0f s", idle)
                    break
                if msg.type != WSMsgType.TEXT:
                    if msg.type in (
                        WSMsgType.CLOSE,
                        WSMsgType.CLOSING,
                        WSMsgType.CLOSED,
                        WSMsgType.ERROR,
                    ):
                        break
                    continue
                if not self.exchange.faults.ws_stalled:
                    await self._control(conn, msg.data)
        finally:
            self.connections.discard(conn)
            await ws.close()
        return ws

    async def _control(self, conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
            method = str(message.get("method", "")).upper()
            request_id = message.get("id", 0)
        except (ValueError, AttributeError):
            await conn.ws.send_str(json.dumps({"id": 0, "code": 0, "msg": "msg format invalid"}))
            return
        if method == "PING":
            await conn.ws.send_str(json.dumps({"id": 0, "code": 0, "msg": "PONG"}))
            return
        params = message.get("params") or []
        if method not in {"SUBSCRIPTION", "UNSUBSCRIPTION"} or not isinstance(params, list):
            await conn.ws.send_str(
                json.dumps({"id": request_id, "code": 0, "msg": "msg format invalid"})
            )
            return
        accepted, refused = [], []
        for text_topic in map(str, params):
            topic = parse_topic(text_topic)
            if method == "UNSUBSCRIPTION":
                conn.topics.pop(text_topic, None)
                accepted.append(text_topic)
            elif (
                topic is None
                or (topic.kind == "private" and conn.account is None)
                or (topic.kind != "private" and topic.symbol not in self.exchange.markets)
                or len(conn.topics) >= self.exchange.config.max_subscriptions
            ):
                refused.append(text_topic)
            else:
                conn.topics[text_topic] = topic
                accepted.append(text_topic)
        if refused:
            joined = ",".join(refused)
            await conn.ws.send_str(
                json.dumps(
                    {
                        "id": request_id,
                        "code": 0,
                        "msg": f"Not Subscribed successfully! [{joined}].  {BLOCKED}",
                    },
                    ensure_ascii=False,
                )
            )
        if accepted:
            await conn.ws.send_str(
                json.dumps({"id": request_id, "code": 0, "msg": ",".join(accepted)})
            )

    async def push_private(self, pushes: list[tuple[str, str, bytes]]) -> None:
        """Send each private push to the connections of its account subscribed to its channel."""
        if not pushes or self.exchange.faults.ws_stalled:
            return
        for conn in list(self.connections):
            if conn.account is None:
                continue
            for api_key, channel, frame in pushes:
                if api_key == conn.account and channel in conn.topics:
                    await self._send(conn, frame)

    async def push(self, trades: list[PublicTrade]) -> None:
        """Send every subscriber the frames of its topics after one market step."""
        faults = self.exchange.faults
        now = self.exchange.clock_ms()
        views = {}
        for trade in trades:  # every step is a depth push, subscribed or not (versions run on)
            book, journal = (
                self.exchange.books[trade.symbol],
                self.exchange.depth_journals[trade.symbol],
            )
            diff = journal.take(book)
            views[trade.symbol] = MarketView(trade, book, diff, journal.version, now)
        if faults.ws_stalled or not self.connections:
            return
        for conn in list(self.connections):
            for topic in list(conn.topics.values()):
                view = views.get(topic.symbol)
                frame = None if view is None else encode_frame(topic, view)
                if frame is None:
                    continue
                await self._send(conn, frame)
                if faults.ws_duplicate_rate and self._rng.random() < faults.ws_duplicate_rate:
                    await self._send(conn, frame)
                if faults.ws_garbage_rate and self._rng.random() < faults.ws_garbage_rate:
                    await self._send(conn, frame[: len(frame) // 2] + b"\xff\xff")
                    if not conn.ws.closed:  # and a text frame a proxy might inject
                        await conn.ws.send_str("<html>502 Bad Gateway</html>")

    async def _send(self, conn: Connection, frame: bytes) -> None:
        if conn.ws.closed:
            return
        try:
            await conn.ws.send_bytes(frame)
            self.frames_sent += 1
        except (ConnectionError, RuntimeError):
            self.connections.discard(conn)
