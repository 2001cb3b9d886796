"""The live loop's restarts and refusals against the MEXC simulator: what was saved but never
sent, what the venue did while we were down, a balance the ledger cannot explain, a paper
database."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from live_testkit import (
    KEY,
    SECRET,
    SYMBOL,
    account_of,
    assert_store_matches_the_venue,
    live_run,
    live_settings,
    pending_buy,
    sim_config,
)

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim.exchange import SimExchange
from cdb_cli.adapters.mexc.sim.server import SimServer
from cdb_cli.engine.errors import CheckFailed, ConfigurationError
from cdb_cli.engine.records import OrderRecord
from cdb_cli.kernel import open_store
from cdb_cli.services.restore import LIVE_STARTING_CASH_KEY


def test_a_restart_resolves_an_order_saved_but_never_sent(tmp_path: Path) -> None:
    """The crash between save and send: the order is in the store as PENDING_NEW and unknown at
    the venue. The next start marks it REJECTED and sends nothing."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "10000")
            lost = pending_buy("l0123456789a0000000001", Decimal(200))
            store.save_order(lost)
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    assert runtime.venue.reconciliation is not None
                    assert [
                        (o.status, was) for o, was in runtime.venue.reconciliation.resolved
                    ] == [("REJECTED", "PENDING_NEW")]
                (order,) = [o for o in store.orders() if o.client_order_id == lost.client_order_id]
                assert order.status == "REJECTED"
                assert account_of(server).orders == {}
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_restart_books_what_the_venue_did_while_we_were_down(tmp_path: Path) -> None:
    """The crash between send and ack: the venue filled the order; the store says PENDING_NEW.
    The next start takes the venue's state and books the fill with its commission."""
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "10000")
            sent = pending_buy("l0123456789a0000000002", Decimal(250))
            store.save_order(sent)
            async with MexcHttpClient(server.rest_url, Credentials(KEY, SECRET)) as http:
                await http.new_order(
                    SYMBOL,
                    "BUY",
                    "MARKET",
                    quote_order_qty=Decimal(250),
                    client_order_id=sent.client_order_id,
                )
            try:
                async with live_run(settings, server, store) as (runtime, _stop, _task):
                    assert runtime.venue.reconciliation is not None
                    assert len(runtime.venue.reconciliation.booked) >= 1
                (order,) = [o for o in store.orders() if o.client_order_id == sent.client_order_id]
                assert order.status == "FILLED"
                assert_store_matches_the_venue(store, server)
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_balance_the_ledger_cannot_explain_refuses_the_start(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.set_config(LIVE_STARTING_CASH_KEY, "9000")  # the venue holds 10000
            try:
                with pytest.raises(CheckFailed, match="balances differ") as caught:
                    async with live_run(settings, server, store):
                        pass
                assert any("USDT" in line for line in caught.value.details)
                assert account_of(server).orders == {}
            finally:
                store.close()

    asyncio.run(scenario())


def test_a_paper_database_is_refused(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)

    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            store = open_store(settings, create_if_new=True)
            store.save_order(
                OrderRecord(
                    client_order_id="p0123456789a0000000001",
                    decision_id="d",
                    symbol=SYMBOL,
                    side="BUY",
                    order_type="MARKET",
                    quote_amount=Decimal(100),
                    status="FILLED",
                    ts_created=1,
                    ts_updated=1,
                    mode="paper",
                )
            )
            try:
                with pytest.raises(ConfigurationError, match="paper orders"):
                    async with live_run(settings, server, store):
                        pass
            finally:
                store.close()

    asyncio.run(scenario())
