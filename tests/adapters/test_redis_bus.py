"""What only the Redis Streams bus can meet: bytes on the wire, a server that is away, MULTI/EXEC.

The behaviour shared with the in-process bus is proven in tests/contract/test_bus_contract.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio as aioredis
from market_testkit import eventually, tick

from cdb_cli.adapters.redis_bus import RedisBus
from cdb_cli.engine.errors import DependencyError, MalformedEvent, TransientError
from cdb_cli.engine.events import HealthReport, Topic

MD = Topic.MARKET_DATA


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    """This test's own key prefix (conftest deletes its keys afterwards)."""
    return redis_prefix


def with_raw_client(
    url: str, prefix: str, scenario: Callable[[RedisBus, aioredis.Redis], Awaitable[None]]
) -> None:
    async def main() -> None:
        raw = aioredis.Redis.from_url(url)
        try:
            async with RedisBus(url, prefix=prefix) as bus:
                await scenario(bus, raw)
        finally:
            await raw.aclose()

    asyncio.run(main())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.infra
def test_redis_bus_dead_letters_malformed_entries_and_delivers_the_rest(
    redis_url: str, prefix: str
) -> None:
    good = [tick(1), tick(2)]

    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        sub = await bus.subscribe(MD, "risk", "r1")
        key = bus.stream_key(MD)
        await bus.publish(MD, good[0])
        bad_json = await raw.xadd(key, {"event": b"\xff not json"})
        await raw.xadd(key, {"other": b"field"})
        await raw.xadd(key, {"event": b'{"type":"market.trade","v":1,"data":{"symbol":"X"}}'})
        await bus.publish(MD, good[1])

        given = await sub.fetch(100, 1.0)
        assert [d.event for d in given] == good
        await sub.ack(*given)
        assert sub.dead_lettered == 3
        dead = await raw.xrange(bus.dead_letter_key(MD))
        assert dead[0][1][b"message_id"] == bad_json
        assert dead[0][1][b"payload"] == b"\xff not json"
        assert b"not valid JSON" in dead[0][1][b"error"]
        assert b"no 'event' field" in dead[1][1][b"error"]
        assert b"is invalid at ts_event" in dead[2][1][b"error"]
        assert (await raw.xpending(key, "risk"))["pending"] == 0  # bad ones acknowledged too

    with_raw_client(redis_url, prefix, scenario)


@pytest.mark.parametrize("entry", ["publish", "context"])
def test_redis_bus_unreachable_is_one_line_without_the_password(entry: str) -> None:
    port = closed_port()
    url = f"redis://:s3cret-pass@127.0.0.1:{port}/0"

    async def main() -> None:
        if entry == "context":
            async with RedisBus(url):
                pytest.fail("entered a bus whose server is not there")
        bus = RedisBus(url, connect_timeout_s=1)
        try:
            await bus.publish(MD, tick())
        finally:
            await bus.close()

    with pytest.raises(DependencyError) as caught:
        asyncio.run(main())
    message = str(caught.value)
    assert message == f"Redis at 127.0.0.1:{port} is unreachable: Connection refused"
    assert "s3cret" not in message
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    assert "s3cret" not in str(caught.value.__cause__)


def test_redis_bus_server_that_never_answers_is_a_transient_error() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = int(silent.getsockname()[1])

        async def main() -> None:
            bus = RedisBus(f"redis://127.0.0.1:{port}/0", command_timeout_s=0.2)
            try:
                await bus.publish(MD, tick())
            finally:
                await bus.close()

        with pytest.raises(
            TransientError, match=f"^Redis at 127.0.0.1:{port} did not answer in time$"
        ):
            asyncio.run(main())


@pytest.mark.infra
def test_redis_bus_publish_many_writes_nothing_when_one_event_is_invalid(
    redis_url: str, prefix: str
) -> None:
    health = HealthReport(symbol="*", ts_event=1, source="t", component="bus", status="ok")

    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        batch = [(MD, tick(1)), (Topic.SYSTEM_HEALTH, health), (Topic.SYSTEM_HEALTH, tick(2))]
        with pytest.raises(MalformedEvent):
            await bus.publish_many(batch)
        assert await raw.exists(bus.stream_key(MD), bus.stream_key(Topic.SYSTEM_HEALTH)) == 0
        ids = await bus.publish_many(batch[:2])
        assert await raw.xlen(bus.stream_key(MD)) == 1
        assert await raw.xlen(bus.stream_key(Topic.SYSTEM_HEALTH)) == 1
        assert [i.decode() for i, _ in await raw.xrange(bus.stream_key(MD))] == ids[:1]

    with_raw_client(redis_url, prefix, scenario)


@pytest.mark.infra
def test_redis_bus_two_processes_share_groups_through_the_server(
    redis_url: str, prefix: str
) -> None:
    async def main() -> None:
        async with (
            RedisBus(redis_url, prefix=prefix) as producer,
            RedisBus(redis_url, prefix=prefix) as consumer,
        ):
            sub = await consumer.subscribe(MD, "risk", "risk@host-b")
            sent = [tick(n) for n in range(3)]
            await producer.publish_many([(MD, event) for event in sent])
            assert [d.event for d in await sub.fetch(10, 1.0)] == sent

    asyncio.run(main())


@pytest.mark.infra
def test_redis_bus_fetch_waits_for_an_event_published_meanwhile(
    redis_url: str, prefix: str
) -> None:
    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        waiting = asyncio.create_task(sub.fetch(10, timeout_s=5.0))

        # Publish once the blocking XREADGROUP is registered on the server; there is no event to
        # await for that, so ask the server.
        async def registered() -> bool:
            return bool((await raw.xinfo_groups(bus.stream_key(MD)))[0]["consumers"])

        await eventually(registered, what="the fetch registered on the server")
        sent = tick(9)
        await bus.publish(MD, sent)
        assert [d.event for d in await asyncio.wait_for(waiting, 5)] == [sent]

    with_raw_client(redis_url, prefix, scenario)


@pytest.mark.infra
def test_redis_bus_pending_entry_trimmed_away_is_dropped_on_reclaim(
    redis_url: str, prefix: str
) -> None:
    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        await bus.publish(MD, tick(1))
        assert len(await sub.fetch(10, 1.0)) == 1
        await raw.xtrim(bus.stream_key(MD), maxlen=0, approximate=False)
        assert await sub.reclaim(min_idle_s=0) == []
        assert (await raw.xpending(bus.stream_key(MD), "g"))["pending"] == 0

    with_raw_client(redis_url, prefix, scenario)


@pytest.mark.infra
def test_redis_bus_recreates_a_group_deleted_under_it(redis_url: str, prefix: str) -> None:
    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        await raw.delete(bus.stream_key(MD))
        assert await sub.fetch(10, timeout_s=0) == []
        sent = tick(3)
        await bus.publish(MD, sent)
        assert [d.event for d in await sub.fetch(10, 1.0)] == [sent]

    with_raw_client(redis_url, prefix, scenario)


@pytest.mark.infra
def test_redis_bus_drops_a_group_and_ignores_one_that_is_not_there(
    redis_url: str, prefix: str
) -> None:
    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        await bus.drop_group(MD, "g")  # no stream at all (Redis 7: "requires the key to exist")
        await bus.subscribe(MD, "g", "c")
        await bus.drop_group(MD, "other")  # a stream without that group
        await bus.drop_group(MD, "g")
        assert await raw.xinfo_groups(bus.stream_key(MD)) == []

    with_raw_client(redis_url, prefix, scenario)


@pytest.mark.infra
def test_redis_bus_trims_streams_and_reports_latency(redis_url: str, prefix: str) -> None:
    async def main() -> None:
        async with RedisBus(redis_url, prefix=prefix, maxlen=10) as bus:
            await bus.publish_many([(MD, tick(n)) for n in range(500)])
            # MAXLEN ~ trims whole nodes of the stream's radix tree only: at least maxlen
            # entries stay, and fewer than maxlen plus one node's worth.
            config = await bus.client.config_get("stream-node-max-entries")
            node = int(config["stream-node-max-entries"])
            assert 10 <= await bus.client.xlen(bus.stream_key(MD)) < 10 + node < 500
            assert 0 < await bus.ping_latency_ms() < 1000

    asyncio.run(main())


@pytest.mark.infra
def test_redis_bus_reads_its_pending_first_after_a_reply_lost_with_the_connection(
    redis_url: str, prefix: str
) -> None:
    async def scenario(bus: RedisBus, raw: aioredis.Redis) -> None:
        sub = await bus.subscribe(MD, "g", "c")
        assert await sub.fetch(10, timeout_s=0.05) == []  # its connection is open
        sent = tick(4)
        await bus.publish(MD, sent)
        # The server hands the entry to consumer "c" but the reply never reaches the bus: as
        # when the connection drops with the reply on the way.
        await raw.xreadgroup("g", "c", {bus.stream_key(MD): ">"}, count=10)
        for client in await raw.client_list():
            if client["name"] == f"{prefix}:bus" and client["cmd"] == "xreadgroup":
                await raw.client_kill_filter(_id=client["id"])
        later = tick(5)
        await bus.publish(MD, later)
        # The read on the dropped connection is retried on a new one and gets the later entry;
        # the next fetch gets the lost one from the pending list.
        got = [d.event for d in await sub.fetch(10, timeout_s=1.0)]
        got += [d.event for d in await sub.fetch(10, timeout_s=1.0)]
        assert sent in got
        assert later in got

    with_raw_client(redis_url, prefix, scenario)
