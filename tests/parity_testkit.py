"""A real paper run for ``cdb parity``'s tests: the loop trading against the in-process MEXC
simulator (real WebSocket and REST clients, protobuf frames, the simulator's market moving on
its own), in segments with a restart between them, into a real store (SQLite or PostgreSQL);
and the tampering a test applies to what it stored."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from market_testkit import FAST_STRATEGY, eventually
from paper_testkit import simulator_loop
from sqlalchemy import create_engine, text

from cdb_cli.kernel import open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.settings import Settings

__all__ = ["SYMBOL", "StoredRun", "delete_trade_at", "parity_settings", "stored_paper_run"]

SYMBOL = "BTCUSDT"
SECOND = 1_000_000_000


def parity_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings that make the strategy trade on half-second bars of the simulator's market."""
    values: dict[str, Any] = {
        "database_url": database_url,
        **FAST_STRATEGY,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class StoredRun:
    """What the paper run did: its run ids (one per segment) and its counts."""

    run_ids: list[str]
    fills: int
    signals: int


async def _paper_run(
    settings: Settings, segments: int, fills: int, seed: int, operator: bool, stop_working: bool
) -> StoredRun:
    from cdb_cli.adapters.mexc.history import kline_warm_up
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
    from cdb_cli.adapters.mexc.sim.server import SimServer
    from cdb_cli.adapters.mexc.ws import MexcDataClient

    config = SimConfig(symbols=(SYMBOL,), seed=seed, tick_interval=0.05, history_minutes=60)
    run = StoredRun([], 0, 0)
    async with SimServer(SimExchange(config)) as server, MexcHttpClient(server.rest_url) as http:
        instruments = await http.exchange_info([SYMBOL])
        for segment in range(segments):
            store = open_store(settings, create_if_new=True)
            warm_up = kline_warm_up(http, bars=50)
            runtime = simulator_loop(settings, server.ws_url, store, instruments, warm_up=warm_up)
            feed = runtime.feed
            assert isinstance(feed, MexcDataClient)
            stop = asyncio.Event()
            task = asyncio.create_task(runtime.run(stop))
            try:
                await asyncio.wait_for(runtime.started.wait(), 10)
                await feed.wait_connected(10)
                if operator and segment == segments - 1:
                    await _halt_and_reset(settings, runtime, fills // 2)
                await eventually(
                    partial(_filled, runtime, fills),
                    timeout_s=60,
                    what=f"{fills} fills in the segment",
                )
                if stop_working and segment < segments - 1:  # stopped with an order working
                    await eventually(partial(_working, runtime), timeout_s=60, what="an order")
            finally:
                stop.set()
                summary = await asyncio.wait_for(task, 15)
                store.close()
            run.run_ids.append(summary.run_id)
            run.fills += summary.fills
            run.signals += summary.signals
    return run


def _filled(runtime: TradingLoop, count: int) -> bool:
    return runtime.pipeline is not None and runtime.pipeline.stats.fills >= count


def stored_paper_run(
    settings: Settings,
    *,
    segments: int = 2,
    fills: int = 6,
    seed: int = 3,
    operator: bool = False,
    stop_working: bool = False,
) -> StoredRun:
    """A paper run of ``segments`` starts (a restart between each), each until it has filled
    ``fills`` orders; with ``operator``, the last is halted (``cdb risk halt``'s record) half-way
    and reset (``cdb risk reset``'s) a few bars later; with ``stop_working`` each but the last is
    stopped while a buy is working (give the paper model a latency), which the next takes
    on."""
    return asyncio.run(_paper_run(settings, segments, fills, seed, operator, stop_working))


def _working(runtime: TradingLoop) -> bool:
    """A buy is working (an exit may find nothing to sell after the restart: a buy fills)."""
    pipeline = runtime.pipeline
    return pipeline is not None and pipeline.execution.pending_buy_quote(SYMBOL) > 0


async def _halt_and_reset(settings: Settings, runtime: TradingLoop, after_fills: int) -> None:
    """An operator's halt once the run has ``after_fills`` fills, and its reset once the strategy
    has signalled twice while halted (the second on a bar closed after the halt), each written
    as the commands write them; returns once the run has resumed."""
    from cdb_cli.engine.halts import halt_trading, reset_halt
    from cdb_cli.engine.risk_inputs import TradingState

    await eventually(partial(_filled, runtime, after_fills), timeout_s=60, what="fills")
    store = open_store(settings)
    try:
        halt_trading(
            store, reason="parity test", actor="tester", flatten=False, run_id=None,
            now_ns=time.time_ns(),
        )  # fmt: skip
        await eventually(partial(_in_state, runtime, TradingState.HALTED), what="the halt")
        pipeline = runtime.pipeline
        assert pipeline is not None
        signals = sum(pipeline.stats.signals.values())
        await eventually(  # the strategy signals while halted: the risk refuses it
            lambda: sum(pipeline.stats.signals.values()) >= signals + 2,
            timeout_s=60,
            what="two signals while halted",
        )
        reset_halt(store, reason="parity test over", actor="tester", run_id=None,
                   now_ns=time.time_ns())  # fmt: skip
        await eventually(partial(_in_state, runtime, TradingState.ACTIVE), what="the reset")
    finally:
        store.close()


def _in_state(runtime: TradingLoop, state: object) -> bool:
    return runtime.pipeline is not None and runtime.pipeline.trading_state is state


def delete_trade_at(database_url: str, ts_ns: int) -> int:
    """Tamper with a stored run: remove its stored trades at ``ts_ns``; how many went."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(
                text("DELETE FROM market_trades WHERE ts_event = :ts"), {"ts": ts_ns}
            )
            return int(result.rowcount)
    finally:
        engine.dispose()
