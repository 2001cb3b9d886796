"""The execution component in process (in-process bus, SQLite store) across a restart: an
approval is acknowledged only once its order is in the store, so one that came before a stop but
whose bar had not yet come is placed by the restarted process, and one whose order the store
already has is not placed twice; `risk` is simulated by this test."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from components_testkit import Acknowledged, RecordingBus
from market_testkit import SYMBOL, closed_bar, eventually, quote, trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import Event, ExecutionReport, OrderApproved, Side, Topic
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.records import FillRecord, OrderRecord
from cdb_cli.engine.remote import progress_report
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.execution import ExecutionComponent
from cdb_cli.settings import Settings

SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND
CLOSED_AT = T0 + 2 * SECOND
BAR = closed_bar(T0 + SECOND, CLOSED_AT)


APPROVAL = OrderApproved(
    event_id="ptestexec_appr1",
    symbol=SYMBOL,
    ts_event=CLOSED_AT,
    source="risk",
    decision_id="ptestexec_dec1",
    side=Side.BUY,
    quote_amount=Decimal(200),
    reference_price=Decimal(100),
)


def settings_in(folder: Path) -> Settings:
    """An SQLite file in ``folder``; 1-s bars (component mode wants a Redis URL: the tests pass
    their in-process bus)."""
    return Settings(
        database_url=f"sqlite:///{folder / 'cdb.db'}",
        bus_url="redis://127.0.0.1:6379/0",
        bar_seconds=1,
    )


def execution(settings: Settings, bus: InMemoryBus, **options: float) -> ExecutionComponent:
    return ExecutionComponent(
        settings,
        store=open_store(settings, create_if_new=True),
        bus=bus,
        symbols=[SYMBOL],
        instruments={SYMBOL: default_instrument(SYMBOL)},
        run_id="ptestexec",
        flush_interval_s=0.05,
        **options,  # type: ignore[arg-type]
    )


class Running:
    """An execution component running on ``bus`` until :meth:`end` (as its own process)."""

    def __init__(self, settings: Settings, bus: InMemoryBus, **options: float) -> None:
        self.component = execution(settings, bus, **options)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[dict[str, int]] | None = None

    async def start(self) -> ExecutionComponent:
        self.task = asyncio.create_task(self.component.run(self.stop))
        await asyncio.wait_for(self.component.started.wait(), 10)
        return self.component

    async def end(self) -> dict[str, int]:
        """Stop it; its counts."""
        assert self.task is not None
        self.stop.set()
        counts = await asyncio.wait_for(self.task, 30)
        self.component.store.close()
        return counts


async def announce(bus: InMemoryBus) -> None:
    """`risk` approved one order at the bar, and says so."""
    progress = progress_report("risk", symbol=SYMBOL, bar_id=BAR.event_id, ts=CLOSED_AT, count=1)
    await bus.publish_many(
        [(Topic.RISK_APPROVED_TRADES, APPROVAL), (Topic.RISK_APPROVED_TRADES, progress)]
    )


async def bar_then_trade(bus: InMemoryBus) -> None:
    """The bar, then a trade after the paper latency: the approval is placed and filled."""
    await bus.publish_many(
        [
            (Topic.MARKET_DATA, quote(T0 + SECOND, size="5")),
            (Topic.MARKET_DATA, BAR),
            (Topic.MARKET_DATA, trade(CLOSED_AT + 5 * SECOND, "100", quantity="50")),
        ]
    )


def test_an_approval_that_came_before_a_stop_is_placed_after_the_restart(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)

    async def scenario() -> dict[str, int]:
        bus = RecordingBus()
        first_run = Running(settings, bus)
        first = await first_run.start()
        await announce(bus)
        # taken in (delivered, and drained from the inbox at the next step), its bar not yet come
        delivered = bus.delivered[(Topic.RISK_APPROVED_TRADES, "execution")]
        inbox = first.inboxes[Topic.RISK_APPROVED_TRADES]
        await eventually(
            lambda: len(delivered) == 2 and not inbox.queue, what="the approval taken in"
        )
        approvals = Acknowledged(first, Topic.RISK_APPROVED_TRADES)
        await eventually(lambda: len(approvals.rounds) >= 3, what="three rounds of the writer")
        assert approvals.acked == []  # the approval stays unacknowledged
        await first_run.end()
        second_run = Running(settings, bus)
        second = await second_run.start()
        await bar_then_trade(bus)
        await eventually(lambda: second.ledger.quantity(SYMBOL) > 0)
        return await second_run.end()

    counts = asyncio.run(scenario())
    assert counts.get("wait_timeouts", 0) == 0
    assert counts["orders"] == 1
    store = open_store(settings)
    try:
        [order] = store.orders()
        assert order.client_order_id == APPROVAL.event_id
        assert order.status == "FILLED"
        assert sum(f.quantity for f in store.fills()) > 0
    finally:
        store.close()


def test_an_approval_whose_order_is_stored_is_not_placed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash after the order was stored but before its approval was acknowledged: the
    restarted process gets the approval and its bar back, and leaves the stored order alone."""
    settings = settings_in(tmp_path)
    store = open_store(settings, create_if_new=True)
    order = OrderRecord(
        client_order_id=APPROVAL.event_id,
        decision_id=APPROVAL.decision_id,
        symbol=SYMBOL,
        side=Side.BUY,
        order_type="MARKET",
        quote_amount=APPROVAL.quote_amount,
        status="FILLED",
        ts_created=CLOSED_AT,
        ts_updated=CLOSED_AT + SECOND,
        mode="paper",
    )
    fill = FillRecord(
        fill_id=f"{APPROVAL.event_id}-f1",
        client_order_id=APPROVAL.event_id,
        symbol=SYMBOL,
        side=Side.BUY,
        price=Decimal("100.01"),
        quantity=Decimal("1.99"),
        fee=Decimal("0.0995"),
        fee_asset="USDT",
        ts_event=CLOSED_AT + SECOND,
        liquidity="taker",
    )
    store.save_batch(orders=[order], fills=[fill])
    store.close()

    async def scenario() -> dict[str, int]:
        bus = InMemoryBus()
        component_run = Running(settings, bus)
        component = await component_run.start()
        market = Acknowledged(component, Topic.MARKET_DATA)
        await announce(bus)
        await bar_then_trade(bus)
        # the bar handled (the stored order named, not placed again), then the trade after it,
        # which fills nothing: both acknowledged, so their outcome is stored
        await market.until(lambda acked: len(acked) == 3, "the quote, bar and trade handled")
        return await component_run.end()

    caplog.set_level(logging.INFO, logger="cdb_cli.runtime.components.execution")
    counts = asyncio.run(scenario())
    assert "ptestexec_appr1 was placed before; not again" in caplog.text
    assert counts.get("orders", 0) == 0
    assert counts.get("wait_timeouts", 0) == 0
    store = open_store(settings)
    try:
        assert [(o.client_order_id, o.status) for o in store.orders()] == [
            (APPROVAL.event_id, "FILLED")
        ]
        assert [f.fill_id for f in store.fills()] == [fill.fill_id]
    finally:
        store.close()


def test_a_bar_whose_wait_a_stop_cut_short_is_handled_after_the_restart(tmp_path: Path) -> None:
    """Stopped while it waits at a bar for `risk`, `execution` leaves the bar unhandled (not
    acknowledged) instead of handling it without its approvals: the restart gets the bar back,
    with the approval that came meanwhile, and places it there."""
    settings = settings_in(tmp_path)

    async def scenario() -> dict[str, int]:
        bus = InMemoryBus()
        first_run = Running(settings, bus)
        first = await first_run.start()
        await bar_then_trade(bus)  # `risk` has not said a word on the bar yet
        market = first.inboxes[Topic.MARKET_DATA].queue
        await eventually(  # the quote handled: execution waits at the bar
            lambda: bool(market) and market[0].event.event_id == BAR.event_id,
            what="execution at the bar",
        )
        counts = await first_run.end()
        assert counts.get("wait_timeouts", 0) == 0  # stopped, not given up
        await announce(bus)  # `risk` decides while execution is down
        second_run = Running(settings, bus)
        second = await second_run.start()
        await eventually(lambda: second.ledger.quantity(SYMBOL) > 0)
        return await second_run.end()

    counts = asyncio.run(scenario())
    assert counts["orders"] == 1
    assert counts.get("wait_timeouts", 0) == 0
    store = open_store(settings)
    try:
        assert [(o.client_order_id, o.status) for o in store.orders()] == [
            (APPROVAL.event_id, "FILLED")
        ]
    finally:
        store.close()


def held_position(settings: Settings) -> None:
    """The store has a filled buy of 1.99 ``SYMBOL`` (the component's ledger holds it)."""
    store = open_store(settings, create_if_new=True)
    order = OrderRecord(
        client_order_id="ptestexec_buy0",
        decision_id="ptestexec_dec0",
        symbol=SYMBOL,
        side=Side.BUY,
        order_type="MARKET",
        quote_amount=Decimal(200),
        status="FILLED",
        ts_created=T0 - 10 * SECOND,
        ts_updated=T0 - 9 * SECOND,
        mode="paper",
    )
    fill = FillRecord(
        fill_id="ptestexec_buy0-f1",
        client_order_id=order.client_order_id,
        symbol=SYMBOL,
        side=Side.BUY,
        price=Decimal("100.01"),
        quantity=Decimal("1.99"),
        fee=Decimal("0.0995"),
        fee_asset="USDT",
        ts_event=T0 - 9 * SECOND,
        liquidity="taker",
    )
    store.save_batch(orders=[order], fills=[fill])
    store.close()


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_a_late_approval_is_never_dropped(
    tmp_path: Path, side: Side, caplog: pytest.LogCaptureFixture
) -> None:
    """`risk` announces the bar's approval only after `execution` gave up waiting at the bar and
    went past it: an entry is recorded EXPIRED with its reason (and its report, which `risk`
    books), an exit is placed at once and fills at the next trade."""
    settings = settings_in(tmp_path)
    held_position(settings)
    approval = APPROVAL.model_copy(update={"side": side})

    async def scenario() -> tuple[dict[str, int], list[Event]]:
        bus = InMemoryBus()
        reports = await bus.subscribe(Topic.EXECUTION_EVENTS, "risk", "r")
        component_run = Running(settings, bus, wait_timeout_s=0.1)
        component = await component_run.start()
        market = Acknowledged(component, Topic.MARKET_DATA)
        await bar_then_trade(bus)  # `risk` says nothing in time
        await market.until(lambda acked: len(acked) == 3, "the quote, bar and trade handled")
        progress = progress_report(
            "risk", symbol=SYMBOL, bar_id=BAR.event_id, ts=CLOSED_AT, count=1
        )
        await bus.publish_many(
            [(Topic.RISK_APPROVED_TRADES, approval), (Topic.RISK_APPROVED_TRADES, progress)]
        )
        approvals = Acknowledged(component, Topic.RISK_APPROVED_TRADES)
        await approvals.until(lambda acked: approval.event_id in acked, "the late approval")
        if side is Side.SELL:
            later = trade(CLOSED_AT + 9 * SECOND, "101", quantity="50")
            await bus.publish(Topic.MARKET_DATA, later)
            await eventually(lambda: component.ledger.quantity(SYMBOL) == 0, what="sold")
        counts = await component_run.end()
        return counts, [delivery.event for delivery in await reports.fetch(10, 1.0)]

    counts, reports = asyncio.run(scenario())
    assert counts["wait_timeouts"] == 1
    store = open_store(settings)
    try:
        orders = {o.client_order_id: o for o in store.orders()}
        fills = [f for f in store.fills() if f.client_order_id == approval.event_id]
    finally:
        store.close()
    late = orders[approval.event_id]
    if side is Side.BUY:
        assert counts["late_entries_expired"] == 1
        assert late.status == "EXPIRED"
        assert fills == []
        [report] = [
            r
            for r in reports
            if isinstance(r, ExecutionReport) and r.client_order_id == late.client_order_id
        ]
        assert report.status == "EXPIRED"
        assert "expired: the approval came after its bar was handled (5.0 s" in report.reason
        assert "entry ptestexec_appr1 expired" in caplog.text
    else:
        assert counts["late_exits_placed"] == 1
        assert late.status == "FILLED"
        assert late.ts_created == CLOSED_AT + 5 * SECOND  # placed where execution was
        assert sum(f.quantity for f in fills) == Decimal("1.99")
        assert [f.ts_event for f in fills] == [CLOSED_AT + 9 * SECOND]
