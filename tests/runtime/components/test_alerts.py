"""Component mode mails what one process mails (in process: in-process bus, SQLite store, a real
SMTP server): `risk` an operator's halt (picked up while it runs) and a breaker trip, `marketdata`
a feed that went stale, and every component its own failure; `/ready` says why it is not ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import QueueFeed
from market_testkit import eventually
from paper_testkit import CountedChecks

from cdb_cli.adapters.notify.email import EmailNotifier
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import Side, TradeTick
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.records import AuditRecord
from cdb_cli.engine.risk import TradingState
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components.base import Component
from cdb_cli.runtime.components.marketdata import MarketDataComponent
from cdb_cli.runtime.components.risk import RiskComponent
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"


def mail_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'components.db'}",
        bar_seconds=1,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_from="cdb@example.org",
        smtp_to="ops@example.org",
        **overrides,
    )


def build(kind: type[Component], settings: Settings, **extra: Any) -> Component:
    notifier = EmailNotifier.from_settings(settings)
    assert notifier is not None
    return kind(
        settings,
        store=open_store(settings, create_if_new=True),
        bus=InMemoryBus(),
        symbols=[SYMBOL],
        instruments={SYMBOL: default_instrument(SYMBOL)},
        run_id="ptestalerts",
        alert=notifier.send_async,
        **extra,
    )


@asynccontextmanager
async def running(component: Component) -> AsyncIterator[None]:
    """The component's loop in a task, started; stopped (SIGTERM's path) and closed after."""
    stop = asyncio.Event()
    task = asyncio.create_task(component.run(stop))
    await asyncio.wait_for(component.started.wait(), 10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        component.store.close()


def audit(action: str, reason: str) -> AuditRecord:
    return AuditRecord(
        ts_event=time.time_ns(), action=action, actor="ops", detail={"reason": reason}
    )


def test_risk_picks_up_an_operator_halt_while_it_runs_mails_it_and_is_not_ready(
    tmp_path: Path, smtp_server: Callable[..., Any]
) -> None:
    server = smtp_server()
    settings = mail_settings(tmp_path, server.port)

    async def scenario() -> None:
        risk = build(RiskComponent, settings)
        assert isinstance(risk, RiskComponent)
        async with running(risk):
            assert risk.readiness() == []
            risk.store.add_audit(audit(HALT_ACTION, "exchange incident"))
            await eventually(lambda: risk.pipeline.trading_state is TradingState.HALTED)
            await eventually(lambda: len(server.inbox.mails) >= 1)
            assert risk.readiness() == ["breaker halted"]
            risk.store.add_audit(audit(RESET_ACTION, "incident over"))
            await eventually(lambda: risk.pipeline.trading_state is TradingState.ACTIVE)

    asyncio.run(scenario())
    [mail] = server.inbox.mails
    assert mail.message["Subject"] == "cdb circuit breaker: trading halted"
    body = mail.message.get_content()
    assert "exchange incident" in body
    assert "cdb risk reset" in body


def test_marketdata_mails_a_stale_feed_once_and_is_not_ready_while_it_is(
    tmp_path: Path, smtp_server: Callable[..., Any]
) -> None:
    server = smtp_server()
    settings = mail_settings(tmp_path, server.port, stale_data_seconds=1)

    async def scenario() -> None:
        feed = QueueFeed()
        marketdata = build(MarketDataComponent, settings, feed=feed)
        async with running(marketdata):
            trade = TradeTick(
                symbol=SYMBOL,
                ts_event=time.time_ns(),
                source="test",
                price=Decimal(100),
                quantity=Decimal(1),
                aggressor=Side.BUY,
            )
            await feed.events.put(trade)
            await eventually(lambda: marketdata.readiness() == [])
            await eventually(lambda: len(server.inbox.mails) >= 1)  # then nothing for > 1 s
            assert marketdata.readiness()[0].startswith(f"feed stale: {SYMBOL}")
            checks = watch_checks(marketdata)
            await eventually(lambda: len(checks) >= 3, what="three more checks of the feed")
            assert [len(alerts) for alerts in checks] == [0, 0, 0]  # still stale, not mailed

    asyncio.run(scenario())
    subjects = [mail.message["Subject"] for mail in server.inbox.mails]
    assert subjects == [f"cdb feed stale: {SYMBOL}"]  # once, not at every check


def watch_checks(marketdata: MarketDataComponent) -> list[list[tuple[str, str]]]:
    """From now on, what each of the feed watch's checks (one every 0.5 s) asks to mail."""
    checks: list[list[tuple[str, str]]] = []
    check = marketdata.watch.check

    def counted(now_ns: int, run_id: str) -> list[tuple[str, str]]:
        alerts = check(now_ns, run_id)
        checks.append(alerts)
        return alerts

    marketdata.watch.check = counted  # type: ignore[method-assign]
    return checks


class Failing(Component):
    name = "signals"

    async def step(self) -> None:
        raise RuntimeError("the strategy broke")


def test_a_component_that_fails_mails_it_and_raises(
    tmp_path: Path, smtp_server: Callable[..., Any]
) -> None:
    server = smtp_server()
    settings = mail_settings(tmp_path, server.port)

    async def scenario() -> None:
        failing = build(Failing, settings)
        with pytest.raises(RuntimeError, match="the strategy broke"):
            await asyncio.wait_for(failing.run(asyncio.Event()), 10)
        failing.store.close()

    asyncio.run(scenario())
    [mail] = server.inbox.mails
    assert mail.message["Subject"] == "cdb component signals stopped by an error"
    assert "RuntimeError: the strategy broke" in mail.message.get_content()


def test_a_halt_and_its_reset_between_two_checks_do_not_end_a_later_breaker_halt(
    tmp_path: Path, smtp_server: Callable[..., Any]
) -> None:
    server = smtp_server()
    settings = mail_settings(tmp_path, server.port)

    async def scenario() -> None:
        risk = build(RiskComponent, settings)
        assert isinstance(risk, RiskComponent)
        checked = CountedChecks(risk.store)
        risk.store = checked  # type: ignore[assignment]
        async with running(risk):
            await checked.flushes(1)  # the first check is done
            halt = audit(HALT_ACTION, "a look")
            checked.inner.add_audit(halt)
            reset = audit(RESET_ACTION, "all good")
            checked.inner.add_audit(reset.model_copy(update={"ts_event": halt.ts_event + 1}))
            await checked.flushes()  # both picked up at one check, and applied
            assert risk.pipeline.trading_state is TradingState.ACTIVE
            risk.pipeline.halt(time.time_ns(), "breaker: drawdown")  # a later trip
            await checked.flushes()  # two more checks: the reset is not taken again
            assert risk.pipeline.trading_state is TradingState.HALTED  # the old reset is spent
            states = [state for _, state, _ in risk.pipeline.stats.state_changes]
            assert states == ["halted"]

    asyncio.run(scenario())
