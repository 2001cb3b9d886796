"""``StoredFills``: what a component holds until ``execution`` stored the fill (real SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from market_testkit import eventually

from cdb_cli.engine.errors import DependencyError
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


def test_an_outage_of_the_store_does_not_count_towards_the_timeout(tmp_path: Path) -> None:
    """While the store's reads fail (execution cannot store the fill either), a held report is
    not given up: the timeout runs from when the store answers again."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
    store = open_store(settings, create_if_new=True)
    down = True

    async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if down:
            raise DependencyError("the database is down")
        return await asyncio.to_thread(function, *args, **kwargs)

    async def scenario() -> float:
        nonlocal down
        acks = Acks()
        inbox = Inbox(acks, asyncio.Event())  # type: ignore[arg-type]
        held = StoredFills("test", {Topic.EXECUTION_EVENTS: inbox}, store, call, timeout_s=0.2)
        held.hold(Delivery(Topic.EXECUTION_EVENTS, "1-0", report(1)), report_fill(report(1)))
        clock = asyncio.get_running_loop().time
        started = clock()
        for timeouts in (1, 2, 3):  # a failed check after each timeout's worth of outage
            await eventually(lambda n=timeouts: clock() - started > 0.2 * n, what="the outage")
            await held.confirm()
        last_failure = clock()
        await inbox.ack()
        assert acks.acked == []  # not given up during the outage
        down = False

        async def given_up() -> bool:
            await held.confirm()
            await inbox.ack()
            return acks.acked == ["1-0"]

        await eventually(given_up, what="given up 0.2 s after the last failed read")
        return clock() - last_failure

    try:
        assert asyncio.run(scenario()) >= 0.2
    finally:
        store.close()
