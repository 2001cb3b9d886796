"""The live rehearsal (the paper one is in ``rehearsal_testkit.py``): the live loop in this
process against the MEXC simulator, with a thin book (each market order fills in several parts)
and one order placement booked at the venue but answered 503 (``accept_then_5xx``); the market
is walked until the bot has bought and exited, and the store must then match the venue to the
last unit."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from rehearsal_testkit import RehearsalFailed, Scope

from cdb_cli.kernel import open_store
from cdb_cli.settings import Settings

__all__ = ["LIVE_LEVEL_QUOTE", "LiveRehearsal", "live_rehearsal", "live_rehearsal_fixture"]


LIVE_LEVEL_QUOTE = Decimal(1000)
"""Quote value of each level of the simulator's book in the live rehearsal: the bot's market
orders (a few thousand USDT) sweep several levels, so each fills in several parts (one venue
trade, one stored fill per level)."""


@dataclass(frozen=True)
class LiveRehearsal:
    """What a live rehearsal left: its store (``settings.database_url``) and what happened."""

    database_url: str
    settings: Settings
    run_id: str
    accepted_then_5xx: str
    """The client order id of the order MEXC booked but answered 503 for."""
    trades_per_order: dict[str, int]
    """Venue trades (= stored fills) per client order id."""
    venue_statuses: dict[str, str]
    """Each venue order's final status, by client order id."""
    counters: dict[str, int]
    """The live execution client's counters (``outcome_unknown``, ``resolved_by_query`` …)."""
    log: Path
    """cdb's log lines of the run at INFO (``cdb_cli.*``), e.g. the placer's warning
    "MEXC did not confirm order … asking for it, never resending"."""
    workdir: Path


async def live_rehearsal(
    workdir: Path,
    *,
    entry: Literal["market", "limit"] = "market",
    level_quote: Decimal = LIVE_LEVEL_QUOTE,
    **overrides: Any,
) -> LiveRehearsal:
    """The live loop in this process against the MEXC simulator: a thin book (``level_quote``
    per level), the first order placement booked but answered 503 (``accept_then_5xx``), and a
    market walk down, up (the buy) and down (the exit). Waits until both are filled at the venue
    and booked, stops the run, and checks that the store matches the venue
    (``live_testkit.assert_store_matches_the_venue``).

    ``entry="market"``: the buy and the exit are MARKET orders that sweep several levels at once,
    so each fills in several parts (one venue trade each) and goes FILLED in one step.
    ``entry="limit"``: the buy is a LIMIT order (CDB_LIVE_ENTRY_ORDER=limit) that rests; the walk
    then trades through its price step by step, one level a step, so MEXC reports it
    PARTIALLY_FILLED and then FILLED; the exit is a MARKET order. ``overrides`` are settings."""
    from live_testkit import account_of, live_settings

    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    if entry == "limit":
        overrides = {"live_entry_order": "limit", "live_limit_timeout_seconds": 120} | overrides
    # in the rehearsal's folder, not the user data dir (a module-scoped fixture runs before the
    # per-test isolation of tests/conftest.py)
    overrides = {"backup_dir": workdir / "backups", "spill_dir": workdir / "unsaved"} | overrides
    with _without_cdb_variables():  # this process's CDB_* must not change the rehearsal
        settings = live_settings(workdir, **overrides)
    log = workdir / "live.log"
    with _logged_to(log):
        server, runtime, counters = await _live_run(settings, level_quote, entry)
    account = account_of(server)
    orders = sorted(account.orders.values(), key=lambda order: order.time_ms)
    trades: dict[str, int] = {}
    for trade in account.trades:
        name = str(trade["clientOrderId"])
        trades[name] = trades.get(name, 0) + 1
    if not any(count > 1 for count in trades.values()):
        raise RehearsalFailed(f"no order filled in parts: trades per order {trades}")
    return LiveRehearsal(
        database_url=settings.database_url,
        settings=settings,
        run_id=runtime.run_id,
        accepted_then_5xx=str(orders[0].client_order_id),
        trades_per_order=trades,
        venue_statuses={str(o.client_order_id): o.status for o in orders},
        counters=counters,
        log=log,
        workdir=workdir,
    )


async def _live_run(
    settings: Settings, level_quote: Decimal, entry: str
) -> tuple[Any, Any, dict[str, int]]:
    """Run the live loop through the walk; the (stopped) simulator, the loop, the client's
    counters."""
    from live_testkit import assert_store_matches_the_venue, live_run, round_trip_booked, sim_config

    from cdb_cli.adapters.mexc.sim.exchange import SimExchange
    from cdb_cli.adapters.mexc.sim.server import SimServer

    async with SimServer(SimExchange(sim_config(level_quote=level_quote))) as server:
        store = open_store(settings, create_if_new=True)
        try:
            async with live_run(settings, server, store) as (runtime, _stop, _task):
                server.exchange.faults.update({"accept_then_5xx": 1})
                await (_walk_limit_entry(server) if entry == "limit" else _walk(server))
                await round_trip_booked(store, server)
                client: Any = getattr(runtime.venue, "client", None)
                counters = dict(client.counters) if client is not None else {}
            if server.exchange.faults.accept_then_5xx:
                raise RehearsalFailed("no order was placed while accept_then_5xx was armed")
            assert_store_matches_the_venue(store, server)
        finally:
            store.close()
    return server, runtime, counters


@contextmanager
def _without_cdb_variables() -> Iterator[None]:
    saved = {name: value for name, value in os.environ.items() if name.startswith("CDB_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _logged_to(path: Path) -> Iterator[None]:
    """cdb's log records (``cdb_cli.*``, INFO and up) also go to ``path`` meanwhile."""
    logger = logging.getLogger("cdb_cli")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


async def _walk(server: Any) -> None:
    from live_testkit import MOVES, walk

    await walk(server, MOVES)


async def _walk_limit_entry(server: Any) -> None:
    """Down, then up until the limit buy rests at MEXC; then through its price one level a step
    until it has filled (PARTIALLY_FILLED first); then down for the exit."""
    from live_testkit import MOVES, SYMBOL, account_of, walk
    from market_testkit import eventually

    resting: list[Any] = []
    walked = 0
    while not resting and walked < len(MOVES):
        await walk(server, [MOVES[walked]])
        walked += 1
        resting = [o for o in account_of(server).orders.values() if o.is_open]
    if not resting:
        raise RehearsalFailed("the limit buy never rested at the venue")
    (order,) = resting
    while order.is_open:
        before: Decimal = order.executed_qty

        def filled_more(before: Decimal = before) -> bool:
            return bool(order.executed_qty > before)

        await server.step({SYMBOL: order.price - Decimal("0.01")})
        await eventually(filled_more, what="a part of the limit buy")
        await asyncio.sleep(0.55)  # a bar each: the parts reach the bot one by one
    await walk(server, [move for move in MOVES[walked:] if move < 0] or [-2] * 6)


def live_rehearsal_fixture(
    entry: Literal["market", "limit"] = "market", scope: Scope = "module"
) -> Any:
    """A pytest fixture (module-scoped by default) giving one :class:`LiveRehearsal`."""
    import pytest

    @pytest.fixture(scope=scope)
    def live(tmp_path_factory: pytest.TempPathFactory) -> LiveRehearsal:
        workdir = tmp_path_factory.mktemp(f"live-rehearsal-{entry}")
        return asyncio.run(live_rehearsal(workdir, entry=entry))

    return live
