"""The loop's batches: written in one transaction, then logged at INFO (a decision with the rules
that refused or reduced it, each order state, each fill), which is the operator's record off a
terminal. A batch the store refuses is not logged."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from paper_testkit import FlakyStore

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import CheckResult, RiskDecision, Side, SignalSide, Topic
from cdb_cli.engine.records import FillRecord, OrderRecord
from cdb_cli.engine.store_memory import InMemoryStore
from cdb_cli.runtime.outbox import BatchWriter, Outbox, write_batch

T0 = 1_795_400_000_000_000_000


def decision(verdict: str, *checks: CheckResult, final: str = "500") -> RiskDecision:
    return RiskDecision(
        event_id=f"dec-{verdict}",
        symbol="BTCUSDT",
        ts_event=T0,
        source="risk",
        signal_id=f"sig-{verdict}",
        verdict=verdict,  # type: ignore[arg-type]
        side=SignalSide.BUY,
        requested_quote=Decimal(500),
        final_quote=Decimal(final),
        checks=(
            CheckResult(rule="spread", code="ok", passed=True, observed=Decimal("0.01")),
            *checks,
        ),
    )


def exit_without_position() -> RiskDecision:
    """An exit signal with nothing held: the drawdown rule does not apply, the size rule fails."""
    return decision(
        "rejected",
        CheckResult(
            rule="daily_drawdown", code="ok", passed=True, detail="not applicable to exits"
        ),
        CheckResult(
            rule="position_size",
            code="no_position",
            passed=False,
            observed=Decimal(0),
            limit=Decimal(0),
            detail="nothing to exit",
        ),
        final="0",
    ).model_copy(update={"side": SignalSide.EXIT, "requested_quote": Decimal(0)})


ORDER = OrderRecord(
    client_order_id="p1",
    decision_id="dec-approved",
    symbol="BTCUSDT",
    side=Side.BUY,
    order_type="MARKET",
    quote_amount=Decimal(500),
    status="FILLED",
    ts_created=T0,
    ts_updated=T0,
    mode="paper",
)
FILL = FillRecord(
    fill_id="p1-f1",
    client_order_id="p1",
    symbol="BTCUSDT",
    side=Side.BUY,
    quantity=Decimal("4.99"),
    price=Decimal("100.01"),
    fee=Decimal("0.24950000"),
    fee_asset="USDT",
    ts_event=T0,
    liquidity="taker",
)


def test_a_stored_batch_logs_each_decision_order_and_fill(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdb_cli.runtime.outbox")
    batch = Outbox()
    drawdown = CheckResult(
        rule="daily_drawdown",
        code="daily_drawdown",
        passed=False,
        observed=Decimal("5.23456789012"),
        limit=Decimal(5),
    )
    exposure = CheckResult(
        rule="exposure",
        code="ok",
        passed=True,
        observed=Decimal("40.0"),
        limit=Decimal(30),
        detail="reduced to 375",
    )
    batch.event(Topic.RISK_EVENTS, decision("rejected", drawdown, final="0"))
    batch.event(Topic.RISK_EVENTS, decision("reduced", exposure, final="375"))
    batch.event(Topic.RISK_EVENTS, exit_without_position())
    batch.event(Topic.RISK_EVENTS, decision("approved"))
    batch.order(ORDER)
    batch.fill(FILL)
    store = InMemoryStore()
    write_batch(store, batch, [], [], "ptest")
    assert [r.getMessage() for r in caplog.records] == [
        "Decision dec-rejected: BTCUSDT buy rejected, 0 of 500 quote: daily_drawdown "
        "(observed 5.23457, limit 5)",
        "Decision dec-reduced: BTCUSDT buy reduced, 375 of 500 quote: exposure (observed 40.0, "
        "limit 30; reduced)",
        "Decision dec-rejected: BTCUSDT exit rejected, 0 of 0 quote: no_position (observed 0, "
        "limit 0; nothing to exit)",
        "Decision dec-approved: BTCUSDT buy approved, 500 of 500 quote",
        "Order p1 BTCUSDT BUY MARKET 500 quote: FILLED",
        "Fill BTCUSDT BUY 4.99 at 100.01 (fee 0.2495 USDT, taker) of p1",
    ]
    assert [f.fill_id for f in store.fills()] == ["p1-f1"]


def test_a_batch_the_store_refuses_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdb_cli.runtime.outbox")
    batch = Outbox()
    batch.event(Topic.RISK_EVENTS, decision("approved"))
    batch.fill(FILL)  # its order was never saved
    with pytest.raises(StateError):
        write_batch(InMemoryStore(), batch, [], [], "ptest")
    assert caplog.records == []


async def _direct(function: Any, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def test_the_batch_writer_keeps_everything_while_the_store_is_down_and_writes_it_after() -> None:
    real = InMemoryStore()
    store = FlakyStore(real)
    writer = BatchWriter(store, "run1", _direct)  # type: ignore[arg-type]
    first, second = decision("approved"), decision("rejected", final="0")
    writer.outbox.event(Topic.RISK_EVENTS, first)
    writer.state_changes.append((1, "halted", "why"))
    store.down = True

    async def scenario() -> None:
        assert await writer.write() is None  # refused: all of it kept
        assert not writer.store_up
        writer.outbox.event(Topic.RISK_EVENTS, second)  # what came since goes after it
        assert await writer.write() is None
        store.down = False
        written = await writer.write()
        assert written is not None
        assert [event for _, event in written.events] == [first, second]
        assert writer.store_up
        assert not writer.pending()

    asyncio.run(scenario())
    assert real.events(RiskDecision) == [first, second]
    assert [(a.action, a.detail["state"]) for a in real.audits()] == [("trading_state", "halted")]


def test_the_batch_writer_spills_what_the_store_never_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = FlakyStore(InMemoryStore())
    store.down = True
    writer = BatchWriter(store, "run2", _direct)  # type: ignore[arg-type]
    writer.outbox.event(Topic.RISK_EVENTS, decision("approved"))

    assert asyncio.run(writer.finish(0.0)) is False

    lines = (tmp_path / "cdb-unsaved-run2.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert '"topic": "risk_events"' in lines[0]
    assert not writer.outbox
