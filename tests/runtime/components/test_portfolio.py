"""The portfolio component in process (in-process bus, SQLite store): a fill report is acknowledged
only once `execution` has stored the fill, so a restart in between books it from the bus again,
and a report delivered again whose fill is stored is not booked twice; `execution` is played by
this test."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from components_testkit import Acknowledged, RecordingBus
from market_testkit import eventually

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import ExecutionReport, OrderApproved, Side, Topic
from cdb_cli.engine.execution import ExecutionResult, PaperExecutionConfig
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.records import OrderRecord
from cdb_cli.engine.remote import ApprovalIdExecution, report_fill
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.portfolio import PortfolioComponent
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
T0 = 1_795_400_000 * 1_000_000_000


def fill_report() -> ExecutionReport:
    return ExecutionReport(
        event_id="rep-1",
        symbol=SYMBOL,
        ts_event=T0,
        source="paper",
        client_order_id="appr-1",
        side=Side.BUY,
        status="FILLED",
        last_quantity=Decimal("0.01"),
        last_price=Decimal(50_000),
        fee=Decimal("0.25"),
        fee_asset="USDT",
    )


def portfolio_of(settings: Settings, bus: InMemoryBus, **intervals: float) -> PortfolioComponent:
    """The component on a fresh store connection; ``intervals``: confirm_interval_s, …"""
    return PortfolioComponent(
        settings,
        store=open_store(settings, create_if_new=True),
        bus=bus,
        symbols=[SYMBOL],
        instruments={SYMBOL: default_instrument(SYMBOL)},
        run_id="ptestportfolio",
        flush_interval_s=0.05,
        **{"confirm_interval_s": 0.5, **intervals},
    )


def test_a_fill_report_is_acknowledged_only_once_execution_stored_the_fill(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", bar_seconds=1)
    report = fill_report()

    async def run_portfolio(
        bus: InMemoryBus,
        until: Callable[[PortfolioComponent, Acknowledged], bool],
        what: str,
        *,
        publish: bool = False,
    ) -> PortfolioComponent:
        portfolio = portfolio_of(settings, bus, confirm_interval_s=0.05)
        store = portfolio.store
        stop = asyncio.Event()
        task = asyncio.create_task(portfolio.run(stop))
        await asyncio.wait_for(portfolio.started.wait(), 10)
        reports = Acknowledged(portfolio, Topic.EXECUTION_EVENTS)
        if publish:  # the report is published while this one runs
            await bus.publish(Topic.EXECUTION_EVENTS, report)
        await eventually(lambda: until(portfolio, reports), what=what)
        stop.set()
        await asyncio.wait_for(task, 10)
        store.close()
        return portfolio

    async def scenario() -> None:
        bus = RecordingBus()
        first = await run_portfolio(bus, booked, "the report booked", publish=True)
        assert first.ledger.quantity(SYMBOL) == Decimal("0.01")
        # Stopped before execution stored the fill: the report comes back, and is booked again.
        second = await run_portfolio(bus, booked, "the report booked again")
        assert second.ledger.quantity(SYMBOL) == Decimal("0.01")
        assert second.counts.get("fills") == 1
        store = open_store(settings)
        store.save_order(
            OrderRecord(
                client_order_id=report.client_order_id,
                decision_id="dec-1",
                symbol=SYMBOL,
                side=Side.BUY,
                order_type="MARKET",
                quote_amount=Decimal(500),
                status="FILLED",
                ts_created=T0,
                ts_updated=T0,
                mode="paper",
            )
        )
        store.add_fill(report_fill(report))  # the fill execution stored: the report's id
        store.close()
        # booked from the store, the report once more: its fill is stored, so it is acknowledged
        acked = bus.acked[(Topic.EXECUTION_EVENTS, "portfolio")]
        assert acked == []  # held by both: the store lacked the fill
        third = await run_portfolio(bus, lambda *_: acked == [report.event_id], "the ack")
        assert third.ledger.quantity(SYMBOL) == Decimal("0.01")  # not twice
        # the third acknowledged it: gone from the bus (a read goes by and delivers nothing)
        fourth = await run_portfolio(bus, lambda _, r: bool(r.reads), "a read of the reports")
        assert fourth.ledger.quantity(SYMBOL) == Decimal("0.01")
        assert fourth.counts.get("fills") is None
        assert fourth.inboxes[Topic.EXECUTION_EVENTS].queue == deque()

    asyncio.run(scenario())


def booked(portfolio: PortfolioComponent, _: Acknowledged) -> bool:
    return portfolio.counts.get("fills") == 1


def partial_fills(*volumes: str) -> tuple[OrderRecord, list[ExecutionResult]]:
    """The execution process's venue filling one buy in parts, one trade each, 1 ms apart (the
    first two in the same ms when ``volumes`` says so by a "=" prefix)."""
    config = PaperExecutionConfig(latency_ms=0, partial_fill_pct=Decimal(50))
    venue = ApprovalIdExecution(
        config, {SYMBOL: default_instrument(SYMBOL)}, random.Random(1), id_prefix="pexec"
    )
    start = time.time_ns() - 10 * 1_000_000_000
    approval = OrderApproved(
        event_id="appr-2",
        symbol=SYMBOL,
        ts_event=start,
        source="risk",
        decision_id="dec-2",
        side=Side.BUY,
        quote_amount=Decimal(1000),
        reference_price=Decimal(100),
    )
    [order] = venue.submit(approval, ts_ns=start, position=Decimal(0)).orders
    results, ts = [], start
    for volume in volumes:
        ts += 0 if volume.startswith("=") else 1_000_000
        results.append(
            venue.on_price(
                SYMBOL,
                ts,
                Decimal(100),
                volume=Decimal(volume.lstrip("=")),
                bid=Decimal("99.9"),
                ask=Decimal(100),
                cash=Decimal(10_000),
                position=Decimal(0),
            )
        )
    return order, results


def fill_reports(result: ExecutionResult) -> list[ExecutionReport]:
    return [r for r in result.reports if r.last_quantity > 0]


def test_two_equal_partial_fills_in_one_millisecond_are_both_booked(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", bar_seconds=1)
    _order, (first, second) = partial_fills("2", "=2")
    assert first.fills[0].ts_event == second.fills[0].ts_event
    assert first.fills[0].quantity == second.fills[0].quantity

    async def scenario() -> PortfolioComponent:
        bus = InMemoryBus()
        portfolio = portfolio_of(settings, bus)
        stop = asyncio.Event()
        task = asyncio.create_task(portfolio.run(stop))
        await asyncio.wait_for(portfolio.started.wait(), 10)
        for report in fill_reports(first) + fill_reports(second):
            await bus.publish(Topic.EXECUTION_EVENTS, report)
        both = first.fills[0].quantity * 2
        await eventually(lambda: portfolio.ledger.quantity(SYMBOL) == both, what="both booked")
        stop.set()
        await asyncio.wait_for(task, 10)
        portfolio.store.close()
        return portfolio

    portfolio = asyncio.run(scenario())
    assert portfolio.ledger.quantity(SYMBOL) == first.fills[0].quantity * 2


@pytest.mark.parametrize("same_ms", ["", "="], ids=["a ms later", "in the same ms"])
def test_positions_written_before_a_stored_fill_reached_it_do_not_block_a_restart(
    tmp_path: Path, same_ms: str
) -> None:
    """execution stores F1 and F2 in one batch; portfolio confirms R1 and writes its positions
    before R2 reaches it, then stops with R2 booked and not yet confirmed: the restart takes the
    position record as of F1, older than F2, and rebuilds from the fills."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", bar_seconds=1)
    order, (first, second) = partial_fills("2", same_ms + "4")
    [r1], [r2] = fill_reports(first), fill_reports(second)

    async def scenario() -> None:
        bus = InMemoryBus()
        portfolio = portfolio_of(settings, bus)
        portfolio.store.save_order(order)
        stop = asyncio.Event()
        task = asyncio.create_task(portfolio.run(stop))
        await asyncio.wait_for(portfolio.started.wait(), 10)
        f1, f2 = first.fills[0].quantity, second.fills[0].quantity
        await bus.publish(Topic.EXECUTION_EVENTS, r1)
        await eventually(lambda: portfolio.ledger.quantity(SYMBOL) == f1, what="R1 booked")
        for fill in first.fills + second.fills:
            portfolio.store.add_fill(fill)
        await eventually(  # R1 confirmed, positions written (F1 only)
            lambda: [p.quantity for p in portfolio.store.positions()] == [f1],
            what="the positions of F1 written",
        )
        await bus.publish(Topic.EXECUTION_EVENTS, r2)
        # R2 booked, not confirmed yet
        await eventually(lambda: portfolio.ledger.quantity(SYMBOL) == f1 + f2, what="R2 booked")
        stop.set()
        await asyncio.wait_for(task, 10)
        portfolio.store.close()
        again = portfolio_of(settings, InMemoryBus())
        await again.prepare()  # refused before: the record disagreed with the fills
        assert again.ledger.quantity(SYMBOL) == first.fills[0].quantity + second.fills[0].quantity
        again.store.close()

    asyncio.run(scenario())


def test_a_fill_execution_never_stores_is_acknowledged_after_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", bar_seconds=1)

    async def run(bus: InMemoryBus, publish: bool) -> PortfolioComponent:
        portfolio = portfolio_of(settings, bus, confirm_interval_s=0.05, confirm_timeout_s=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(portfolio.run(stop))
        await asyncio.wait_for(portfolio.started.wait(), 10)
        reports = Acknowledged(portfolio, Topic.EXECUTION_EVENTS)
        if publish:  # acknowledged after the timeout, the fill still not stored
            await bus.publish(Topic.EXECUTION_EVENTS, fill_report())
            await reports.until(lambda acked: acked == ["rep-1"], "the report given up")
        else:  # a read goes by and delivers nothing
            await eventually(lambda: bool(reports.reads), what="a read of the reports")
        stop.set()
        await asyncio.wait_for(task, 10)
        portfolio.store.close()
        return portfolio

    async def scenario() -> None:
        bus = InMemoryBus()
        first = await run(bus, publish=True)
        assert first.ledger.quantity(SYMBOL) == Decimal("0.01")  # booked for this run
        store = open_store(settings)
        assert store.positions() == []  # not while the store lacks the fill
        store.close()
        second = await run(bus, publish=False)
        assert second.counts.get("fills") is None  # acknowledged: not delivered again
        assert second.ledger.quantity(SYMBOL) == 0  # the store is the truth after a restart

    asyncio.run(scenario())
    assert "has not stored fill rep-1 after 0 s" in caplog.text
