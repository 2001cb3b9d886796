"""A lean Redis connection for the bus's hot path: one asyncio protocol, hiredis's parser.

redis-py's asyncio client goes through a connection pool, a stream reader, a retry wrapper and a
timeout context on every command. On a slow shared host that costs about half a millisecond per
command, and the components' path makes three Redis hops (``benchmarks/latency_components.py``
measured the same three hops at p50 4.4 ms with redis-py, 2.4 ms with this). So the bus publishes,
reads and acknowledges through :class:`WireConnection`, and keeps redis-py for the rest (groups,
reclaiming, dead letters).

A connection writes each call's commands in one ``write`` and resolves one future per reply, in
order: calls from several tasks pipeline safely. Replies are parsed by ``hiredis.Reader`` (the C
parser redis-py itself uses when it is installed). The wire speaks RESP2.

Errors are redis-py's exception types, so :meth:`RedisBus.translate_errors` maps them as before:
``ConnectionError`` (refused, dropped; its cause names the operating-system error),
``TimeoutError`` (no reply in time: the connection is dropped, since a late reply would answer the
wrong call), ``AuthenticationError`` and ``ResponseError`` (the server's error reply). A call that
fails on the connection is retried twice with backoff on a new one, as the bus's redis-py client
does. No message carries the password.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any

import hiredis
import redis.exceptions as redis_errors
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import parse_url

__all__ = ["WireConnection", "pack"]

Command = Sequence[bytes | str | int | float]

_AUTH_ERRORS = (
    "WRONGPASS",
    "NOAUTH",
    "ERR AUTH",
    "Client sent AUTH",
    "invalid password",
    "invalid username-password",
)


def pack(commands: Sequence[Command]) -> bytes:
    """Encode ``commands`` as RESP arrays of bulk strings, back to back."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, str):
                data = arg.encode()
            else:
                data = repr(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _error(reply: redis_errors.ResponseError) -> redis_errors.RedisError:
    text = str(reply)
    if text.startswith(_AUTH_ERRORS):
        return redis_errors.AuthenticationError(text)
    return reply


def _checked(replies: list[Any]) -> list[Any]:
    """``replies``, or the first error reply raised (in a MULTI … EXEC block the server has
    then applied nothing)."""
    for reply in replies:
        if isinstance(reply, redis_errors.ResponseError):
            raise _error(reply)
        if isinstance(reply, list):  # an EXEC's replies: a command failed as it ran
            for inner in reply:
                if isinstance(inner, redis_errors.ResponseError):
                    raise _error(inner)
    return replies


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(
            protocolError=redis_errors.InvalidResponse, replyError=redis_errors.ResponseError
        )
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except redis_errors.InvalidResponse as e:
                self.fail(e)
                return
            if reply is False:
                return
            if not self.waiters:  # a reply nobody asked for: the stream is out of step
                self.fail(redis_errors.InvalidResponse("Redis sent a reply nobody asked for"))
                return
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled call's reply is read and dropped
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = redis_errors.ConnectionError("Connection closed by the server")
        error.__cause__ = exc
        self._fail_waiters(error)

    def fail(self, error: Exception) -> None:
        """Fail every waiting call with ``error`` and drop the connection."""
        self.closed = True
        self._fail_waiters(error)
        if self.transport is not None:
            self.transport.abort()

    def _fail_waiters(self, error: Exception) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class WireConnection:
    """One connection to the server of ``url`` (``redis://``, ``rediss://``, ``unix://``),
    opened on first use and again after it dropped, named ``name`` in ``CLIENT LIST``; see the
    module docstring."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 10.0,
        retries: int = 2,
        name: str = "",
    ) -> None:
        params: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._host: str = params.get("host", "localhost")
        self._port: int = int(params.get("port", 6379))
        self._path: str | None = params.get("path")
        self._tls = url.startswith("rediss://")
        self._username: str | None = params.get("username")
        self._password: str | None = params.get("password")
        self._db = int(params.get("db", 0) or 0)
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self._retries = retries
        self._backoff = ExponentialWithJitterBackoff(base=0.05, cap=0.5)
        self._name = name
        self._ssl = {k: v for k, v in params.items() if k.startswith("ssl_")}
        self._closed = False
        self._protocol: _Protocol | None = None
        self._lock = asyncio.Lock()
        self.opened = 0
        """How many times the connection was opened: a change means replies may have been lost."""

    @property
    def connected(self) -> bool:
        """Whether the connection is open (it opens on the next call otherwise)."""
        return self._protocol is not None and not self._protocol.closed

    async def execute(
        self, *command: bytes | str | int | float, timeout_s: float | None = None
    ) -> Any:
        """Send one command; return its reply or raise its error."""
        (reply,) = await self.pipeline([command], timeout_s=timeout_s)
        return reply

    async def pipeline(
        self, commands: Sequence[Command], *, timeout_s: float | None = None
    ) -> list[Any]:
        """Send ``commands`` in one write and return their replies in order; the first error
        reply is raised (in a MULTI … EXEC block the server has then applied nothing).
        ``timeout_s`` (default: the command timeout) bounds the wait for the last reply."""
        return await self._retried(pack(commands), len(commands), timeout_s)

    def send_soon(self, commands: Sequence[Command]) -> Awaitable[list[Any]]:
        """``pipeline``, with the commands written before this returns when the connection is
        open (else when the result is awaited): for a caller that cannot await yet. A write
        whose connection fails is sent again on a new one, as ``pipeline`` does."""
        packed, count = pack(commands), len(commands)
        protocol = self._protocol
        if protocol is None or protocol.closed or protocol.transport is None:
            return self._retried(packed, count, None)
        futures = self._write(protocol, packed, count)
        return self._after_write(protocol, futures, packed, count)

    async def _after_write(
        self,
        protocol: _Protocol,
        futures: list[asyncio.Future[Any]],
        packed: bytes,
        count: int,
    ) -> list[Any]:
        try:
            replies = await self._replies(protocol, futures, None)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            return await self._retried(packed, count, None, failures=1)
        return _checked(replies)

    async def _retried(
        self, packed: bytes, count: int, timeout_s: float | None, failures: int = 0
    ) -> list[Any]:
        if failures:
            await asyncio.sleep(self._backoff.compute(failures))
        while True:
            try:
                replies = await self._call(packed, count, timeout_s)
                break
            except redis_errors.AuthenticationError:
                raise
            except (redis_errors.ConnectionError, redis_errors.TimeoutError):
                failures += 1
                if failures > self._retries:
                    raise
                await asyncio.sleep(self._backoff.compute(failures))
        return _checked(replies)

    async def close(self) -> None:
        """Close the connection; later calls fail (a closed connection is not opened again)."""
        self._closed = True
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.closed = True
            protocol.transport.close()

    async def _call(self, packed: bytes, count: int, timeout_s: float | None) -> list[Any]:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        return await self._send(protocol, packed, count, timeout_s)

    async def _send(
        self, protocol: _Protocol, packed: bytes, count: int, timeout_s: float | None
    ) -> list[Any]:
        futures = self._write(protocol, packed, count)
        return await self._replies(protocol, futures, timeout_s)

    @staticmethod
    def _write(protocol: _Protocol, packed: bytes, count: int) -> list[asyncio.Future[Any]]:
        """Write ``packed`` now; one future per reply, resolved in order as they come."""
        if protocol.transport is None:
            raise redis_errors.ConnectionError("Not connected")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        protocol.waiters.extend(futures)
        protocol.transport.write(packed)
        return futures

    async def _replies(
        self, protocol: _Protocol, futures: list[asyncio.Future[Any]], timeout_s: float | None
    ) -> list[Any]:
        timer = asyncio.get_running_loop().call_later(
            self.command_timeout_s if timeout_s is None else timeout_s,
            protocol.fail,
            redis_errors.TimeoutError("Timeout reading from the server"),
        )
        try:
            return [await future for future in futures]
        finally:
            timer.cancel()
            for future in futures:  # the rest failed with the connection: retrieved, not
                if future.done() and not future.cancelled():  # logged at collection
                    future.exception()

    async def _connected(self) -> _Protocol:
        async with self._lock:
            if self._closed:
                raise redis_errors.ConnectionError("The connection was closed")
            if self._protocol is None or self._protocol.closed:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        where = self._path or f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if self._path:
                    _, protocol = await loop.create_unix_connection(_Protocol, self._path)
                else:
                    context = self._ssl_context() if self._tls else None
                    _, protocol = await loop.create_connection(
                        _Protocol, self._host, self._port, ssl=context
                    )
        except TimeoutError as e:
            raise redis_errors.TimeoutError(f"Timeout connecting to {where}") from e
        except OSError as e:
            raise redis_errors.ConnectionError(f"Error connecting to {where}") from e
        await self._handshake(protocol)
        self.opened += 1
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        handshake: list[Command] = []
        if self._password is not None:
            auth = [self._username, self._password] if self._username else [self._password]
            handshake.append(["AUTH", *auth])
        if self._db:
            handshake.append(["SELECT", self._db])
        if self._name:
            handshake.append(["CLIENT", "SETNAME", self._name])
        if handshake:
            try:
                replies = await self._send(protocol, pack(handshake), len(handshake), None)
            except BaseException:
                protocol.fail(redis_errors.ConnectionError("Handshake failed"))
                raise
            for reply in replies:
                if isinstance(reply, redis_errors.ResponseError):
                    protocol.fail(redis_errors.ConnectionError("Handshake refused"))
                    raise _error(reply)

    def _ssl_context(self) -> ssl.SSLContext:
        """TLS as the URL asks (``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_check_hostname``, as
        redis-py reads them): verified against the system's CAs by default."""
        context = ssl.create_default_context(cafile=self._ssl.get("ssl_ca_certs"))
        check = self._ssl.get("ssl_check_hostname")
        if check is not None:
            context.check_hostname = str(check).lower() not in ("false", "0", "no")
        requirement = str(self._ssl.get("ssl_cert_reqs", "required")).lower()
        if requirement in ("none", "cert_none"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif requirement in ("optional", "cert_optional"):
            context.verify_mode = ssl.CERT_OPTIONAL
        return context
