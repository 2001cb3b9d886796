"""The rehearsal kit (tests/rehearsal_testkit.py) does what the tests built on it rely on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest
from rehearsal_testkit import (
    Rehearsal,
    live_rehearsal,
    paper_rehearsal_fixture,
    read_audits,
)

from cdb_cli.engine.events import ExecutionReport
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, STATE_ACTION
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.settings_io import settings_hash

paper = paper_rehearsal_fixture(60)  # the acceptance tests use 600 s


@pytest.mark.slow
def test_a_paper_rehearsal_restarts_halts_resets_and_trades_in_both_segments(
    paper: Rehearsal,
) -> None:
    rehearsal = paper
    url = rehearsal.database_url
    starts = read_audits(url, START_ACTION)
    assert [r.run_id for r in starts] == rehearsal.run_ids
    assert len(rehearsal.run_ids) == 2
    assert len({r.detail["settings_sha256"] for r in starts}) == 1
    assert [r.run_id for r in read_audits(url, STOP_ACTION)] == rehearsal.run_ids
    assert all(rehearsal.fills_per_segment), rehearsal.fills_per_segment
    (halt,) = read_audits(url, HALT_ACTION)
    (reset,) = read_audits(url, RESET_ACTION)
    assert (halt.ts_event, reset.ts_event) == (rehearsal.halt_ns, rehearsal.reset_ns)
    assert reset.ts_event - halt.ts_event >= 15 * 10**9
    states = [
        (r.detail["state"], r.ts_event)
        for r in read_audits(url, STATE_ACTION)
        if r.run_id == rehearsal.run_ids[1]
    ]
    assert ("halted", rehearsal.halted_ns) in states
    assert ("active", rehearsal.resumed_ns) in states
    assert rehearsal.halt_ns <= rehearsal.halted_ns < rehearsal.reset_ns <= rehearsal.resumed_ns
    # a parity run with the rehearsal's settings has the runs' settings hash
    assert {settings_hash(rehearsal.settings())} == {r.detail["settings_sha256"] for r in starts}
    assert all(log.exists() for log in rehearsal.logs.values())


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
