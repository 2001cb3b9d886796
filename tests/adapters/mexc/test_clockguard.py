"""``ClockGuard`` on hand-built outcomes, then the client's signing against the simulator clock."""

from __future__ import annotations

import logging
import time
from collections import Counter
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.clockguard import ClockGuard
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.engine.errors import RateLimited, VenueRejected, VenueServerError
from cdb_cli.engine.events import Side

from .conftest import API_KEY, SECRET
from .execution_kit import new_client, posts, record, sim_orders, wait_for

TIMESTAMP = VenueRejected("Timestamp for this request is outside of the recvWindow.", code=700003)


def guard(bound: int | None = 5_000) -> ClockGuard:
    return ClockGuard(bound, Counter())


def test_an_offset_within_the_bound_signs_and_needs_no_probe() -> None:
    checked = guard()
    assert checked.ok
    assert checked.problem is None
    assert checked.offset_measured(4_999) is False
    assert checked.offset_measured(-5_000) is False
    assert checked.ok


@pytest.mark.parametrize(("offset", "words"), [(5_001, "ahead of"), (-7_000, "behind")])
def test_an_offset_beyond_the_bound_stops_signing_until_it_is_back(
    offset: int, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    checked = guard()
    with caplog.at_level(logging.WARNING, logger="cdb_cli.adapters.mexc.clockguard"):
        assert checked.offset_measured(offset) is False
        assert checked.offset_measured(offset) is False  # still broken: counted once
        assert not checked.ok
        assert f"{abs(offset)} ms {words} ours" in (checked.problem or "")
        assert "recvWindow" in (checked.problem or "")
        assert checked.counters["signing_lost"] == 1
        assert checked.offset_measured(0) is False
    assert checked.ok
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]  # lost, then back


def test_without_a_bound_any_offset_is_accepted() -> None:
    checked = guard(None)
    assert checked.offset_measured(10**9) is False
    assert checked.ok


def test_a_timestamp_refusal_holds_until_a_signed_request_succeeds() -> None:
    checked = guard()
    checked.refused(TIMESTAMP)
    assert not checked.ok
    assert checked.problem == TIMESTAMP.message
    assert checked.offset_measured(10) is True  # a sane clock: probe with a signed request
    assert not checked.ok
    checked.refused(VenueRejected("recvWindow", code=10073))  # the probe refused as well
    assert not checked.ok
    checked.signed()
    assert checked.ok
    assert checked.offset_measured(10) is False  # nothing to probe any more
    assert checked.counters["signing_lost"] == 1


def test_other_failures_say_nothing_about_signing() -> None:
    checked = guard()
    for error in (
        VenueRejected("Unknown order sent.", code=-2011),
        VenueRejected("Insufficient balance", code=30004),
        VenueServerError("Service Unavailable", code=503),
        RateLimited("Too Many Requests", retry_after=1.0),
    ):
        checked.refused(error)
    assert checked.ok
    assert checked.counters == Counter()


def test_the_clock_problem_is_shown_first_and_both_must_go() -> None:
    checked = guard()
    checked.refused(TIMESTAMP)
    assert checked.offset_measured(60_000) is False  # no probe while the clock is off
    assert (checked.problem or "").startswith("MEXC's clock is 60000 ms ahead of ours")
    assert checked.offset_measured(0) is True
    assert checked.problem == TIMESTAMP.message
    checked.signed()
    assert checked.ok
    assert checked.counters["signing_lost"] == 1  # ok flipped to False once


@pytest.mark.anyio
@pytest.mark.parametrize("offset_ms", [10_000, -10_000])
async def test_clock_skew_beyond_recv_window_stops_placing_until_it_is_gone(
    client: MexcHttpClient, sim: SimServer, offset_ms: int
) -> None:
    execution = new_client(client, poll_interval_s=0.1)
    await execution.start()
    try:
        assert execution.signing_ok
        sim.exchange.faults.update({"clock_offset_ms": offset_ms})
        await wait_for(lambda: not execution.signing_ok)
        assert "recvWindow" in (execution.signing_problem or "")
        before = len(posts(sim))
        refused = await execution.place(record("ck-1", Side.BUY, quote=Decimal(50)))
        assert refused.status == "REJECTED"
        assert "cannot sign" in refused.reason
        assert len(posts(sim)) == before
        assert sim_orders(sim, "ck-1") == []
        sim.exchange.faults.update({"clock_offset_ms": 0})
        await wait_for(lambda: execution.signing_ok)
        assert execution.signing_problem is None
        placed = await execution.place(record("ck-2", Side.BUY, quote=Decimal(50)))
        assert placed.status in {"NEW", "FILLED"}
        assert len(sim_orders(sim, "ck-2")) == 1
    finally:
        await execution.stop()


class RacingClock:
    """Our clock in ms; while ``racing`` each reading is 10 s later than the one before."""

    def __init__(self) -> None:
        self.racing = False
        self.ahead = 0

    def __call__(self) -> int:
        if self.racing:
            self.ahead += 10_000
        return time.time_ns() // 1_000_000 + self.ahead


@pytest.mark.anyio
async def test_timestamps_refused_even_after_a_resync_stop_placing(sim: SimServer) -> None:
    clock = RacingClock()
    async with MexcHttpClient(
        sim.rest_url, Credentials(API_KEY, SECRET), clock_ms=clock, backoff_base=0.01
    ) as http:
        # No clock bound: only MEXC's answers decide here.
        execution = new_client(http, poll_interval_s=0.1, max_clock_skew_ms=10**12)
        await execution.start()
        try:
            clock.racing = True
            refused = await execution.place(record("ts-1", Side.BUY, quote=Decimal(50)))
            assert refused.status == "REJECTED"
            assert "timestamp" in refused.reason
            assert not execution.signing_ok
            assert sim_orders(sim, "ts-1") == []
            again = await execution.place(record("ts-2", Side.BUY, quote=Decimal(50)))
            assert "cannot sign" in again.reason
            clock.racing = False  # a steady clock again: the measured offset works
            await wait_for(lambda: execution.signing_ok)
            placed = await execution.place(record("ts-3", Side.BUY, quote=Decimal(50)))
            assert placed.status in {"NEW", "FILLED"}
        finally:
            await execution.stop()


@pytest.mark.anyio
async def test_sim_clock_offset_moves_server_time(sim_config: SimConfig) -> None:
    async with (
        SimServer(SimExchange(sim_config)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as http,
    ):
        server.exchange.faults.update({"clock_offset_ms": -20_000})
        assert abs(await http.sync_time() + 20_000) < 2_000
        assert (await http.account())["USDT"].free == 10_000  # signed with the measured offset
