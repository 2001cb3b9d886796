"""The operator's halts and resets in the trading loop (runtime/control.py): picked up from the
store at a flush, taken at once in process (SIGUSR1), kept over a restart, ended by a reset."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from cdb_testkit import QueueFeed
from market_testkit import eventually
from paper_testkit import (
    MINUTE,
    SECOND,
    SYMBOL,
    T0,
    CountedChecks,
    paper_settings,
    session,
    trade_minutes,
)

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    OrderApproved,
    RiskDecision,
    Side,
)
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord
from cdb_cli.engine.risk import TradingState
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, STATE_ACTION, trading_status
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import actor
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return paper_settings(tmp_path)


def test_a_halt_is_resumed_and_a_reset_picked_up_without_restart(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cdb_cli.runtime.paper")
    store = open_store(settings, create_if_new=True)
    store.add_audit(
        AuditRecord(
            ts_event=T0 - MINUTE,
            action=STATE_ACTION,
            actor="cdb run",
            run_id="pold",
            detail={"state": "halted", "reason": "loss from peak above 10 %"},
        )
    )
    store.close()

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        assert runtime.pipeline.trading_state is TradingState.HALTED
        await asyncio.to_thread(
            store.add_audit,
            AuditRecord(
                ts_event=T0 + SECOND,
                action=RESET_ACTION,
                actor="ops@desk",
                detail={"reason": "reviewed", "previous": "halted", "ended": "circuit_breaker"},
            ),
        )
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.ACTIVE)  # type: ignore[union-attr]

    asyncio.run(session(settings, scenario))
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Trading")]
    assert resumed == ["Trading resumes: ops@desk ended the circuit breaker's halt: reviewed"]


def _halt_record(ts: int, *, flatten: bool) -> AuditRecord:
    """What ``cdb risk halt`` writes."""
    return AuditRecord(
        ts_event=ts,
        action=HALT_ACTION,
        actor="ops@desk",
        detail={"reason": "exchange incident", "flatten": "yes" if flatten else "no", "via": "cli"},
    )


async def _bought(feed: QueueFeed, clock: TestClock, store: Store) -> None:
    """The buy of the first test: a jump on heavy volume, filled at the next minute's trade."""
    await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
    await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)
    await trade_minutes(feed, clock, 2, [110.5], volume=1.0)
    await eventually(lambda: bool(store.fills()))


def test_a_halt_in_the_store_stops_new_buys_at_the_next_flush(settings: Settings) -> None:
    halted_at: list[int] = []

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        halted_at.append(clock.timestamp_ns())
        await asyncio.to_thread(store.add_audit, _halt_record(clock.timestamp_ns(), flatten=False))
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.HALTED)  # type: ignore[union-attr]
        # the jump that buys in the first test: now refused
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)
        await trade_minutes(feed, clock, 2, [110.5, 111.0], volume=1.0)

    asyncio.run(session(settings, scenario))
    store = open_store(settings)
    try:
        decisions = store.events(RiskDecision)
        assert decisions  # the strategy still asked
        assert {d.verdict for d in decisions} == {"rejected"}
        assert all(d.ts_event > halted_at[0] for d in decisions)
        assert store.events(OrderApproved) == []
        assert store.orders() == []
        assert trading_status(store).state is TradingState.HALTED
        (change,) = store.audits(action=STATE_ACTION)  # the run's own record of the change
        assert change.detail == {
            "state": "halted",
            "reason": "halted by the operator (ops@desk): exchange incident",
        }
    finally:
        store.close()


def test_a_halt_with_flatten_sells_the_position_like_any_exit(settings: Settings) -> None:
    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        await _bought(feed, clock, store)
        assert runtime.pipeline.portfolio.quantity(SYMBOL) > 0
        await asyncio.to_thread(store.add_audit, _halt_record(clock.timestamp_ns(), flatten=True))
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.HALTED)  # type: ignore[union-attr]
        await eventually(lambda: bool(runtime.pipeline.execution.working_orders()))  # type: ignore[union-attr]
        await trade_minutes(feed, clock, 3, [109.0], volume=1.0)  # the exit fills at a trade
        await eventually(lambda: any(f.side is Side.SELL for f in store.fills()))
        await trade_minutes(feed, clock, 4, [112.0, 115.0], volume=1000.0)  # no buy again

    _, runtime = asyncio.run(session(settings, scenario))
    assert runtime.pipeline is not None
    assert runtime.pipeline.portfolio.quantity(SYMBOL) == 0
    store = open_store(settings)
    try:
        buys = [f for f in store.fills() if f.side is Side.BUY]
        sells = [f for f in store.fills() if f.side is Side.SELL]
        assert sum(f.quantity for f in sells) == sum(f.quantity for f in buys) > 0
        (position,) = store.positions()
        assert position.quantity == 0
        sell_orders = [o for o in store.orders() if o.side is Side.SELL]
        assert [o.status for o in sell_orders] == ["FILLED"]
        (decision,) = [d for d in store.events(RiskDecision) if d.source == "operator"]
        assert decision.event_id == sell_orders[0].decision_id
        assert decision.checks[-1].detail == "flatten by the operator (halted): exchange incident"
        assert len([o for o in store.orders() if o.side is Side.BUY]) == 1
    finally:
        store.close()


def test_a_halt_survives_a_restart_and_a_reset_ends_it(settings: Settings) -> None:
    store = open_store(settings, create_if_new=True)
    store.add_audit(_halt_record(T0 - MINUTE, flatten=True))
    store.close()
    checked = CountedChecks(open_store(settings))

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        assert runtime.pipeline.trading_state is TradingState.HALTED
        await checked.flushes()  # flushes go by: the known halt is not taken again
        assert [state for _, state, _ in runtime.pipeline.stats.state_changes] == ["halted"]
        await asyncio.to_thread(
            store.add_audit,
            AuditRecord(
                ts_event=T0 + SECOND,
                action=RESET_ACTION,
                actor="ops@desk",
                detail={"reason": "reviewed", "previous": "halted"},
            ),
        )
        await eventually(lambda: runtime.pipeline.trading_state is TradingState.ACTIVE)  # type: ignore[union-attr]
        await checked.flushes()  # and after the reset the old halt stays ended
        assert runtime.pipeline.trading_state is TradingState.ACTIVE
        states = [state for _, state, _ in runtime.pipeline.stats.state_changes]
        assert states == ["halted", "active"]

    asyncio.run(session(settings, scenario, store=checked))  # type: ignore[arg-type]


def test_halt_now_halts_in_process_and_writes_the_audit_record(settings: Settings) -> None:
    checked = CountedChecks(open_store(settings, create_if_new=True))

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        assert runtime.pipeline is not None
        runtime.halt_now("SIGUSR1 from the operator", via="sigusr1")
        assert runtime.pipeline.trading_state is TradingState.HALTED  # at once, not at a flush
        await eventually(lambda: bool(store.audits(action=HALT_ACTION)))
        await checked.flushes()  # a whole flush since the record is in the store
        (change,) = runtime.pipeline.stats.state_changes  # not picked up a second time
        assert change[1:] == ("halted", "halted by the operator (" + actor() + "): "
                              "SIGUSR1 from the operator")  # fmt: skip

    asyncio.run(session(settings, scenario, store=checked))  # type: ignore[arg-type]
    store = open_store(settings)
    try:
        (record,) = store.audits(action=HALT_ACTION)
        assert record.detail == {
            "reason": "SIGUSR1 from the operator",
            "flatten": "no",
            "via": "sigusr1",
        }
        assert record.run_id.startswith("p")
        assert trading_status(store).state is TradingState.HALTED
    finally:
        store.close()
