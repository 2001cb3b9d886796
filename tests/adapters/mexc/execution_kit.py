"""Helpers for the tests of ``MexcExecutionClient`` against the in-process simulator.

Tests that inject REST faults use a client without ``start()`` (no poller, no stream), so the
fault hits exactly the request under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.sim import SimConfig, SimServer
from cdb_cli.adapters.mexc.sim.orders import SimOrder
from cdb_cli.engine.events import Side
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState, VenueUpdate
from cdb_cli.engine.records import OrderRecord, OrderStatus, OrderType

from .conftest import API_KEY

BTC = "BTCUSDT"
FAST_STREAM = {"ping_interval": 0.5, "idle_timeout": 2.0, "ack_timeout": 1.0, "backoff_base": 0.05}


def thin_levels(config: SimConfig) -> SimConfig:
    """Thin levels (500 USDT each) so a resting order fills over several market steps."""
    return replace(config, level_quote=Decimal(500))


def record(
    client_id: str,
    side: Side,
    order_type: OrderType = "MARKET",
    *,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    quote: Decimal | None = None,
    status: OrderStatus = "PENDING_NEW",
    venue_order_id: str = "",
) -> OrderRecord:
    return OrderRecord(
        client_order_id=client_id,
        venue_order_id=venue_order_id,
        decision_id=f"d-{client_id}",
        symbol=BTC,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        quote_amount=quote,
        status=status,
        ts_created=1,
        ts_updated=1,
        mode="live",
    )


def new_client(
    http: MexcHttpClient, ws_url: str | None = None, **options: object
) -> MexcExecutionClient:
    settings: dict[str, object] = {
        "poll_interval_s": 0.2,
        "resolve_attempts": 3,
        "resolve_backoff_s": 0.05,
        "stream_options": FAST_STREAM,
    }
    settings.update(options)
    return MexcExecutionClient(http, ws_url, **settings)  # type: ignore[arg-type]


async def quiet_client(http: MexcHttpClient) -> MexcExecutionClient:
    """Not started: only the requests a test makes reach the simulator."""
    execution = new_client(http)
    await execution.instrument(BTC)
    await http.sync_time()
    return execution


async def updates_until(
    execution: MexcExecutionClient,
    done: Callable[[list[VenueUpdate]], bool],
    within: float = 5.0,
) -> list[VenueUpdate]:
    seen: list[VenueUpdate] = []
    async with asyncio.timeout(within):
        while not done(seen):
            seen.append(await execution.updates.get())
    return seen


def drain(execution: MexcExecutionClient) -> list[VenueUpdate]:
    out = []
    while not execution.updates.empty():
        out.append(execution.updates.get_nowait())
    return out


def states(updates: list[VenueUpdate], client_id: str) -> list[VenueOrderState]:
    return [u for u in updates if isinstance(u, VenueOrderState) and u.client_order_id == client_id]


def fills(updates: list[VenueUpdate], client_id: str) -> list[VenueFill]:
    return [u for u in updates if isinstance(u, VenueFill) and u.client_order_id == client_id]


def reached(client_id: str, *statuses: OrderStatus) -> Callable[[list[VenueUpdate]], bool]:
    return lambda seen: any(s.status in statuses for s in states(seen, client_id))


def sim_orders(sim: SimServer, client_id: str) -> list[SimOrder]:
    account = sim.exchange.accounts[API_KEY]
    return [o for o in account.orders.values() if o.client_order_id == client_id]


def posts(sim: SimServer) -> list[float]:
    return [at for at, method, path in sim.requests if (method, path) == ("POST", "/api/v3/order")]


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` (a state of the client's own tasks: there is no event to await)."""
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not true within {within} s")
