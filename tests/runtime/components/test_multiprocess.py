"""The five components as separate OS processes over the real Redis and PostgreSQL, against
`cdb sim-exchange`, make the same decisions as one process fed the same market events.

The component run: `cdb sim-exchange` (seeded market model, a step every 50 ms) and
`cdb run --paper --component NAME` for each of the five components, 1-second bars and small EMA
periods so that signals, approvals and fills come within seconds; then SIGTERM (exit 0 within 10
s). The reference: the market events the components consumed (the `market_data` stream, which the
store holds too) fed through the single-process `TradingLoop` with a clock at each event's time.
Decisions (verdict, amounts, failing reasons and the portfolio state they saw), orders and fills
must be equal, in order. And ``cdb parity`` (its service) re-runs the stored component run in
one process and finds every decision equal and nothing unexplained.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from market_testkit import eventually, free_port
from processes_testkit import (
    CONSUMERS,
    TUNING,
    Components,
    audits,
    drained,
    free_port_block,
    sim_exchange,
    sim_up,
    wait_while_running,
)

from cdb_cli.engine.events import (
    Bar,
    Event,
    QuoteTick,
    RiskDecision,
    TradeTick,
    TradingSignal,
    decode_event,
)
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components import COMPONENTS
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.services.parity import run_parity
from cdb_cli.settings import Settings

SYMBOLS = ("BTCUSDT", "ETHUSDT")
SECOND = 1_000_000_000


def stream_events(redis_url: str, prefix: str) -> list[Event]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return [
            decode_event(fields[b"event"])
            for _, fields in client.xrange(f"{prefix}:market_data", "-", "+")
        ]
    finally:
        client.close()


class ClockedQueue(asyncio.Queue[Event]):
    """The reference feed: each event taken sets the clock to its time (the event-time clock of
    the components' decisions)."""

    def __init__(self, clock: Any) -> None:
        super().__init__()
        self.clock = clock
        self.drained = asyncio.Event()

    def get_nowait(self) -> Event:
        event = super().get_nowait()
        self.clock.now_ns = event.ts_event
        if self.empty():
            self.drained.set()
        return event


class ReplayFeed:
    def __init__(self, events: list[Event], clock: Any) -> None:
        self.events = ClockedQueue(clock)
        for event in events:
            self.events.put_nowait(event)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def reference_run(
    settings: Settings, events: list[Event], instruments: dict[str, Any]
) -> tuple[Any, Any]:
    from cdb_cli.engine.bus import InMemoryBus
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.runtime.loop import TradingLoop
    from cdb_cli.runtime.paper import PaperVenue

    async def scenario() -> tuple[Any, Any]:
        store = open_store(settings, create_if_new=True)
        clock = TestClock(events[0].ts_event)
        feed = ReplayFeed(events, clock)
        runtime = TradingLoop(
            settings,
            venue=PaperVenue(),
            store=store,
            bus=InMemoryBus(),
            feed=feed,
            clock=clock,
            symbols=list(SYMBOLS),
            instruments=instruments,
            bar_interval_ns=SECOND,
            flush_interval_s=0.05,
        )
        halt = asyncio.Event()
        task = asyncio.create_task(runtime.run(halt))
        await asyncio.wait_for(feed.events.drained.wait(), 30)
        await eventually(  # the last event handled
            lambda: runtime.summary.market_events == len(events), what="every event handled"
        )
        halt.set()
        summary = await asyncio.wait_for(task, 15)
        return store, summary

    return asyncio.run(scenario())


def decision_view(decision: RiskDecision) -> tuple[Any, ...]:
    return (
        decision.symbol,
        decision.ts_event,
        decision.side,
        decision.verdict,
        decision.requested_quote,
        decision.final_quote,
        tuple(check.code for check in decision.checks if not check.passed),
        tuple(sorted(decision.state.items())),
    )


@pytest.mark.slow
def test_components_in_processes_decide_as_one_process(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where the components' logs are (wait_while_running reads them)
    open_store(Settings(database_url=postgres_database), create_if_new=True).close()
    prefix = redis_prefix  # its streams are deleted afterwards
    sim_port = free_port()
    sim = sim_exchange(sim_port, SYMBOLS, tmp_path)
    rest = f"http://127.0.0.1:{sim_port}"
    base_port = free_port_block(5)
    ports = {name: base_port + i for i, name in enumerate(COMPONENTS)}
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "CDB_DATABASE_URL": postgres_database,
        "CDB_BUS_URL": redis_url,
        "CDB_BUS_PREFIX": prefix,
        "CDB_MEXC_REST_URL": rest,
        "CDB_MEXC_WS_URL": f"ws://127.0.0.1:{sim_port}/ws",
        "CDB_SYMBOLS": ",".join(SYMBOLS),
        "CDB_HTTP_PORT": str(base_port),
        **TUNING,
    }
    components = Components(env, tmp_path)
    processes = components.processes
    start = components.start

    def started() -> set[str]:
        return {detail.get("component", "") for detail in audits(postgres_database, START_ACTION)}

    def traded() -> bool:
        store = open_store(Settings(database_url=postgres_database))
        try:
            return len(store.fills()) >= 2 and len(store.events(RiskDecision)) >= 4
        finally:
            store.close()

    try:
        wait_while_running(lambda: sim_up(rest), 20, "the simulator", [sim])
        instruments = asyncio.run(_instruments(rest))
        for component in CONSUMERS:  # consumer groups first: they start at the stream's end
            start(component)
        wait_while_running(
            lambda: set(CONSUMERS) <= started(), 40, "the consumers", list(processes.values())
        )
        start("marketdata")
        wait_while_running(
            lambda: "marketdata" in started(), 20, "marketdata", list(processes.values())
        )
        wait_while_running(traded, 40, "decisions and fills", list(processes.values()))
        errors = {"marketdata": components.stop("marketdata")}
        wait_while_running(
            lambda: drained(redis_url, prefix), 30, "the consumers to finish the streams",
            list(processes.values()),
        )  # fmt: skip
        for component in CONSUMERS:
            health = httpx.get(f"http://127.0.0.1:{ports[component]}/health", timeout=5)
            assert health.status_code == 200, (component, health.text)
        for component in CONSUMERS:
            errors[component] = components.stop(component)
    finally:
        components.kill_all()
        sim.kill()
        sim.communicate()
    for component, err in errors.items():
        assert f"Stopped component {component}" in err, err[-2000:]
        assert "gave up waiting" not in err, err[-2000:]
    assert {d.get("component") for d in audits(postgres_database, STOP_ACTION)} >= {
        "marketdata",
        *CONSUMERS,
    }

    # What the components consumed: the stream, which the store holds as well.
    stream = stream_events(redis_url, prefix)
    market = [e for e in stream if isinstance(e, TradeTick | QuoteTick)]
    bars = [e for e in stream if isinstance(e, Bar)]
    assert market
    assert bars
    assert all(b.closed and b.closed_at > 0 for b in bars)
    components = open_store(Settings(database_url=postgres_database))
    try:
        stored = {e.event_id for e in components.events(TradeTick)} | {
            e.event_id for e in components.events(QuoteTick)
        }
        assert stored == {e.event_id for e in market}
        decisions = components.events(RiskDecision)
        signals = components.events(TradingSignal)
        orders = sorted(components.orders(), key=lambda o: (o.ts_created, o.client_order_id))
        fills = components.fills()
    finally:
        components.close()
    assert len(decisions) == len(signals) >= 4
    assert {d.signal_id for d in decisions} == {s.event_id for s in signals}
    assert any(d.verdict in ("approved", "reduced") for d in decisions)
    assert fills

    # The same events through one process.
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'reference.db'}",
        **{name.removeprefix("CDB_").lower(): value for name, value in TUNING.items()},
    )
    reference_store, summary = reference_run(settings, market, instruments)
    try:
        expected = reference_store.events(RiskDecision)
        expected_orders = sorted(
            reference_store.orders(), key=lambda o: (o.ts_created, o.client_order_id)
        )
        expected_fills = reference_store.fills()
    finally:
        reference_store.close()
    assert summary.market_events == len(market)
    assert [decision_view(d) for d in decisions] == [decision_view(d) for d in expected]
    assert [
        (o.symbol, o.side, o.status, o.quote_amount, o.quantity, o.ts_created, o.ts_updated)
        for o in orders
    ] == [
        (o.symbol, o.side, o.status, o.quote_amount, o.quantity, o.ts_created, o.ts_updated)
        for o in expected_orders
    ]
    assert [(f.symbol, f.side, f.quantity, f.price, f.fee, f.ts_event) for f in fills] == [
        (f.symbol, f.side, f.quantity, f.price, f.fee, f.ts_event) for f in expected_fills
    ]
    assert sum(f.quantity * f.price for f in fills) > Decimal(0)

    # cdb parity re-runs the component run in one process from what it stored: equal too.
    store = open_store(Settings(database_url=postgres_database))
    try:
        parity = run_parity(store, Settings(database_url=postgres_database)).report
        symbol = decisions[0].symbol  # both symbols are traded, one is compared
        one = run_parity(store, Settings(database_url=postgres_database), symbols=[symbol])
    finally:
        store.close()
    assert {d.symbol for d in one.report.decisions} == {symbol}
    assert len(one.report.decisions) == sum(1 for d in decisions if d.symbol == symbol)
    assert {d.outcome for d in one.report.decisions} == {"equal"}
    assert len(parity.decisions) == len(decisions)
    assert {d.outcome for d in parity.decisions} == {"equal"}
    assert [d.cause for d in parity.differences if d.cause in ("unexplained", "market_data")] == []
    assert parity.pnl_run == parity.pnl_replay


async def _instruments(rest: str) -> dict[str, Any]:
    from cdb_cli.adapters.mexc.http import MexcHttpClient

    async with MexcHttpClient(rest) as http:
        return await http.exchange_info(list(SYMBOLS))
