"""The trading loop (paper venue) on a real SQLite store and the in-process bus, fed by a queue
the test fills: it warms up, trades, writes everything, stops cleanly, and a restart resumes the
same ledger; the operator's halts are in test_control.py."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import QueueFeed
from market_testkit import eventually, trade
from paper_testkit import (
    MINUTE,
    SECOND,
    SYMBOL,
    T0,
    FlakyStore,
    paper_settings,
    session,
    trade_minutes,
)

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    RiskDecision,
    Side,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import OrderRecord
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.paper import PaperVenue
from cdb_cli.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return paper_settings(tmp_path)


def test_paper_loop_trades_writes_everything_and_resumes(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async def trades(runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store) -> None:
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
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
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


def test_with_notify_fills_each_fill_is_posted(
    tmp_path: Path, webhook_receiver: Callable[..., Any]
) -> None:
    from cdb_cli.kernel import notifier

    receiver = webhook_receiver()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'fills.db'}",
        paper_latency_ms=0,
        notify_fills=True,
        webhook_urls=f"json:{receiver.base}/fills",
    )
    alerts = notifier(settings, run_id="p-fills")
    assert alerts is not None

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)  # buy
        await trade_minutes(feed, clock, 2, [110.5], volume=1.0)  # filled
        await eventually(lambda: bool(store.fills()))
        await eventually(lambda: bool(receiver.posts))

    asyncio.run(session(settings, scenario, alert=alerts.send_async))
    assert alerts.close(timeout_s=10)
    [post] = receiver.posts
    document = post.json()
    assert (document["event"], document["severity"], document["symbol"]) == (
        "fill",
        "info",
        SYMBOL,
    )
    assert document["title"].startswith(f"cdb fill: {SYMBOL} BUY ")
    assert "fee" in document["text"]


def test_the_operator_view_shows_prices_positions_and_decisions(settings: Settings) -> None:
    from rich.console import Console

    from cdb_cli.runtime.view import render

    screens: list[str] = []

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
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


def test_an_outage_keeps_the_batch_and_a_stop_during_it_spills_to_a_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    real = open_store(settings, create_if_new=True)
    store = FlakyStore(real)

    async def scenario() -> tuple[str, int]:
        clock = TestClock(T0)
        feed = QueueFeed()
        runtime = TradingLoop(
            settings,
            venue=PaperVenue(),
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

    spill_file = settings.spill_dir / f"cdb-unsaved-{run_id}.jsonl"
    assert spill_file.stat().st_mode & 0o777 == 0o600
    lines = spill_file.read_text().splitlines()
    spilled = [decode_event(json.loads(line)["event"]) for line in lines if '"event"' in line]
    assert [type(e).__name__ for e in spilled] == ["TradeTick", "TradeTick"]  # nothing lost

    # The next start loads the spill file into the store before it trades, once.
    async def restart(runtime: TradingLoop, feed: QueueFeed, clock: TestClock, st: Store) -> None:
        trades = st.events(TradeTick)
        assert len(trades) == 5
        assert len({t.event_id for t in trades}) == 5
        (loaded,) = st.audits(action="spill_loaded")
        assert loaded.detail["file"] == str(spill_file)
        assert loaded.detail["events"] == str(len(spilled))

    asyncio.run(session(settings, restart))
    assert not spill_file.exists()
    assert spill_file.with_name(spill_file.name + ".loaded").exists()
    asyncio.run(session(settings, restart))  # loaded once: still one audit, five trades


def test_the_utc_day_rolls_in_a_quiet_market_and_its_close_is_stored(settings: Settings) -> None:
    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)  # the first day starts
        assert runtime.pipeline is not None
        day_start = runtime.pipeline.portfolio.day
        clock.set_time(T0 + 86_400 * SECOND + SECOND)  # midnight passes without a trade
        await runtime.roll_day()
        assert runtime.pipeline.portfolio.day == (day_start or 0) + 1
        await eventually(lambda: len(store.equity_snapshots()) >= 1)

    asyncio.run(session(settings, scenario))


def test_no_garbage_collection_on_the_way_to_an_order(settings: Settings) -> None:
    """The loop defers the collector while an event may lead to an order, and freezes the heap
    start-up built; both are undone when the run ends, also after an error in an event."""
    seen: dict[str, Any] = {"collecting": [], "frozen": 0}

    async def buy(runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store) -> None:
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
