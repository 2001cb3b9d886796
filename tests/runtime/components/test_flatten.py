"""``cdb risk halt --flatten`` in component mode: `risk`, `execution` and `portfolio` in process
(in-process bus, one SQLite file), a position held from before the start and a buy still working
in the same symbol. The audited halt with ``--flatten`` makes `risk` approve the operator's exit at
the symbol's next closed bar, where `execution` waits for it: both see the buy the same way (filled
before the bar, or cancelled by the exit), `execution` fills the exit at the next trade, and every
ledger and the store end flat with nobody waiting for the other."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest
from market_testkit import SYMBOL, closed_bar, eventually, quote
from market_testkit import trade as market_trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import (
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
from cdb_cli.engine.operator import OPERATOR
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord
from cdb_cli.engine.remote import progress_report, read_progress
from cdb_cli.engine.risk import TradingState
from cdb_cli.engine.runs import HALT_ACTION
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.base import Component
from cdb_cli.runtime.components.execution import ExecutionComponent
from cdb_cli.runtime.components.portfolio import PortfolioComponent
from cdb_cli.runtime.components.risk import RiskComponent
from cdb_cli.settings import Settings

SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND
HELD = Decimal("4.99")
BUY_AT = T0 + SECOND + 2  # the working buy: after the first trade, before the second


def bought(store_url: str) -> None:
    """A buy filled before the start (4.99 BTC held), and another still working."""
    store = open_store(Settings(database_url=store_url), create_if_new=True)
    order = OrderRecord(
        client_order_id="pold-3",
        decision_id="pold-2",
        symbol=SYMBOL,
        side=Side.BUY,
        order_type="MARKET",
        quote_amount=Decimal(500),
        status="FILLED",
        ts_created=T0,
        ts_updated=T0,
        mode="paper",
    )
    fill = FillRecord(
        fill_id="pold-3-f1",
        client_order_id=order.client_order_id,
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=HELD,
        price=Decimal("100.01"),
        fee=Decimal("0.2495499"),
        fee_asset="USDT",
        ts_event=T0,
        liquidity="taker",
    )
    working = order.model_copy(
        update={
            "client_order_id": "pold-5",
            "decision_id": "pold-4",
            "quote_amount": Decimal(200),
            "status": "NEW",
            "ts_created": BUY_AT,
            "ts_updated": BUY_AT,
        }
    )
    store.save_batch(orders=[order, working], fills=[fill])
    store.close()


def trade(ts: int, price: str) -> TradeTick:
    return market_trade(ts, price, quantity="50", aggressor=Side.SELL)


C = TypeVar("C", bound=Component)


def make(kind: type[C], settings: Settings, bus: InMemoryBus, wait_timeout_s: float = 5.0) -> C:
    """A component on its own store connection, as in its own process."""
    return kind(
        settings,
        store=open_store(settings),
        bus=bus,
        symbols=[SYMBOL],
        instruments={SYMBOL: default_instrument(SYMBOL)},
        run_id="ptestflatten",
        flush_interval_s=0.05,
        wait_timeout_s=wait_timeout_s,
    )


@pytest.mark.parametrize(
    ("buy_fills_first", "signals_silent"),
    [(True, False), (False, False), (False, True)],
    ids=["buy-filled", "buy-working", "signals-silent"],
)
def test_a_halt_with_flatten_sells_every_position_at_the_next_bar(
    tmp_path: Path, buy_fills_first: bool, signals_silent: bool
) -> None:
    """signals-silent: `signals` never reports on the bar (stalled), so `risk` decides after its
    wait timeout (1 s here), approving the operator's exit, which needs no signal; `execution`
    waits longer than that for `risk`, so it still places the exit at the bar."""
    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    bought(url)
    settings = Settings(database_url=url, bus_url="redis://127.0.0.1:6379/0", bar_seconds=1)
    store = open_store(settings)
    counts: list[dict[str, int]] = []

    async def scenario() -> None:
        bus = InMemoryBus()
        timeout = 1.0 if signals_silent else 5.0
        risk = make(RiskComponent, settings, bus, timeout)
        execution = make(ExecutionComponent, settings, bus, timeout)
        portfolio = make(PortfolioComponent, settings, bus)
        components: list[Component] = [risk, execution, portfolio]
        approvals = await bus.subscribe(Topic.RISK_APPROVED_TRADES, "test", "t")
        stop = asyncio.Event()
        tasks = [asyncio.create_task(component.run(stop)) for component in components]
        for component in components:
            await asyncio.wait_for(component.started.wait(), 10)
        assert risk.pipeline.portfolio.quantity(SYMBOL) == HELD
        assert execution.venue.has_working(SYMBOL)  # the buy, restored in both
        assert [o.client_order_id for o in risk.execution.working_orders()] == ["pold-5"]
        touch = quote(T0 + SECOND, "101.99", "102.01", size="10")
        await bus.publish_many(
            [(Topic.MARKET_DATA, touch), (Topic.MARKET_DATA, trade(T0 + SECOND + 1, "102"))]
        )
        await eventually(lambda: risk.last_event_ns > T0)
        store.add_audit(
            AuditRecord(
                ts_event=time.time_ns(),
                action=HALT_ACTION,
                actor="tester",
                run_id="ptestflatten",
                detail={"reason": "drill", "flatten": "yes", "via": "cli"},
            )
        )
        await eventually(lambda: risk.control.flatten.reason == "drill")  # within a second
        assert risk.pipeline.trading_state is TradingState.HALTED
        if buy_fills_first:  # a trade after the halt, before the bar: both fill the buy there
            await bus.publish(Topic.MARKET_DATA, trade(T0 + 2 * SECOND, "102.5"))
            await eventually(lambda: risk.pipeline.portfolio.quantity(SYMBOL) > HELD)
        held = risk.pipeline.portfolio.quantity(SYMBOL)
        assert not [d for d in await approvals.fetch(10, 0.3) if d.event.source == OPERATOR]
        # The symbol's next closed bar (signals found nothing in it): its exit is approved there.
        bar = closed_bar(T0 + 2 * SECOND, T0 + 3 * SECOND, "102")
        if not signals_silent:
            await bus.publish(
                Topic.TRADING_SIGNALS,
                progress_report(
                    "signals", symbol=SYMBOL, bar_id=bar.event_id, ts=bar.closed_at, count=0
                ),
            )
        await bus.publish_many(
            [(Topic.MARKET_DATA, bar), (Topic.MARKET_DATA, trade(bar.closed_at, "101.8"))]
        )
        published = [delivery.event for delivery in await approvals.fetch(10, 5.0)]
        [exit_approval] = [e for e in published if isinstance(e, OrderApproved)]
        assert exit_approval.source == OPERATOR
        assert exit_approval.side is Side.SELL
        assert exit_approval.ts_event == bar.closed_at
        [progress] = [read_progress(e) for e in published if isinstance(e, HealthReport)]
        assert progress == ("risk", bar.event_id, 1)
        await eventually(lambda: execution.venue.has_working(SYMBOL))
        # The exit cancelled the buy, if still working, in both; the next trade after the paper
        # latency fills the exit, and every ledger is then flat.
        await bus.publish(Topic.MARKET_DATA, trade(T0 + 4 * SECOND, "101.5"))
        await eventually(lambda: risk.pipeline.portfolio.quantity(SYMBOL) == 0)
        await eventually(lambda: execution.ledger.quantity(SYMBOL) == 0)
        await eventually(lambda: portfolio.ledger.quantity(SYMBOL) == 0)
        await eventually(lambda: risk.control.flatten.reason is None)  # done: flat
        assert not risk.execution.working_orders()
        flat = [(SYMBOL, Decimal(0))]
        await eventually(lambda: [(p.symbol, p.quantity) for p in store.positions()] == flat)
        stop.set()
        for task in tasks:
            counts.append(await asyncio.wait_for(task, 15))  # a failed component raises here
        for component in components:
            component.store.close()
        risk_counts, execution_counts, _ = counts
        assert risk_counts.get("wait_timeouts", 0) == (1 if signals_silent else 0)
        assert execution_counts.get("wait_timeouts", 0) == 0
        sold = sum(f.quantity for f in store.fills() if f.side is Side.SELL)
        assert sold == held  # what both held at the bar

    try:
        asyncio.run(scenario())
        # Stored as one process stores a flatten: the operator's signal, its decision (one check,
        # rule operator), the sell and its fill (and, above, the position at zero).
        [signal] = store.events(TradingSignal)
        assert (signal.source, signal.side) == (OPERATOR, SignalSide.EXIT)
        [decision] = store.events(RiskDecision)
        assert decision.signal_id == signal.event_id
        assert [check.code for check in decision.checks] == ["operator_flatten"]
        status = {order.client_order_id: order.status for order in store.orders()}
        assert status["pold-5"] == ("FILLED" if buy_fills_first else "CANCELED")
        sell = [order for order in store.orders() if order.side is Side.SELL]
        assert [order.status for order in sell] == ["FILLED"]
    finally:
        store.close()
