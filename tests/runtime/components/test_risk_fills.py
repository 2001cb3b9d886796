"""The risk component and the fills `execution` reports (in process: in-process bus, SQLite
store): a working order taken back after a restart and filled at its trade, and a fill report
acknowledged only once the store has the fill (a copy at once, one that never comes after a
timeout)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from components_testkit import (
    SECOND,
    T0,
    Acknowledged,
    at_head,
    fill_report,
    held_report_risk,
    risk_on,
    working_order,
)
from market_testkit import SYMBOL, eventually, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import (
    Topic,
    TradeTick,
)
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.risk import RiskComponent
from cdb_cli.settings import Settings


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
        await eventually(lambda: at_head(risk, Topic.MARKET_DATA, filling), what="the trade")
        assert risk.execution.has_working(SYMBOL)  # held at the trade until the report comes
        assert risk.pipeline.portfolio.quantity(SYMBOL) == 0
        report = fill_report(order, filling.ts_event)
        await bus.publish(Topic.EXECUTION_EVENTS, report)
        await eventually(lambda: not risk.execution.has_working(SYMBOL), what="the fill booked")
        assert risk.pipeline.portfolio.quantity(SYMBOL) == Decimal("4.99")
        stop.set()
        counts = await asyncio.wait_for(task, 10)
        assert "wait_timeouts" not in counts

    try:
        asyncio.run(scenario())
    finally:
        store.close()


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
        market = Acknowledged(risk, Topic.MARKET_DATA)
        reports = Acknowledged(risk, Topic.EXECUTION_EVENTS)
        if report_first:
            await bus.publish(Topic.EXECUTION_EVENTS, report)
        for tick in trades:
            await bus.publish(Topic.MARKET_DATA, tick)
        await market.until(lambda acked: len(acked) == len(trades), "the trades handled, stored")
        if trades:  # the report (again, if the last process did not acknowledge it) booked
            await eventually(lambda: not risk.execution.has_working(SYMBOL), what="the fill")
        if then_store:  # what execution does with its fill, a little later
            store.add_fill(report_fill(report))
            await reports.until(
                lambda acked: acked == [report.event_id], "the report, its fill stored"
            )
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
        reports = Acknowledged(risk, Topic.EXECUTION_EVENTS)
        await bus.publish(Topic.EXECUTION_EVENTS, report)
        await bus.publish(Topic.MARKET_DATA, trade(T0 + SECOND, "100"))
        # booked at the trade, and held: the store lacks the fill
        await eventually(lambda: not risk.stored_fills.all_stored, what="the report held")
        await bus.publish(Topic.EXECUTION_EVENTS, report)  # the copy, another message id
        await reports.until(lambda acked: acked == [report.event_id], "the copy")
        assert not risk.stored_fills.all_stored  # the first is still held
        store.add_fill(report_fill(report))  # what execution does, a little later
        await reports.until(lambda acked: len(acked) == 2, "the first, its fill stored")
        probe = await bus.subscribe(Topic.EXECUTION_EVENTS, "risk", "probe")
        assert await probe.reclaim(0.0) == []
        assert risk.stored_fills.all_stored
        # A fill the store never gets: acknowledged after the timeout, then forgotten.
        risk.stored_fills.timeout_s = 0.2
        lost = fill_report(order, T0 + 2 * SECOND).model_copy(update={"event_id": "pold-3-x"})
        await bus.publish(Topic.EXECUTION_EVENTS, lost)
        await bus.publish(Topic.MARKET_DATA, trade(T0 + 2 * SECOND, "100"))
        await reports.until(lambda acked: acked[2:] == [lost.event_id], "the lost one")
        assert await probe.reclaim(0.0) == []
        assert risk.stored_fills.all_stored
        stop.set()
        await asyncio.wait_for(task, 10)

    try:
        asyncio.run(scenario())
    finally:
        store.close()
