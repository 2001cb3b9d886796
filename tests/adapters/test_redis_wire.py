"""The bus's lean Redis connection: replies in order, errors as redis-py's types, reconnects.

Against the real Redis where a server is needed (``infra``); a silent socket and a closed port
for the failures a real server does not give on demand.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.exceptions as redis_errors
from market_testkit import eventually

from cdb_cli.adapters.redis_bus import RedisBus
from cdb_cli.adapters.redis_wire import WireConnection, pack
from cdb_cli.engine.errors import ConfigurationError


@pytest.fixture
def key(redis_prefix: str) -> str:
    """A key of this test's own (conftest deletes it afterwards)."""
    return f"{redis_prefix}:wire"


def run(url: str, scenario: Callable[[WireConnection], Awaitable[None]], **options: float) -> None:
    async def main() -> None:
        wire = WireConnection(url, **options)  # type: ignore[arg-type]
        try:
            await scenario(wire)
        finally:
            await wire.close()

    asyncio.run(main())


def test_pack_writes_resp_arrays_of_bulk_strings() -> None:
    assert pack([("XADD", b"k\r\n", 10, 0.5)]) == (
        b"*4\r\n$4\r\nXADD\r\n$3\r\nk\r\n\r\n$2\r\n10\r\n$3\r\n0.5\r\n"
    )
    assert (
        pack([("PING",), ("ECHO", "é")])
        == b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"
    )


@pytest.mark.infra
def test_calls_from_many_tasks_get_their_own_replies_in_order(redis_url: str, key: str) -> None:
    async def scenario(wire: WireConnection) -> None:
        replies = await asyncio.gather(*(wire.execute("INCR", key) for _ in range(50)))
        assert sorted(replies) == list(range(1, 51))
        assert replies == list(range(1, 51))  # written in call order, answered in order
        queued = await wire.pipeline([("MULTI",), ("INCR", key), ("GET", key), ("EXEC",)])
        assert queued == [b"OK", b"QUEUED", b"QUEUED", [51, b"51"]]

    run(redis_url, scenario)


@pytest.mark.infra
def test_an_error_reply_is_raised_and_the_connection_stays_usable(redis_url: str, key: str) -> None:
    async def scenario(wire: WireConnection) -> None:
        await wire.execute("SET", key, "text")
        with pytest.raises(redis_errors.ResponseError, match=r"^ERR value is not an integer"):
            await wire.execute("INCR", key)
        with pytest.raises(redis_errors.ResponseError, match=r"^NOGROUP"):
            await wire.execute(
                "XREADGROUP", "GROUP", "nobody", "c", "STREAMS", f"{key}:stream", ">"
            )
        assert await wire.execute("PING") == b"PONG"

    run(redis_url, scenario)


@pytest.mark.infra
def test_a_cancelled_call_s_late_reply_is_dropped_not_given_to_the_next(
    redis_url: str, key: str
) -> None:
    async def scenario(wire: WireConnection) -> None:
        client_id = await wire.execute("CLIENT", "ID")
        blocked = asyncio.create_task(wire.execute("BLPOP", key, 5, timeout_s=10))
        admin = redis.asyncio.Redis.from_url(redis_url)
        try:

            async def held() -> bool:  # the server holds the BLPOP
                clients = await admin.client_list()
                return any(c["id"] == str(client_id) and c["cmd"] == "blpop" for c in clients)

            await eventually(held, what="the server holding the BLPOP")
        finally:
            await admin.aclose()
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        other = redis.asyncio.Redis.from_url(redis_url)
        try:
            await other.rpush(key, "late")  # answers the cancelled BLPOP
        finally:
            await other.aclose()
        assert await wire.execute("PING") == b"PONG"
        assert await wire.execute("LLEN", key) == 0  # the BLPOP took it

    run(redis_url, scenario)


@pytest.mark.infra
def test_a_connection_the_server_dropped_is_opened_again(redis_url: str) -> None:
    async def scenario(wire: WireConnection) -> None:
        first = await wire.execute("CLIENT", "ID")
        admin = redis.asyncio.Redis.from_url(redis_url)
        try:
            assert await admin.client_kill_filter(_id=first) == 1
        finally:
            await admin.aclose()
        await eventually(lambda: not wire.connected, what="the close to reach the protocol")
        second = await wire.execute("CLIENT", "ID")
        assert second != first

    run(redis_url, scenario)


@pytest.mark.infra
def test_send_soon_writes_before_it_returns(redis_url: str, key: str) -> None:
    """Another client's BLPOP gets the element while the reply is not awaited yet."""

    async def scenario(wire: WireConnection) -> None:
        await wire.execute("PING")  # open: the write cannot wait for a connection
        replies = wire.send_soon([("RPUSH", key, "soon")])
        other = redis.asyncio.Redis.from_url(redis_url)
        try:
            assert await other.blpop([key], timeout=2) == (key.encode(), b"soon")
        finally:
            await other.aclose()
        assert await replies == [1]

    run(redis_url, scenario)


@pytest.mark.infra
def test_send_soon_on_a_dropped_connection_is_sent_once_on_a_new_one(
    redis_url: str, key: str
) -> None:
    async def scenario(wire: WireConnection) -> None:
        first = await wire.execute("CLIENT", "ID")
        admin = redis.asyncio.Redis.from_url(redis_url)
        try:
            assert await admin.client_kill_filter(_id=first) == 1
            replies = wire.send_soon([("INCR", key)])
            assert await replies == [1]
            assert await admin.get(key) == b"1"
        finally:
            await admin.aclose()
        assert await wire.execute("CLIENT", "ID") != first

    run(redis_url, scenario)


@pytest.mark.infra
def test_the_database_of_the_url_is_selected(redis_url: str, key: str) -> None:
    url = redis.connection.parse_url(redis_url)  # type: ignore[no-untyped-call]
    url = f"redis://{url.get('host', 'localhost')}:{url.get('port', 6379)}/5"

    async def scenario(wire: WireConnection) -> None:
        await wire.execute("SET", key, "in five")

    run(url, scenario)
    five = redis.Redis.from_url(url)
    try:
        assert five.get(key) == b"in five"
        five.delete(key)
    finally:
        five.close()


@pytest.mark.infra
def test_credentials_the_server_refuses_are_an_authentication_error_without_the_password(
    redis_url: str,
) -> None:
    parts = redis.connection.parse_url(redis_url)  # type: ignore[no-untyped-call]
    url = f"redis://:n0t-the-pass@{parts.get('host', 'localhost')}:{parts.get('port', 6379)}/0"

    async def scenario(wire: WireConnection) -> None:
        with pytest.raises(redis_errors.AuthenticationError) as caught:
            await wire.execute("PING")
        assert "n0t-the-pass" not in str(caught.value)

    run(url, scenario)

    async def through_the_bus() -> None:
        async with RedisBus(url):
            pytest.fail("entered a bus whose credentials were refused")

    with pytest.raises(ConfigurationError, match="refused the credentials") as caught:
        asyncio.run(through_the_bus())
    assert "n0t-the-pass" not in str(caught.value)


def test_a_closed_port_is_a_connection_error_naming_the_cause() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])

    async def scenario(wire: WireConnection) -> None:
        with pytest.raises(redis_errors.ConnectionError) as caught:
            await wire.execute("PING")
        cause = caught.value.__cause__
        assert isinstance(cause, OSError)
        assert cause.errno == errno.ECONNREFUSED
        assert "s3cret" not in str(caught.value)

    run(f"redis://:s3cret@127.0.0.1:{port}/0", scenario, connect_timeout_s=1, retries=0)


def test_a_server_that_never_answers_times_out_and_the_connection_is_dropped() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = int(silent.getsockname()[1])

        async def scenario(wire: WireConnection) -> None:
            with pytest.raises(redis_errors.TimeoutError):
                await wire.execute("PING", timeout_s=0.2)
            assert not wire.connected  # a late reply would answer the wrong call

        run(f"redis://127.0.0.1:{port}/0", scenario, retries=0)


def test_a_pipeline_the_server_hangs_up_on_leaves_no_unretrieved_failure() -> None:
    """Every reply of a pipeline fails with the connection; the first is raised and the rest
    are retrieved, so asyncio logs no "Future exception was never retrieved" traceback (one
    went into every component's log when Redis stopped)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])

        def hang_up() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        unretrieved: list[asyncio.Future[object]] = []

        async def scenario(wire: WireConnection) -> None:
            with pytest.raises(redis_errors.ConnectionError):
                await wire.pipeline([("PING",), ("PING",), ("PING",)])
            # asyncio logs a failed future nobody retrieved when it is collected (its
            # _log_traceback flag): none of the pipeline's may be left so
            unretrieved.extend(
                o
                for o in gc.get_objects()
                if isinstance(o, asyncio.Future)
                and o.done()
                and not o.cancelled()
                and o._log_traceback
            )

        run(f"redis://127.0.0.1:{port}/0", scenario, retries=0)
        thread.join(5)
    assert unretrieved == []


def test_a_reply_that_is_not_resp_fails_the_call_and_drops_the_connection() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])

        def answer_garbage() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(b"?what\r\n")
                connection.recv(1024)  # until the client hangs up

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()

        async def scenario(wire: WireConnection) -> None:
            with pytest.raises(redis_errors.InvalidResponse):
                await wire.execute("PING")
            assert not wire.connected

        run(f"redis://127.0.0.1:{port}/0", scenario, retries=0)
        thread.join(5)


@pytest.mark.infra
def test_a_command_that_fails_inside_exec_is_raised(redis_url: str, key: str) -> None:
    async def scenario(wire: WireConnection) -> None:
        with pytest.raises(redis_errors.ResponseError, match="WRONGTYPE"):
            await wire.pipeline([("MULTI",), ("SET", key, "text"), ("LPUSH", key, 1), ("EXEC",)])

    run(redis_url, scenario)


def test_a_closed_connection_is_not_opened_again(redis_url: str) -> None:
    async def scenario(wire: WireConnection) -> None:
        await wire.close()
        with pytest.raises(redis_errors.ConnectionError, match="closed"):
            await wire.execute("PING")
        assert not wire.connected

    run(redis_url, scenario, retries=0)


def test_tls_follows_the_url_s_ssl_options() -> None:
    strict = WireConnection("rediss://cache.example:6380/0")._ssl_context()
    assert strict.verify_mode is ssl.CERT_REQUIRED
    assert strict.check_hostname
    lax = WireConnection("rediss://cache.example:6380/0?ssl_cert_reqs=none")._ssl_context()
    assert lax.verify_mode is ssl.CERT_NONE
    assert not lax.check_hostname
