"""The rehearsal kit (tests/rehearsal_testkit.py) does what the tests built on it rely on: the
live rehearsal here; the paper rehearsal's facts are checked where its 10-minute run is made
(tests/services/test_parity_rehearsals.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest
from live_rehearsal_testkit import live_rehearsal

from cdb_cli.engine.events import ExecutionReport
from cdb_cli.kernel import open_store


@pytest.mark.parametrize("entry", ["market", "limit"])
def test_a_live_rehearsal_fills_in_parts_survives_an_accepted_503_and_matches_the_venue(
    tmp_path: Path, entry: Literal["market", "limit"]
) -> None:
    rehearsal = asyncio.run(live_rehearsal(tmp_path / "live", entry=entry))
    assert rehearsal.counters["outcome_unknown"] == 1  # the 503 after MEXC booked the order
    assert rehearsal.counters["resolved_by_query"] == 1  # found by its client order id
    assert rehearsal.counters.get("placed", 0) == 1  # the other order, answered normally
    log = rehearsal.log.read_text(encoding="utf-8")
    assert f"MEXC did not confirm order {rehearsal.accepted_then_5xx}" in log
    store = open_store(rehearsal.settings)
    try:
        orders = {o.client_order_id: o for o in store.orders()}
        assert {str(o.side) for o in orders.values()} == {"BUY", "SELL"}
        assert rehearsal.accepted_then_5xx in orders
        assert len(orders) == len(rehearsal.venue_statuses)  # placed once, never resent
        for client_id, count in rehearsal.trades_per_order.items():
            assert count > 1, rehearsal.trades_per_order  # every order filled in parts
            assert len(store.fills(client_order_id=client_id)) == count
            assert orders[client_id].status == rehearsal.venue_statuses[client_id]
        reports = store.events(ExecutionReport)
        assert {r.client_order_id for r in reports} == set(orders)
        buy = next(o for o in orders.values() if str(o.side) == "BUY")
        assert buy.order_type == entry.upper()
        if entry == "limit":  # MEXC said PARTIALLY_FILLED between the parts
            states = [r.status for r in reports if r.client_order_id == buy.client_order_id]
            assert states[-1] == "FILLED"
            assert "PARTIALLY_FILLED" in states
    finally:
        store.close()
