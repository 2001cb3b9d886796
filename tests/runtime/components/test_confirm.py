"""``StoredFills``: what a component holds until ``execution`` stored the fill (real SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from market_testkit import eventually

from cdb_cli.engine.events import ExecutionReport, Side, Topic
from cdb_cli.engine.ports.bus import Delivery
from cdb_cli.engine.records import OrderRecord
from cdb_cli.engine.remote import report_fill
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.confirm import StoredFills
from cdb_cli.runtime.components.inbox import Inbox
from cdb_cli.settings import Settings


def report(n: int) -> ExecutionReport:
    return ExecutionReport(
        event_id=f"pord-1-pexecr{n}",
        symbol="BTCUSDT",
        ts_event=1_795_400_000_000_000_000 + n,
        source="paper",
        client_order_id="pord-1",
        side=Side.BUY,
        status="PARTIALLY_FILLED",
        last_quantity=Decimal("0.5"),
        last_price=Decimal(100),
        fee=Decimal("0.05"),
        fee_asset="USDT",
    )


class Acks:
    """The subscription side of the inbox: records what is acknowledged."""

    def __init__(self) -> None:
        self.acked: list[str] = []

    async def ack(self, *deliveries: Delivery) -> None:
        self.acked += [delivery.message_id for delivery in deliveries]


def test_held_fills_count_as_unstored_while_a_check_is_under_way(tmp_path: Path) -> None:
    """A background check and ``all_stored`` side by side: while the store read of a check is
    out, what it is checking still counts as not stored; once the store has a fill, its
    delivery is marked done; one store read serves every fill held."""
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"), create_if_new=True)
    store.save_order(
        OrderRecord(
            client_order_id="pord-1",
            decision_id="pdec-1",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type="MARKET",
            quote_amount=Decimal(100),
            status="NEW",
            ts_created=1_795_400_000_000_000_000,
            ts_updated=1_795_400_000_000_000_000,
            mode="paper",
        )
    )
    gate = asyncio.Event()
    reads: list[dict[str, Any]] = []

    async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs)
        await gate.wait()  # the store read is slow
        return await asyncio.to_thread(function, *args, **kwargs)

    async def scenario() -> None:
        acks = Acks()
        inbox = Inbox(acks, asyncio.Event())  # type: ignore[arg-type]
        held = StoredFills("test", {Topic.EXECUTION_EVENTS: inbox}, store, call)
        deliveries = [Delivery(Topic.EXECUTION_EVENTS, f"{n}-0", report(n)) for n in (1, 2)]
        for delivery in deliveries:
            held.hold(delivery, report_fill(delivery.event))  # type: ignore[arg-type]
        store.add_fill(report_fill(report(1)))
        check = asyncio.create_task(held.confirm())
        await eventually(lambda: len(reads) == 1, what="the check's store read")
        assert not check.done()
        assert not held.all_stored  # under way: the stored fill 1 is not confirmed yet
        gate.set()
        await check
        assert len(reads) == 1  # one read for both fills
        await inbox.ack()
        assert acks.acked == ["1-0"]
        assert not held.all_stored  # the second is not stored yet
        store.add_fill(report_fill(report(2)))
        await held.confirm()
        await inbox.ack()
        assert acks.acked == ["1-0", "2-0"]
        assert held.all_stored

    try:
        asyncio.run(scenario())
    finally:
        store.close()
