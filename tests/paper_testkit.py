"""The paper loop in a test: a real SQLite store, the in-process bus and a queue the test fills
(``session``), with the warm-up history and minute-by-minute trading the paper tests share.
``pythonpath`` in pyproject.toml makes this module importable from every test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cdb_testkit import QueueFeed
from market_testkit import SYMBOL, eventually, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.runs import RESET_ACTION
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import RunSummary
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.paper import PaperVenue
from cdb_cli.settings import Settings

__all__ = [
    "MINUTE",
    "SECOND",
    "SYMBOL",
    "T0",
    "CountedChecks",
    "FlakyStore",
    "SimSession",
    "paper_settings",
    "session",
    "simulator_loop",
    "simulator_session",
]

MINUTE = 60 * 1_000_000_000
SECOND = 1_000_000_000
T0 = 1_704_067_200 * SECOND  # 2024-01-01T00:00:00Z


def slide(n: int, start: float = 100.0) -> list[tuple[int, float, float]]:
    """History for the warm-up: n closed minutes sliding down a cent each."""
    return [(T0 - (n - i) * MINUTE, start - 0.01 * i, 1.0) for i in range(n)]


async def history(symbol: str) -> Sequence[tuple[int, float, float]]:
    return slide(40)


def paper_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'paper.db'}", paper_latency_ms=0)


class CountedChecks:
    """The real store, counting the checks for an operator's reset: the paper loop makes one
    at every flush (after its check for halts), the risk component one a second. A count that
    went up by two means a whole check ran after it was read; a test that uses it never asks
    for resets itself."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.reset_checks = 0

    def audits(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("action") == RESET_ACTION:
            self.reset_checks += 1
        return self.inner.audits(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def flushes(self, count: int = 2) -> None:
        """Wait until the loop has checked for resets ``count`` more times."""
        # named for the paper loop, where each check is one flush
        target = self.reset_checks + count
        await eventually(lambda: self.reset_checks >= target, what=f"{count} more flushes")


async def session(
    settings: Settings,
    scenario: Callable[[TradingLoop, QueueFeed, TestClock, Store], Awaitable[None]],
    *,
    start_ns: int = T0,
    store: Store | None = None,
    **runtime_options: Any,
) -> tuple[RunSummary, TradingLoop]:
    """Run the loop (flushing every 20 ms) around ``scenario``, then stop it; ``store``
    (closed afterwards) is the settings' own unless given."""
    store = store or open_store(settings, create_if_new=True)
    clock = TestClock(start_ns)
    feed = QueueFeed()
    runtime = TradingLoop(
        settings,
        venue=PaperVenue(),
        store=store,
        bus=InMemoryBus(),
        feed=feed,
        clock=clock,
        symbols=[SYMBOL],
        warm_up=history,
        flush_interval_s=0.02,
        **runtime_options,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    started = asyncio.create_task(runtime.started.wait())
    try:
        # started, or refused at the start (the run's error is raised below, at once)
        await asyncio.wait({task, started}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert task.done() or runtime.started.is_set(), "the paper loop did not start in 10 s"
        if not task.done():
            await scenario(runtime, feed, clock, store)
    finally:
        started.cancel()
        stop.set()
        summary = await asyncio.wait_for(task, 10)
        store.close()
    return summary, runtime


async def trade_minutes(
    feed: QueueFeed, clock: TestClock, start_minute: int, prices: list[float], volume: float
) -> None:
    """One price per minute, traded every 10 s (so the last price is never stale); the clock
    moves with the trades, as a wall clock would, one trade at a time."""
    for i, price in enumerate(prices):
        for second in range(0, 60, 10):
            ts = T0 + (start_minute + i) * MINUTE + second * SECOND
            clock.set_time(ts)
            feed.events.put_nowait(trade(ts, price, quantity=volume if second == 0 else 0.1))
            await eventually(feed.events.empty)


class SimSession:
    """A paper loop trading against the MEXC simulator: the real WebSocket and REST clients,
    protobuf frames, a real SQLite store; half-second bars, since a test cannot wait minutes."""

    def __init__(self, server: Any, runtime: TradingLoop, store: Store) -> None:
        self.server = server
        self.runtime = runtime
        self.store = store
        self.summary: RunSummary | None = None


def simulator_loop(
    settings: Settings, ws_url: str, store: Store, instruments: Any, **options: Any
) -> TradingLoop:
    """The paper loop on the simulator's WebSocket (deals and book ticker of SYMBOL):
    half-second bars, since a test cannot wait minutes; ``options`` for the loop (a warm-up)."""
    from cdb_cli.adapters.clock import LiveClock
    from cdb_cli.adapters.mexc.ws import MexcDataClient, book_ticker_topic, deals_topic

    return TradingLoop(
        settings,
        venue=PaperVenue(),
        store=store,
        bus=InMemoryBus(),
        feed=MexcDataClient(ws_url, [deals_topic(SYMBOL), book_ticker_topic(SYMBOL)]),
        clock=LiveClock(),
        symbols=[SYMBOL],
        instruments=instruments,
        bar_interval_ns=SECOND // 2,
        bar_grace_ns=SECOND // 10,
        flush_interval_s=0.05,
        **options,
    )


@contextlib.asynccontextmanager
async def simulator_session(settings: Settings, *, seed: int = 3) -> AsyncIterator[SimSession]:
    """Start the simulator (prices move only when the test steps them) and the loop against it;
    on the way out stop the loop, keep its summary and close the store."""
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
    from cdb_cli.adapters.mexc.sim.server import SimServer
    from cdb_cli.adapters.mexc.ws import MexcDataClient

    config = SimConfig(symbols=(SYMBOL,), seed=seed, tick_interval=None, history_minutes=60)
    async with SimServer(SimExchange(config)) as server, MexcHttpClient(server.rest_url) as http:
        instruments = await http.exchange_info([SYMBOL])
        store = open_store(settings, create_if_new=True)
        runtime = simulator_loop(settings, server.ws_url, store, instruments)
        feed = runtime.feed
        assert isinstance(feed, MexcDataClient)
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        session = SimSession(server, runtime, store)
        try:
            await asyncio.wait_for(runtime.started.wait(), 10)
            await feed.wait_connected(10)
            yield session
        finally:
            stop.set()
            session.summary = await asyncio.wait_for(task, 10)
            store.close()


class FlakyStore:
    """The real store, whose writes fail while ``down`` (a database outage)."""

    WRITES = frozenset(
        {
            "append_events",
            "save_batch",
            "save_order",
            "add_fill",
            "add_equity_snapshot",
            "add_audit",
        }
    )

    def __init__(self, store: Store) -> None:
        self._store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name not in self.WRITES:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                from cdb_cli.engine.errors import DependencyError

                raise DependencyError("database unreachable")
            return attribute(*args, **kwargs)

        return call
