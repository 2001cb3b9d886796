"""Placing through ``MexcExecutionClient`` against the simulator's injected faults: sent once, ever.

The client is not started (no poller, no stream), so a fault hits exactly the request under test.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimServer
from cdb_cli.adapters.mexc.tracker import NEVER_REACHED
from cdb_cli.engine.events import Side
from cdb_cli.engine.live_execution import MARKET_REFUSED

from .conftest import API_KEY, SECRET
from .execution_kit import (
    BTC,
    drain,
    fills,
    new_client,
    posts,
    quiet_client,
    record,
    sim_orders,
    states,
    thin_levels,
    wait_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim_config(sim_config: SimConfig) -> SimConfig:
    return thin_levels(sim_config)


@pytest.fixture
async def quiet(client: MexcHttpClient) -> MexcExecutionClient:
    """Not started: only the requests a test makes reach the simulator."""
    return await quiet_client(client)


async def test_accepted_then_5xx_is_resolved_by_query_and_never_resent(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"accept_then_5xx": 1})
    before = len(posts(sim))
    placed = await quiet.place(record("a5-1", Side.BUY, quote=Decimal(50)))
    assert placed.status == "FILLED"
    assert placed.venue_order_id
    assert placed.filled_quantity > 0
    assert len(sim_orders(sim, "a5-1")) == 1
    assert len(posts(sim)) - before == 1
    assert (quiet.counters["outcome_unknown"], quiet.counters["resolved_by_query"]) == (1, 1)
    assert sum(f.quantity for f in fills(drain(quiet), "a5-1")) == placed.filled_quantity
    assert "HTTP 503" in placed.fault
    assert placed.fault.endswith("asked for it: FILLED")  # what cdb parity names
    again = await quiet.place(record("a5-1", Side.BUY, quote=Decimal(50)))  # a caller's retry
    assert again == replace(placed, fault="")  # its state, no second fault
    assert len(posts(sim)) - before == 1


async def test_accepted_limit_then_5xx_rests_once(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"accept_then_5xx": 1})
    price = sim.exchange.markets[BTC].price - 50
    placed = await quiet.place(
        record("a5-2", Side.BUY, "LIMIT", quantity=Decimal("0.001"), price=price)
    )
    assert placed.status == "NEW"
    assert placed.filled_quantity == 0
    assert len(sim_orders(sim, "a5-2")) == 1
    assert "a5-2" in quiet.tracked()


async def test_5xx_before_acceptance_is_rejected_as_never_reached(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"http_5xx": 1})
    placed = await quiet.place(record("x5-1", Side.BUY, quote=Decimal(50)))
    assert (placed.status, placed.reason) == ("REJECTED", NEVER_REACHED)
    assert sim_orders(sim, "x5-1") == []
    assert len(posts(sim)) == 1
    assert quiet.counters["never_reached"] == 1
    assert "x5-1" not in quiet.tracked()
    assert states(drain(quiet), "x5-1")[-1].reason == NEVER_REACHED
    assert (await quiet.place(record("x5-1", Side.BUY, quote=Decimal(50)))).status == "REJECTED"
    assert len(posts(sim)) == 1  # the same client order id is never sent again


async def test_an_outcome_still_unknown_is_pending_until_polling_decides(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    # The send fails, then every lookup fails too (3 lookups x 4 attempts of the REST client).
    lookups = quiet.resolve_attempts * quiet.http.max_attempts
    sim.exchange.faults.update({"http_5xx": 1 + lookups})
    placed = await quiet.place(record("un-1", Side.BUY, quote=Decimal(50)))
    assert placed.status == "PENDING_NEW"
    assert "un-1" in quiet.tracked()
    assert sim.exchange.faults.http_5xx == 0
    for _ in range(quiet.resolve_attempts - 1):
        await quiet.poll_once()
        assert "un-1" in quiet.tracked()
    await quiet.poll_once()
    (final,) = states(drain(quiet), "un-1")
    assert (final.status, final.reason) == ("REJECTED", NEVER_REACHED)
    assert sim_orders(sim, "un-1") == []
    assert len(posts(sim)) == 1
    assert quiet.tracked() == []


async def test_a_timeout_after_sending_is_found_by_polling_once_mexc_answers(
    sim: SimServer,
) -> None:
    async with MexcHttpClient(
        sim.rest_url, Credentials(API_KEY, SECRET), timeout=0.2, backoff_base=0.01
    ) as http:
        execution = new_client(http)
        await execution.instrument(BTC)
        await http.sync_time()
        sim.exchange.faults.update({"delay": 0.4})  # MEXC books the order, we stop waiting
        placed = await execution.place(record("to-1", Side.BUY, quote=Decimal(50)))
        assert placed.status == "PENDING_NEW"  # the lookups timed out too
        assert execution.counters["outcome_unknown"] == 1
        sim.exchange.faults.update({"delay": 0.0})
        await wait_for(lambda: len(sim_orders(sim, "to-1")) == 1)  # the delayed POST is booked
        await execution.poll_once()
    seen = drain(execution)
    final = states(seen, "to-1")[-1]
    assert final.status == "FILLED"
    assert sum(f.quantity for f in fills(seen, "to-1")) == final.filled_quantity
    assert len(sim_orders(sim, "to-1")) == 1
    assert len(posts(sim)) == 1
    assert execution.tracked() == []


async def test_429_backs_off_and_the_order_goes_through_once(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.faults.update({"http_429": 2, "retry_after": 0.5})
    placed = await quiet.place(record("rl-1", Side.BUY, quote=Decimal(50)))
    assert placed.status != "REJECTED"
    sent = posts(sim)
    assert len(sent) == 3
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(sent))
    assert len(sim_orders(sim, "rl-1")) == 1


async def test_refused_before_sending_by_the_filters(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    tiny = await quiet.place(record("f-1", Side.BUY, quote=Decimal("0.5")))
    assert tiny.status == "REJECTED"
    assert "below the minimum" in tiny.reason
    dust = await quiet.place(record("f-2", Side.SELL, quantity=Decimal("0.0000001")))
    assert dust.status == "REJECTED"
    cheap = await quiet.place(
        record("f-3", Side.BUY, "LIMIT", quantity=Decimal("0.00001"), price=Decimal(10))
    )
    assert "notional" in cheap.reason
    no_quantity = await quiet.place(record("f-4", Side.SELL, quote=Decimal(50)))
    assert "needs a quantity" in no_quantity.reason
    assert posts(sim) == []


async def test_venue_rejection_carries_mexcs_message(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    rejected = await quiet.place(
        record("vr-1", Side.SELL, "LIMIT", quantity=Decimal(5), price=Decimal(100_000))
    )  # 5 BTC held: 1
    assert rejected.status == "REJECTED"
    assert "insufficient" in rejected.reason.lower()
    assert sim_orders(sim, "vr-1") == []


async def test_a_market_order_refused_for_its_type_is_rejected_for_the_engine_to_resend(
    quiet: MexcExecutionClient, sim: SimServer
) -> None:
    sim.exchange.tradability.no_market.add(BTC)
    refused = await quiet.place(record("nm-1", Side.BUY, quote=Decimal(50)))
    assert refused.status == "REJECTED"
    assert refused.reason.startswith(f"{MARKET_REFUSED}: ")
    assert "30051 api market order is disabled" in refused.reason
    assert (await quiet.instrument(BTC)).market_orders is False
    assert sim_orders(sim, "nm-1") == []
    above = (sim.exchange.markets[BTC].price * Decimal("1.005")).quantize(Decimal("0.01"))
    limit = await quiet.place(record("nm-2", Side.BUY, "LIMIT", quote=Decimal(50), price=above))
    assert limit.status != "REJECTED"
    (placed,) = sim_orders(sim, "nm-2")
    assert placed.type == "LIMIT"
    assert placed.executed_qty > 0  # it crossed the book, like the MARKET order it replaces
