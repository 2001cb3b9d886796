"""The risk component in process (in-process bus, SQLite store): it decides on a closed bar only
once `signals` has said what came of the bar, names the published signal in its decision, and
says how many orders it approved for the bar; `execution` is simulated by this test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from market_testkit import SYMBOL, closed_bar, quote, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.errors import DependencyError
from cdb_cli.engine.events import (
    Bar,
    Event,
    ExecutionReport,
    HealthReport,
    OrderApproved,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import OrderRecord
from cdb_cli.engine.remote import progress_report, read_progress
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.risk import RiskComponent
from cdb_cli.settings import Settings

SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND


def risk_on(
    settings: Settings, store: Store, bus: InMemoryBus, run_id: str, **options: float
) -> RiskComponent:
    """The risk component of ``SYMBOL`` on ``store`` and ``bus``, as in its own process."""
    return RiskComponent(
        settings,
        store=store,
        bus=bus,
        symbols=[SYMBOL],
        instruments={SYMBOL: default_instrument(SYMBOL)},
        run_id=run_id,
        **options,  # type: ignore[arg-type]
    )


def buy_signal(closed: Bar) -> TradingSignal:
    """What `signals` published for the bar: a buy."""
    return TradingSignal(
        event_id=f"sig-{closed.event_id}",
        symbol=SYMBOL,
        ts_event=closed.closed_at,
        source="ema_cross",
        side=SignalSide.BUY,
        strategy="ema_cross",
        price=Decimal(100),
        strength=0.8,
        bar_id=closed.event_id,
    )


def working_order() -> OrderRecord:
    """A buy approved before a restart, still working in the store."""
    return OrderRecord(
        client_order_id="pold-3",
        decision_id="pold-2",
        symbol=SYMBOL,
        side=Side.BUY,
        order_type="MARKET",
        quote_amount=Decimal(500),
        status="NEW",
        ts_created=T0,
        ts_updated=T0,
        mode="paper",
    )


def fill_report(order: OrderRecord, ts: int) -> ExecutionReport:
    """The execution's report of ``order`` filled at the trade at ``ts``."""
    return ExecutionReport(
        event_id=f"{order.client_order_id}-pexecr1",
        symbol=SYMBOL,
        ts_event=ts,
        source="paper",
        client_order_id=order.client_order_id,
        side=Side.BUY,
        status="FILLED",
        last_quantity=Decimal("4.99"),
        last_price=Decimal("100.01"),
        fee=Decimal("0.2495499"),
        fee_asset="USDT",
    )


async def collect(subscription: object, count: int, timeout_s: float = 5.0) -> list[Event]:
    events: list[Event] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(events) < count and asyncio.get_running_loop().time() < deadline:
        for delivery in await subscription.fetch(100, 0.1):  # type: ignore[attr-defined]
            events.append(delivery.event)
    return events


class PublicationsBus(InMemoryBus):
    """The in-process bus, keeping each publication's events (one call, one publication) and
    which were sent at once (``publish_soon``). With ``fail_soon``, the first of those fails
    without writing anything (a connection lost with the write)."""

    def __init__(self, *, fail_soon: bool = False) -> None:
        super().__init__()
        self.publications: list[list[Event]] = []
        self.soon: list[list[Event]] = []
        self.fail_soon = fail_soon

    async def publish_many(self, items: Sequence[tuple[Topic, Event]]) -> list[str]:
        self.publications.append([event for _, event in items])
        return await super().publish_many(items)

    def publish_soon(self, items: Sequence[tuple[Topic, Event]]) -> Awaitable[list[str]]:
        if self.fail_soon:
            self.fail_soon = False
            failed: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
            failed.set_exception(DependencyError("Redis is unreachable at 127.0.0.1:6379"))
            return failed
        self.publications.append([event for _, event in items])
        self.soon.append([event for _, event in items])
        return super().publish_soon(items)


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
        await asyncio.sleep(0.5)
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


def test_a_restarted_risk_takes_back_its_working_order_and_books_the_fill_at_its_trade(
    tmp_path: Path,
) -> None:
    """An order approved before a restart is still working in the store: the new risk process
    counts it as pending, waits at the next trade for the execution's word on it, and books the
    fill there (its ledger mirror then holds the position)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'risk.db'}", bar_seconds=1)
    store = open_store(settings, create_if_new=True)
    order = working_order()
    store.save_order(order)

    async def scenario() -> None:
        bus = InMemoryBus()
        risk = risk_on(settings, store, bus, "ptestrisk2")
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        assert risk.execution.pending_buy_quote(SYMBOL) == Decimal(500)
        filling = trade(T0 + SECOND, "100")
        await bus.publish(Topic.MARKET_DATA, filling)
        await asyncio.sleep(0.3)
        assert risk.execution.has_working(SYMBOL)  # held at the trade until the report comes
        assert risk.pipeline.portfolio.quantity(SYMBOL) == 0
        report = fill_report(order, filling.ts_event)
        await bus.publish(Topic.EXECUTION_EVENTS, report)
        for _ in range(50):
            if not risk.execution.has_working(SYMBOL):
                break
            await asyncio.sleep(0.05)
        assert not risk.execution.has_working(SYMBOL)
        assert risk.pipeline.portfolio.quantity(SYMBOL) == Decimal("4.99")
        stop.set()
        counts = await asyncio.wait_for(task, 10)
        assert "wait_timeouts" not in counts

    try:
        asyncio.run(scenario())
    finally:
        store.close()


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


def test_risk_acknowledges_a_fill_report_only_once_execution_stored_the_fill(
    tmp_path: Path,
) -> None:
    """A restart rebuilds risk's ledger from the stored fills: a report whose fill the store does
    not have yet must be given again to the next risk process, so it is not acknowledged until
    the store has the fill (then it is, and a later restart does not get it again)."""
    from cdb_cli.engine.remote import report_fill

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'risk.db'}", bar_seconds=1)
    store = open_store(settings, create_if_new=True)
    order = working_order()
    store.save_order(order)
    report = fill_report(order, T0 + SECOND)
    bus = InMemoryBus()

    async def run_risk(
        trades: Sequence[TradeTick], *, then_store: bool, report_first: bool = False
    ) -> RiskComponent:
        risk = held_report_risk(settings, store, bus)
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        if report_first:
            await bus.publish(Topic.EXECUTION_EVENTS, report)
        for tick in trades:
            await bus.publish(Topic.MARKET_DATA, tick)
        await asyncio.sleep(1.0)
        if then_store:  # what execution does with its fill, a little later
            store.add_fill(report_fill(report))
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 10)
        return risk

    async def scenario() -> None:
        first = await run_risk([trade(T0 + SECOND, "100")], then_store=False, report_first=True)
        assert first.pipeline.portfolio.quantity(SYMBOL) == Decimal("4.99")  # booked
        # The store lacks the fill: the next risk process is given the report again.
        second = await run_risk([trade(T0 + 2 * SECOND, "101")], then_store=True)
        assert second.pipeline.portfolio.quantity(SYMBOL) == Decimal("4.99")
        assert not second.execution.has_working(SYMBOL)
        # Stored, so acknowledged: nothing of the group is left pending for anyone to claim.
        probe = await bus.subscribe(Topic.EXECUTION_EVENTS, "risk", "probe")
        assert await probe.reclaim(0.0) == []
        third = await run_risk([], then_store=False)  # the fill comes from the store
        assert third.pipeline.portfolio.quantity(SYMBOL) == Decimal("4.99")

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def held_report_risk(settings: Settings, store: Store, bus: InMemoryBus) -> RiskComponent:
    """A risk component that checks the store for held fills every 50 ms."""
    risk = risk_on(settings, store, bus, "ptestrisk4", flush_interval_s=0.05, wait_timeout_s=0.5)
    risk.confirm_interval_s = 0.05
    return risk


def test_a_copy_of_a_held_fill_report_is_acknowledged_and_a_given_up_one_forgotten(
    tmp_path: Path,
) -> None:
    """The same report twice in the stream (a retried publish) while risk holds the first for
    the store: the copy is acknowledged, and once the fill is stored nothing is left pending.
    A report whose fill never comes is acknowledged after the timeout and not looked for again
    (risk writes no positions that would wait for it)."""
    from cdb_cli.engine.remote import report_fill

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'risk.db'}", bar_seconds=1)
    store = open_store(settings, create_if_new=True)
    order = working_order()
    store.save_order(order)
    report = fill_report(order, T0 + SECOND)
    bus = InMemoryBus()

    async def scenario() -> None:
        risk = held_report_risk(settings, store, bus)
        stop = asyncio.Event()
        task = asyncio.create_task(risk.run(stop))
        await asyncio.wait_for(risk.started.wait(), 10)
        await bus.publish(Topic.EXECUTION_EVENTS, report)
        await bus.publish(Topic.MARKET_DATA, trade(T0 + SECOND, "100"))
        await asyncio.sleep(0.4)
        assert not risk.stored_fills.all_stored  # held: the store lacks the fill
        await bus.publish(Topic.EXECUTION_EVENTS, report)  # the copy, another message id
        await asyncio.sleep(0.3)
        store.add_fill(report_fill(report))  # what execution does, a little later
        await asyncio.sleep(0.5)
        probe = await bus.subscribe(Topic.EXECUTION_EVENTS, "risk", "probe")
        assert await probe.reclaim(0.0) == []
        assert risk.stored_fills.all_stored
        # A fill the store never gets: acknowledged after the timeout, then forgotten.
        risk.stored_fills.timeout_s = 0.2
        lost = fill_report(order, T0 + 2 * SECOND).model_copy(update={"event_id": "pold-3-x"})
        await bus.publish(Topic.EXECUTION_EVENTS, lost)
        await bus.publish(Topic.MARKET_DATA, trade(T0 + 2 * SECOND, "100"))
        await asyncio.sleep(0.8)
        assert await probe.reclaim(0.0) == []
        assert risk.stored_fills.all_stored
        stop.set()
        await asyncio.wait_for(task, 10)

    try:
        asyncio.run(scenario())
    finally:
        store.close()


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
