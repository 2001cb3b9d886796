"""The paper loop on a real SQLite store and the in-process bus, fed by a queue the test fills:
it warms up, trades, writes everything, stops cleanly, and a restart resumes the same ledger."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import QueueFeed
from market_testkit import eventually, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    OrderApproved,
    RiskDecision,
    Side,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, OrderRecord
from cdb_cli.engine.risk import TradingState
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, STATE_ACTION, trading_status
from cdb_cli.kernel import open_store
from cdb_cli.runtime.paper import START_ACTION, STOP_ACTION, PaperRuntime, RunSummary
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
MINUTE = 60 * 1_000_000_000
SECOND = 1_000_000_000
T0 = 1_704_067_200 * SECOND  # 2024-01-01T00:00:00Z


def slide(n: int, start: float = 100.0) -> list[tuple[int, float, float]]:
    """History for the warm-up: n closed minutes sliding down a cent each."""
    return [(T0 - (n - i) * MINUTE, start - 0.01 * i, 1.0) for i in range(n)]


async def history(symbol: str) -> Sequence[tuple[int, float, float]]:
    return slide(40)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'paper.db'}", paper_latency_ms=0)


async def session(
    settings: Settings,
    scenario: Callable[[PaperRuntime, QueueFeed, TestClock, Store], Awaitable[None]],
    *,
    start_ns: int = T0,
    **runtime_options: Any,
) -> tuple[RunSummary, PaperRuntime]:
    store = open_store(settings, create_if_new=True)
    clock = TestClock(start_ns)
    feed = QueueFeed()
    runtime = PaperRuntime(
        settings,
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
    try:
        await asyncio.wait_for(runtime.started.wait(), 10)
        await scenario(runtime, feed, clock, store)
    finally:
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


def test_paper_loop_trades_writes_everything_and_resumes(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async def trades(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        # a jump on heavy volume: the EMAs cross up (buy), then a drop: they cross down (exit)
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)  # the buy, at this close
        await trade_minutes(feed, clock, 2, [110.5], volume=1.0)  # its first trade fills it
        await eventually(lambda: bool(store.fills()))
        await trade_minutes(feed, clock, 3, [111.0, 112.0], volume=1.0)

    summary, first = asyncio.run(session(settings, trades))
    assert summary.market_events == 30
    assert summary.bars >= 4
    assert summary.signals >= 1
    assert summary.fills >= 1
    store = open_store(settings)
    try:
        assert store.events(TradingSignal)
        decisions = store.events(RiskDecision)
        assert decisions
        assert all(len(d.checks) == 6 for d in decisions)
        orders = store.orders()
        assert orders
        assert all(o.mode == "paper" for o in orders)
        fills = store.fills()
        assert fills
        assert store.positions()
        assert store.equity_snapshots()
        actions = [a.action for a in store.audits()]
        assert actions.count(START_ACTION) == actions.count(STOP_ACTION) == 1
        assert len(store.events(TradeTick)) == 30
    finally:
        store.close()
    ledger = first.pipeline.portfolio if first.pipeline else None
    assert ledger is not None

    async def nothing(*_: object) -> None:
        return None

    with caplog.at_level(logging.INFO, logger="cdb_cli.runtime.paper"):
        resumed, second = asyncio.run(session(settings, nothing, start_ns=T0 + 10 * MINUTE))
    assert resumed.restored_fills == len(fills)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Resumed")]
    cash = f"{ledger.cash.normalize():f}"
    held = 1 if ledger.quantity(SYMBOL) > 0 else 0
    assert said == [
        f"Resumed the paper account: {len(fills)} fills, 0 working orders; cash {cash} USDT, "
        f"{held} positions open"
    ]
    again = second.pipeline.portfolio if second.pipeline else None
    assert again is not None
    assert again.cash == ledger.cash
    assert again.quantity(SYMBOL) == ledger.quantity(SYMBOL)
    assert again.realized_pnl() == ledger.realized_pnl()
    assert again.fees_paid == ledger.fees_paid


def test_a_halt_is_resumed_and_a_reset_picked_up_without_restart(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cdb_cli.runtime.paper")
    store = open_store(settings, create_if_new=True)
    store.add_audit(
        AuditRecord(
            ts_event=T0 - MINUTE,
            action=STATE_ACTION,
            actor="cdb run",
            run_id="pold",
            detail={"state": "halted", "reason": "loss from peak above 10 %"},
        )
    )
    store.close()

    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        assert runtime.pipeline.trading_state is TradingState.HALTED
        await asyncio.to_thread(
            store.add_audit,
            AuditRecord(
                ts_event=T0 + SECOND,
                action=RESET_ACTION,
                actor="ops@desk",
                detail={"reason": "reviewed", "previous": "halted", "ended": "circuit_breaker"},
            ),
        )
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.ACTIVE)  # type: ignore[union-attr]

    asyncio.run(session(settings, scenario))
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Trading")]
    assert resumed == ["Trading resumes: ops@desk ended the circuit breaker's halt: reviewed"]


def test_a_database_with_replays_is_refused(settings: Settings) -> None:
    from cdb_cli.engine.errors import ConfigurationError

    store = open_store(settings, create_if_new=True)
    store.save_order(
        OrderRecord(
            client_order_id="r1",
            decision_id="d1",
            symbol=SYMBOL,
            side=Side.BUY,
            order_type="MARKET",
            quote_amount=Decimal(100),
            status="FILLED",
            ts_created=1,
            ts_updated=1,
            mode="replay",
        )
    )
    store.close()

    async def nothing(*_: object) -> None:
        return None

    with pytest.raises(ConfigurationError, match="holds replay orders"):
        asyncio.run(session(settings, nothing))


def test_breaker_trip_and_stale_feed_are_mailed(
    tmp_path: Path, smtp_server: Callable[..., Any]
) -> None:
    from cdb_cli.adapters.notify.email import EmailNotifier

    server = smtp_server()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        paper_latency_ms=0,
        circuit_breaker_pct=1,  # a 1 % fall from the peak halts
        stale_data_seconds=5,
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_tls="none",
        smtp_from="cdb@example.org",
        smtp_to="ops@example.org",
    )
    notifier = EmailNotifier.from_settings(settings)
    assert notifier is not None

    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)  # buy
        await trade_minutes(feed, clock, 2, [110.5], volume=1.0)  # filled
        await eventually(lambda: bool(store.fills()))
        await trade_minutes(feed, clock, 3, [100.0], volume=1.0)  # -10 %: halted
        await eventually(lambda: len(server.inbox.mails) >= 1)
        clock.set_time(clock.timestamp_ns() + 60 * SECOND)  # then the feed goes quiet
        await eventually(lambda: len(server.inbox.mails) >= 2)

    asyncio.run(session(settings, scenario, alert=notifier.send_async))
    subjects = [mail.message["Subject"] for mail in server.inbox.mails]
    assert subjects == ["cdb circuit breaker: trading halted", "cdb feed stale: BTCUSDT"]
    body = server.inbox.mails[0].message.get_content()
    assert "cdb risk reset" in body


def test_the_operator_view_shows_prices_positions_and_decisions(settings: Settings) -> None:
    from rich.console import Console

    from cdb_cli.runtime.view import render

    screens: list[str] = []

    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)
        await trade_minutes(feed, clock, 2, [110.5], volume=1.0)
        await eventually(lambda: bool(runtime.last_decisions))
        console = Console(record=True, width=120, color_system=None)
        console.print(render(runtime))
        screens.append(console.export_text())

    asyncio.run(session(settings, scenario))
    (screen,) = screens
    assert "BTCUSDT" in screen
    assert "110.5" in screen  # the last price
    assert "last decisions" in screen
    assert "buy" in screen
    assert "state ACTIVE" in screen


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


def test_an_outage_keeps_the_batch_and_a_stop_during_it_spills_to_a_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    real = open_store(settings, create_if_new=True)
    store = FlakyStore(real)

    async def scenario() -> tuple[str, int]:
        clock = TestClock(T0)
        feed = QueueFeed()
        runtime = PaperRuntime(
            settings,
            store=store,  # type: ignore[arg-type]
            bus=InMemoryBus(),
            feed=feed,
            clock=clock,
            symbols=[SYMBOL],
            flush_interval_s=0.02,
            finish_timeout_s=0.5,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        await asyncio.wait_for(runtime.started.wait(), 10)
        store.down = True
        for i in range(3):  # kept through failing flushes
            clock.set_time(T0 + i * SECOND)
            feed.events.put_nowait(trade(T0 + i * SECOND, 100.0))
        await eventually(lambda: not runtime.database_up)  # a flush failed, the batch was kept
        store.down = False  # back: the kept batch is written
        await eventually(lambda: len(real.events(TradeTick)) == 3)
        store.down = True  # down again, and the operator stops
        for i in range(3, 5):
            clock.set_time(T0 + i * SECOND)
            feed.events.put_nowait(trade(T0 + i * SECOND, 100.0))
        await eventually(feed.events.empty)
        stop.set()
        await asyncio.wait_for(task, 10)  # the stop completes
        return runtime.run_id, len(real.events(TradeTick))

    run_id, stored = asyncio.run(scenario())
    real.close()
    assert stored == 3
    import json

    from cdb_cli.engine.events import decode_event

    lines = (tmp_path / f"cdb-unsaved-{run_id}.jsonl").read_text().splitlines()
    spilled = [decode_event(json.loads(line)["event"]) for line in lines if '"event"' in line]
    assert [type(e).__name__ for e in spilled] == ["TradeTick", "TradeTick"]  # nothing lost


def test_health_metrics_measure_the_database_and_the_feed(settings: Settings) -> None:
    import math

    from cdb_cli.adapters.metrics import Metrics

    metrics = Metrics(run_id="ptest", symbols=[SYMBOL])

    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await runtime.refresh_health_metrics()

    asyncio.run(session(settings, scenario, metrics=metrics))
    value = metrics.registry.get_sample_value
    assert value("database_latency_ms") is not None
    assert not math.isnan(value("database_latency_ms") or math.nan)
    assert value("database_connections_active") == 0  # none checked out between writes
    assert value("websocket_latency_ms") == 0.0  # the test's clock is the trades' own time
    assert value("market_events_total", {"type": "market.trade"}) == 6


def test_the_utc_day_rolls_in_a_quiet_market_and_its_close_is_stored(settings: Settings) -> None:
    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)  # the first day starts
        assert runtime.pipeline is not None
        day_start = runtime.pipeline.portfolio.day
        clock.set_time(T0 + 86_400 * SECOND + SECOND)  # midnight passes without a trade
        await runtime.roll_day()
        assert runtime.pipeline.portfolio.day == (day_start or 0) + 1
        await eventually(lambda: len(store.equity_snapshots()) >= 1)

    asyncio.run(session(settings, scenario))


def _halt_record(ts: int, *, flatten: bool) -> AuditRecord:
    """What ``cdb risk halt`` writes."""
    return AuditRecord(
        ts_event=ts,
        action=HALT_ACTION,
        actor="ops@desk",
        detail={"reason": "exchange incident", "flatten": "yes" if flatten else "no", "via": "cli"},
    )


async def _bought(feed: QueueFeed, clock: TestClock, store: Store) -> None:
    """The buy of the first test: a jump on heavy volume, filled at the next minute's trade."""
    await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
    await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)
    await trade_minutes(feed, clock, 2, [110.5], volume=1.0)
    await eventually(lambda: bool(store.fills()))


def test_a_halt_in_the_store_stops_new_buys_at_the_next_flush(settings: Settings) -> None:
    halted_at: list[int] = []

    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        halted_at.append(clock.timestamp_ns())
        await asyncio.to_thread(store.add_audit, _halt_record(clock.timestamp_ns(), flatten=False))
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.HALTED)  # type: ignore[union-attr]
        # the jump that buys in the first test: now refused
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)
        await trade_minutes(feed, clock, 2, [110.5, 111.0], volume=1.0)

    asyncio.run(session(settings, scenario))
    store = open_store(settings)
    try:
        decisions = store.events(RiskDecision)
        assert decisions  # the strategy still asked
        assert {d.verdict for d in decisions} == {"rejected"}
        assert all(d.ts_event > halted_at[0] for d in decisions)
        assert store.events(OrderApproved) == []
        assert store.orders() == []
        assert trading_status(store).state is TradingState.HALTED
        (change,) = store.audits(action=STATE_ACTION)  # the run's own record of the change
        assert change.detail == {
            "state": "halted",
            "reason": "halted by the operator (ops@desk): exchange incident",
        }
    finally:
        store.close()


def test_a_halt_with_flatten_sells_the_position_like_any_exit(settings: Settings) -> None:
    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        await _bought(feed, clock, store)
        assert runtime.pipeline.portfolio.quantity(SYMBOL) > 0
        await asyncio.to_thread(store.add_audit, _halt_record(clock.timestamp_ns(), flatten=True))
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.HALTED)  # type: ignore[union-attr]
        await eventually(lambda: bool(runtime.pipeline.execution.working_orders()))  # type: ignore[union-attr]
        await trade_minutes(feed, clock, 3, [109.0], volume=1.0)  # the exit fills at a trade
        await eventually(lambda: any(f.side is Side.SELL for f in store.fills()))
        await trade_minutes(feed, clock, 4, [112.0, 115.0], volume=1000.0)  # no buy again

    _, runtime = asyncio.run(session(settings, scenario))
    assert runtime.pipeline is not None
    assert runtime.pipeline.portfolio.quantity(SYMBOL) == 0
    store = open_store(settings)
    try:
        buys = [f for f in store.fills() if f.side is Side.BUY]
        sells = [f for f in store.fills() if f.side is Side.SELL]
        assert sum(f.quantity for f in sells) == sum(f.quantity for f in buys) > 0
        (position,) = store.positions()
        assert position.quantity == 0
        sell_orders = [o for o in store.orders() if o.side is Side.SELL]
        assert [o.status for o in sell_orders] == ["FILLED"]
        (decision,) = [d for d in store.events(RiskDecision) if d.source == "operator"]
        assert decision.event_id == sell_orders[0].decision_id
        assert decision.checks[-1].detail == "flatten by the operator (halted): exchange incident"
        assert len([o for o in store.orders() if o.side is Side.BUY]) == 1
    finally:
        store.close()


def test_a_halt_survives_a_restart_and_a_reset_ends_it(settings: Settings) -> None:
    store = open_store(settings, create_if_new=True)
    store.add_audit(_halt_record(T0 - MINUTE, flatten=True))
    store.close()

    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        assert runtime.pipeline.trading_state is TradingState.HALTED
        await asyncio.sleep(0.1)  # flushes go by: the known halt is not taken again
        assert len(runtime.pipeline.stats.state_changes) == 1
        await asyncio.to_thread(
            store.add_audit,
            AuditRecord(
                ts_event=T0 + SECOND,
                action=RESET_ACTION,
                actor="ops@desk",
                detail={"reason": "reviewed", "previous": "halted"},
            ),
        )
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.ACTIVE)  # type: ignore[union-attr]

    asyncio.run(session(settings, scenario))


def test_halt_now_halts_in_process_and_writes_the_audit_record(settings: Settings) -> None:
    async def scenario(
        runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        runtime.halt_now("SIGUSR1 from the operator", via="sigusr1")
        assert runtime.pipeline.trading_state is TradingState.HALTED  # at once, not at a flush
        await eventually(lambda: bool(store.audits(action=HALT_ACTION)))
        await asyncio.sleep(0.1)
        assert len(runtime.pipeline.stats.state_changes) == 1  # not picked up a second time

    asyncio.run(session(settings, scenario))
    store = open_store(settings)
    try:
        (record,) = store.audits(action=HALT_ACTION)
        assert record.detail == {
            "reason": "SIGUSR1 from the operator",
            "flatten": "no",
            "via": "sigusr1",
        }
        assert record.run_id.startswith("p")
        assert trading_status(store).state is TradingState.HALTED
    finally:
        store.close()


def test_no_garbage_collection_on_the_way_to_an_order(settings: Settings) -> None:
    """The loop defers the collector while an event may lead to an order, and freezes the heap
    start-up built; both are undone when the run ends, also after an error in an event."""
    seen: dict[str, Any] = {"collecting": [], "frozen": 0}

    async def buy(runtime: PaperRuntime, feed: QueueFeed, clock: TestClock, store: Store) -> None:
        assert runtime.pipeline is not None
        execution = runtime.pipeline.execution
        submit = execution.submit

        def observed(order: Any, **options: Any) -> Any:
            seen["collecting"].append(gc.isenabled())
            return submit(order, **options)

        execution.submit = observed  # type: ignore[method-assign]
        seen["frozen"] = gc.get_freeze_count()
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)  # the buy, at this close
        await trade_minutes(feed, clock, 2, [110.5], volume=1.0)
        assert gc.isenabled()  # between events the collector runs as usual
        with pytest.raises(AttributeError):
            runtime._on_event(None, trade(T0 + 3 * MINUTE, 111.0))  # type: ignore[arg-type]
        assert gc.isenabled()

    summary, _ = asyncio.run(session(settings, buy))
    assert summary.orders >= 1
    assert seen["collecting"]
    assert not any(seen["collecting"])
    assert seen["frozen"] > 0
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
