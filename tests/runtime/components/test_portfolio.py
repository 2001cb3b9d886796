"""The portfolio component in process (in-process bus, SQLite store): a fill report is acknowledged
only once `execution` has stored the fill, so a restart in between books it from the bus again,
and a report delivered again whose fill is stored is not booked twice; `execution` is played by
this test."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import ExecutionReport, Side, Topic
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.records import OrderRecord
from cdb_cli.engine.remote import report_fill
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


def test_a_fill_report_is_acknowledged_only_once_execution_stored_the_fill(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", bar_seconds=1)
    report = fill_report()

    async def run_portfolio(bus: InMemoryBus, seconds: float) -> PortfolioComponent:
        store = open_store(settings, create_if_new=True)
        portfolio = PortfolioComponent(
            settings,
            store=store,
            bus=bus,
            symbols=[SYMBOL],
            instruments={SYMBOL: default_instrument(SYMBOL)},
            run_id="ptestportfolio",
            flush_interval_s=0.05,
            confirm_interval_s=0.05,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(portfolio.run(stop))
        await asyncio.wait_for(portfolio.started.wait(), 10)
        if seconds == 0:  # the report is published while this one runs
            await bus.publish(Topic.EXECUTION_EVENTS, report)
            seconds = 0.5
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait_for(task, 10)
        store.close()
        return portfolio

    async def scenario() -> None:
        bus = InMemoryBus()
        first = await run_portfolio(bus, 0)
        assert first.ledger.quantity(SYMBOL) == Decimal("0.01")
        # Stopped before execution stored the fill: the report comes back, and is booked again.
        second = await run_portfolio(bus, 0.5)
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
        # execution names its fill apart from its report (…-f1, …-r2): the same fill all the same
        store.add_fill(report_fill(report).model_copy(update={"fill_id": "appr-1-pf1"}))
        store.close()
        third = await run_portfolio(bus, 0.5)  # booked from the store, the report once more
        assert third.ledger.quantity(SYMBOL) == Decimal("0.01")  # not twice
        fourth = await run_portfolio(bus, 0.3)  # the third acknowledged it: gone from the bus
        assert fourth.ledger.quantity(SYMBOL) == Decimal("0.01")
        assert fourth.counts.get("fills") is None

    asyncio.run(scenario())
