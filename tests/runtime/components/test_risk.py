"""The risk component in process (in-process bus, SQLite store): it decides on a closed bar only
once `signals` has said what came of the bar, names the published signal in its decision, and
says how many orders it approved for the bar; `execution` is simulated by this test."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from components_testkit import (
    SECOND,
    T0,
    PublicationsBus,
    at_head,
    buy_signal,
    collect,
    risk_on,
)
from market_testkit import SYMBOL, closed_bar, eventually, quote, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import (
    Bar,
    HealthReport,
    OrderApproved,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
)
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.remote import progress_report, read_progress
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.risk import RiskComponent
from cdb_cli.settings import Settings


@pytest.mark.parametrize("lost", [False, True], ids=["sent-at-once", "sending-failed"])
def test_risk_waits_for_the_signals_of_a_bar_and_reports_its_approvals(
    tmp_path: Path, lost: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The approval goes out with the bar's marker the moment the venue has it, before the
    decision; if that send fails, both go again with the decision."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'risk.db'}",
        bus_url="redis://127.0.0.1:6379/0",  # what component mode asks for; the test passes a bus
        bar_seconds=1,
    )

    async def scenario() -> None:
        store = open_store(settings, create_if_new=True)
        bus = PublicationsBus(fail_soon=lost)
        risk = risk_on(settings, store, bus, "ptestrisk")
        decisions = await bus.subscribe(Topic.RISK_EVENTS, "test", "t")
        approvals = await bus.subscribe(Topic.RISK_APPROVED_TRADES, "test", "t")
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        closing = trade(T0 + SECOND + 5_000_000, "100.2")
        closed = closed_bar(T0, closing.ts_event)
        for event in (quote(T0), trade(T0 + 1, "100"), closed, closing):
            await bus.publish(Topic.MARKET_DATA, event)
        await eventually(lambda: at_head(risk, Topic.MARKET_DATA, closed), what="risk at the bar")
        assert await collect(decisions, 1, 0.2) == []  # the signals' word on the bar is missing
        signal = buy_signal(closed)
        done = progress_report(
            "signals", symbol=SYMBOL, bar_id=closed.event_id, ts=closed.closed_at, count=1
        )
        await bus.publish_many([(Topic.TRADING_SIGNALS, signal), (Topic.TRADING_SIGNALS, done)])
        [decision] = await collect(decisions, 1)
        assert isinstance(decision, RiskDecision)
        assert decision.signal_id == signal.event_id
        assert decision.ts_event == closed.closed_at  # event time, not the wall clock
        assert decision.verdict != "rejected", decision.checks
        approval, done_by_risk = await collect(approvals, 2)  # the order, then the marker
        assert isinstance(approval, OrderApproved)
        assert approval.ts_event == closed.closed_at
        assert isinstance(done_by_risk, HealthReport)
        assert read_progress(done_by_risk) == ("risk", closed.event_id, 1)
        # Each was published once: the approval and the marker at once, on their own, before
        # the decision; or, that failing, with it.
        if lost:
            assert bus.soon == []
            assert bus.publications[1:] == [[approval, done_by_risk, decision]]  # after signals
            assert f"sending the approval of {closed.event_id} failed" in caplog.text
        else:
            assert bus.soon == [[approval, done_by_risk]]
            assert bus.publications[1:] == [[approval, done_by_risk], [decision]]
        stop.set()
        counts = await asyncio.wait_for(task, 10)
        assert counts["approvals"] == 1
        assert [e.event_id for e in store.events(RiskDecision)] == [decision.event_id]
        assert [e.event_id for e in store.events(OrderApproved)] == [approval.event_id]
        store.close()

    asyncio.run(scenario())


def test_an_exit_signal_with_nothing_held_is_decided_as_such_and_approves_no_order(
    tmp_path: Path,
) -> None:
    """Component mode decides as one process does: the strategy's exit while flat is a
    nothing_held decision, no approval, and the bar's marker says 0 orders."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'risk.db'}",
        bus_url="redis://127.0.0.1:6379/0",
        bar_seconds=1,
    )

    async def scenario() -> None:
        store = open_store(settings, create_if_new=True)
        bus = PublicationsBus()
        risk = risk_on(settings, store, bus, "ptestheld")
        decisions = await bus.subscribe(Topic.RISK_EVENTS, "test", "t")
        approvals = await bus.subscribe(Topic.RISK_APPROVED_TRADES, "test", "t")
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        closing = trade(T0 + SECOND + 5_000_000, "100.2")
        closed = closed_bar(T0, closing.ts_event)
        for event in (quote(T0), trade(T0 + 1, "100"), closed, closing):
            await bus.publish(Topic.MARKET_DATA, event)
        signal = buy_signal(closed).model_copy(update={"side": SignalSide.EXIT})
        done = progress_report(
            "signals", symbol=SYMBOL, bar_id=closed.event_id, ts=closed.closed_at, count=1
        )
        await bus.publish_many([(Topic.TRADING_SIGNALS, signal), (Topic.TRADING_SIGNALS, done)])
        [decision] = await collect(decisions, 1)
        assert isinstance(decision, RiskDecision)
        assert decision.signal_id == signal.event_id
        assert (decision.verdict, decision.final_quote) == ("nothing_held", 0)
        assert decision.checks
        assert all(check.passed for check in decision.checks)  # no rule failed
        # the bar's marker comes after any approval of the bar: here it is the first and only
        [marker] = await collect(approvals, 1)
        assert isinstance(marker, HealthReport)
        assert read_progress(marker) == ("risk", closed.event_id, 0)
        stop.set()
        counts = await asyncio.wait_for(task, 10)
        assert counts.get("approvals", 0) == 0
        assert [e.verdict for e in store.events(RiskDecision)] == ["nothing_held"]
        assert store.events(OrderApproved) == []
        store.close()

    asyncio.run(scenario())


def test_risk_publishes_the_bars_of_one_batch_together_but_not_behind_a_wait(
    tmp_path: Path,
) -> None:
    """Bars of several symbols that close together are published in one go; a bar whose signals
    are late does not hold back the decisions made before it (``execution`` waits for them)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'risk.db'}",
        bus_url="redis://127.0.0.1:6379/0",
        bar_seconds=1,
    )
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]

    def no_signal(closed: Bar) -> HealthReport:
        return progress_report(
            "signals", symbol=closed.symbol, bar_id=closed.event_id, ts=closed.closed_at, count=0
        )

    async def scenario() -> None:
        store = open_store(settings, create_if_new=True)
        bus = PublicationsBus()
        risk = RiskComponent(
            settings,
            store=store,
            bus=bus,
            symbols=symbols,
            instruments={s: default_instrument(s) for s in symbols},
            run_id="ptestrisk",
        )
        markers = await bus.subscribe(Topic.RISK_APPROVED_TRADES, "test", "t")
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        btc, eth, sol = (closed_bar(T0, T0 + SECOND, symbol=s) for s in symbols)
        await bus.publish_many([(Topic.TRADING_SIGNALS, no_signal(b)) for b in (btc, eth)])
        await bus.publish_many([(Topic.MARKET_DATA, b) for b in (btc, eth, sol)])
        first = await collect(markers, 2)
        assert [read_progress(m) for m in first] == [  # type: ignore[arg-type]
            ("risk", btc.event_id, 0),
            ("risk", eth.event_id, 0),
        ]
        assert bus.publications[-1] == first  # in one publication, before SOL's wait ended
        await bus.publish(Topic.TRADING_SIGNALS, no_signal(sol))
        [last] = await collect(markers, 1)
        assert read_progress(last) == ("risk", sol.event_id, 0)  # type: ignore[arg-type]
        stop.set()
        await asyncio.wait_for(task, 10)
        store.close()

    asyncio.run(scenario())


def test_a_bar_decided_before_a_restart_is_not_decided_again(tmp_path: Path) -> None:
    """A crash after `risk` stored a bar's decision and approval but before it acknowledged the
    bar: the restart gets the bar and its signal back. Deciding again would approve the same
    order under new ids (placed twice by an `execution` not yet at the bar); instead it takes
    the stored approval back as working and announces it again."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'risk.db'}",
        bus_url="redis://127.0.0.1:6379/0",
        bar_seconds=1,
    )
    closing = trade(T0 + SECOND + 5_000_000, "100.2")
    closed = closed_bar(T0, closing.ts_event)
    signal = buy_signal(closed)
    decision = RiskDecision(
        event_id="pold-2",
        symbol=SYMBOL,
        ts_event=closed.closed_at,
        source="risk",
        signal_id=signal.event_id,
        verdict="approved",
        side=SignalSide.BUY,
        requested_quote=Decimal(500),
        final_quote=Decimal(500),
    )
    approval = OrderApproved(
        event_id="pold-3",
        symbol=SYMBOL,
        ts_event=closed.closed_at,
        source="risk",
        decision_id=decision.event_id,
        side=Side.BUY,
        quote_amount=Decimal(500),
        reference_price=Decimal(100),
    )
    store = open_store(settings, create_if_new=True)
    store.append_events([signal, decision, approval])  # execution has not stored the order

    async def scenario() -> None:
        bus = InMemoryBus()
        risk = risk_on(settings, store, bus, "ptestrisk3")
        approvals = await bus.subscribe(Topic.RISK_APPROVED_TRADES, "test", "t")
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        done = progress_report(
            "signals", symbol=SYMBOL, bar_id=closed.event_id, ts=closed.closed_at, count=1
        )
        await bus.publish_many([(Topic.TRADING_SIGNALS, signal), (Topic.TRADING_SIGNALS, done)])
        for event in (quote(T0), trade(T0 + 1, "100"), closed, closing):
            await bus.publish(Topic.MARKET_DATA, event)
        [marker] = await collect(approvals, 1)
        assert read_progress(marker) == ("risk", closed.event_id, 1)  # type: ignore[arg-type]
        assert await collect(approvals, 1, 0.3) == []  # no new approval
        assert [o.client_order_id for o in risk.execution.working_orders()] == ["pold-3"]
        assert risk.execution.pending_buy_quote(SYMBOL) == Decimal(500)
        stop.set()
        counts = await asyncio.wait_for(task, 10)
        assert "decisions" not in counts
        assert "wait_timeouts" not in counts

    try:
        asyncio.run(scenario())
        assert [d.event_id for d in store.events(RiskDecision)] == ["pold-2"]
    finally:
        store.close()
