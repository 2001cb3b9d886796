"""``cdb reconcile`` against the simulator: agreement, an order to settle (read-only, then
``--apply``), an external order, a balance the ledger cannot explain, and no keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.engine.records import OrderRecord
from cdb_cli.errors import ExitCode
from cdb_cli.kernel import open_store
from cdb_cli.services.restore import LIVE_STARTING_CASH_KEY
from cdb_cli.settings import Settings

from .conftest import SIM_KEY, SIM_SECRET

OURS = "l0123456789a0000000001"


@pytest.fixture
def url(tmp_path: Path, threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    open_store(Settings(database_url=url), create_if_new=True).close()
    for name, value in {
        "CDB_DATABASE_URL": url,
        "CDB_MEXC_REST_URL": threaded_sim.rest_url,
        "CDB_MEXC_WS_URL": threaded_sim.ws_url,
        "CDB_SYMBOLS": "BTCUSDT",
        "CDB_MEXC_API_KEY": SIM_KEY,
        "CDB_MEXC_API_SECRET": SIM_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    return url


def place(sim: SimServer, client_order_id: str, quote: str = "100") -> None:
    async def send() -> None:
        async with MexcHttpClient(sim.rest_url, Credentials(SIM_KEY, SIM_SECRET)) as http:
            await http.new_order(
                "BTCUSDT",
                "BUY",
                "MARKET",
                quote_order_qty=Decimal(quote),
                client_order_id=client_order_id,
            )

    asyncio.run(send())


def save(url: str, order: OrderRecord | None = None, cash: str | None = None) -> None:
    store = open_store(Settings(database_url=url))
    try:
        if order is not None:
            store.save_order(order)
        if cash is not None:
            store.set_config(LIVE_STARTING_CASH_KEY, cash)
    finally:
        store.close()


def pending(client_order_id: str) -> OrderRecord:
    return OrderRecord(
        client_order_id=client_order_id,
        decision_id="d-1",
        symbol="BTCUSDT",
        side="BUY",
        order_type="MARKET",
        quote_amount=Decimal(100),
        status="PENDING_NEW",
        ts_created=1_790_000_000_000_000_000,
        ts_updated=1_790_000_000_000_000_000,
        mode="live",
    )


def test_a_new_database_agrees(cdb: Callable[..., Result], url: str) -> None:
    result = cdb("reconcile")
    assert result.exit_code == ExitCode.OK, result.output
    assert "store agrees with the venue" in result.stdout
    assert "no live trading on this database yet" in result.stdout


def test_an_unacknowledged_order_is_reported_then_settled_with_apply(
    cdb: Callable[..., Result], url: str, threaded_sim: SimServer
) -> None:
    save(url, pending(OURS), cash="1000")
    place(threaded_sim, OURS)  # MEXC has it and filled it; the store still says PENDING_NEW
    result = cdb("--json", "reconcile")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    document = json.loads(result.stdout)
    assert document["resolved"] == [
        {"client_order_id": OURS, "was": "PENDING_NEW", "now": "FILLED"}
    ]
    assert len(document["booked_fills"]) == 1
    assert document["applied"] is False
    assert all(row["ok"] for row in document["balances"])  # counting what would be booked
    applied = cdb("reconcile", "--apply")
    assert applied.exit_code == ExitCode.OK, applied.output
    assert "[applied]" in applied.stdout
    again = cdb("reconcile")
    assert again.exit_code == ExitCode.OK, again.output
    store = open_store(Settings(database_url=url))
    try:
        (order,) = store.orders()
        assert order.status == "FILLED"
        assert len(store.fills()) == 1
    finally:
        store.close()


def test_an_external_order_is_reported_and_left_alone(
    cdb: Callable[..., Result], url: str, threaded_sim: SimServer
) -> None:
    async def rest_a_limit() -> None:
        async with MexcHttpClient(threaded_sim.rest_url, Credentials(SIM_KEY, SIM_SECRET)) as http:
            await http.new_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity=Decimal("0.001"),
                price=Decimal(1000),
                client_order_id="by-hand-1",
            )

    asyncio.run(rest_a_limit())
    result = cdb("reconcile")
    assert result.exit_code == ExitCode.OK, result.output
    assert "external open order" in result.stdout
    assert "by-hand-1" in result.stdout
    account = next(iter(threaded_sim.exchange.accounts.values()))
    assert [o.status for o in account.orders.values()] == ["NEW"]  # untouched


def test_a_balance_the_ledger_cannot_explain_exits_4(cdb: Callable[..., Result], url: str) -> None:
    save(url, cash="900")  # the account holds 1000 USDT
    result = cdb("reconcile")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "DIFFERS" in result.stdout


def test_without_keys_it_exits_3(
    cdb: Callable[..., Result], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CDB_MEXC_API_SECRET")
    result = cdb("reconcile")
    assert result.exit_code == ExitCode.CONFIGURATION
    assert "CDB_MEXC_API_SECRET" in result.stderr
