"""``cdb parity``'s acceptance (issue 26) on rehearsals as an operator would run them
(tests/rehearsal_testkit.py):

* a 10-minute paper run of real processes (`cdb run --paper` against `cdb sim-exchange`) with a
  restart and an operator's halt and reset: 100 % decision parity outside the named restart and
  operator windows, every fill within 1 bp unexplained, exit 0;
* the same run with one stored trade removed: the differences show as unexplained, exit 4;
* live rehearsals against the simulator (a thin book, so orders fill in parts, and one order
  MEXC took but answered 503): the partial fills and the fault are named as causes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from live_rehearsal_testkit import live_rehearsal
from parity_testkit import delete_trade_at
from rehearsal_testkit import (
    Rehearsal,
    paper_rehearsal_fixture,
    read_audits,
)
from typer.testing import Result

from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, STATE_ACTION, VENUE_FAULT_ACTION
from cdb_cli.errors import ExitCode
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.services.parity import document, run_parity
from cdb_cli.settings_io import settings_hash

paper = paper_rehearsal_fixture(615)
"""10 minutes from the first start to the last stop: the kit's clock also counts the simulator's
start and the restart's downtime (about 10 s)."""


def parity_json(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, rehearsal: Rehearsal
) -> tuple[int, dict[str, Any]]:
    for name, value in rehearsal.settings_env.items():
        monkeypatch.setenv(name, value)
    result = cdb("parity", "--json")
    assert result.exit_code in (ExitCode.OK, ExitCode.CHECK_FAILED), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.slow
def test_the_paper_rehearsal_is_what_the_acceptance_needs(paper: Rehearsal) -> None:
    url = paper.database_url
    starts = read_audits(url, START_ACTION)
    assert [r.run_id for r in starts] == paper.run_ids
    assert len(paper.run_ids) == 2  # one restart
    assert [r.run_id for r in read_audits(url, STOP_ACTION)] == paper.run_ids
    assert all(paper.fills_per_segment), paper.fills_per_segment  # it traded in both
    assert stops_span(url) >= 600 * 10**9
    (halt,) = read_audits(url, HALT_ACTION)
    (reset,) = read_audits(url, RESET_ACTION)
    assert reset.ts_event - halt.ts_event >= 15 * 10**9
    states = [
        (r.detail["state"], r.ts_event)
        for r in read_audits(url, STATE_ACTION)
        if r.run_id == paper.run_ids[1]
    ]
    assert ("halted", paper.halted_ns) in states
    assert ("active", paper.resumed_ns) in states
    assert {settings_hash(paper.settings())} == {r.detail["settings_sha256"] for r in starts}


def stops_span(url: str) -> int:
    starts = read_audits(url, START_ACTION)
    stops = read_audits(url, STOP_ACTION)
    return stops[-1].ts_event - starts[0].ts_event


@pytest.mark.slow
def test_parity_of_the_paper_rehearsal_is_complete_outside_the_named_windows(
    paper: Rehearsal, cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, doc = parity_json(cdb, monkeypatch, paper)
    assert [run["run_id"] for run in doc["runs"]] == paper.run_ids
    decisions = doc["decisions"]
    assert decisions["run"] >= sum(paper.fills_per_segment)  # every fill came from a decision
    assert decisions["parity_pct_outside_windows"] == "100"
    assert doc["fills"]["both_sides"] == sum(paper.fills_per_segment)
    assert Decimal(doc["fills"]["max_unexplained_bp"]) <= 1
    named = {window["cause"] for window in doc["windows"]}
    assert {"restart", "operator"} <= named
    (restart,) = [w for w in doc["windows"] if w["cause"] == "restart"]
    assert paper.run_ids[0] in restart["detail"]
    assert paper.run_ids[1] in restart["detail"]
    operator = [w for w in doc["windows"] if w["cause"] == "operator"]
    assert "halted by the operator" in operator[0]["detail"]
    # differences, if any, are in the windows: nothing is unexplained
    assert [d for d in doc["differences"] if d["cause"] in ("unexplained", "market_data")] == []
    assert Decimal(doc["pnl"]["unexplained"]) == 0
    assert code == ExitCode.OK


@pytest.mark.slow
def test_a_trade_removed_from_the_paper_rehearsal_is_unexplained(
    paper: Rehearsal,
    cdb: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    database = Path(paper.database_url.removeprefix("sqlite:///"))
    copy = tmp_path / "tampered.db"
    shutil.copy(database, copy)
    url = f"sqlite:///{copy}"
    tampered = Rehearsal(**{**paper.__dict__, "database_url": url})
    tampered.settings_env["CDB_DATABASE_URL"] = url
    store = open_store(tampered.settings())
    try:
        fill = store.fills()[len(store.fills()) // 2]
    finally:
        store.close()
    assert delete_trade_at(url, fill.ts_event) >= 1
    code, doc = parity_json(cdb, monkeypatch, tampered)
    assert code == ExitCode.CHECK_FAILED
    unexplained = [d for d in doc["differences"] if d["cause"] == "unexplained"]
    assert any("shows no trade" in d["detail"] for d in unexplained)
    assert any(d["cause"] == "market_data" for d in doc["differences"])
    assert Decimal(doc["pnl"]["unexplained"]) != 0


@pytest.mark.parametrize("entry", ["market", "limit"])
def test_parity_of_a_live_rehearsal_names_the_partial_fills_and_the_5xx(
    tmp_path: Path, entry: Literal["market", "limit"]
) -> None:
    rehearsal = asyncio.run(live_rehearsal(tmp_path / "live", entry=entry))
    store = open_store(rehearsal.settings)
    try:
        (fault,) = store.audits(action=VENUE_FAULT_ACTION)
        doc = document(run_parity(store, rehearsal.settings))
    finally:
        store.close()
    assert fault.detail["client_order_id"] == rehearsal.accepted_then_5xx
    assert "HTTP 503" in fault.detail["fault"]
    assert doc["mode"] == "live"
    assert doc["calibration"]["orders_in_parts"] == doc["calibration"]["orders"] == "2"
    causes = {d["cause"] for d in doc["differences"]}
    assert {"partial_fill", "venue_fault"} <= causes
    (named,) = [d for d in doc["differences"] if d["cause"] == "venue_fault"]
    assert "HTTP 503" in named["detail"]
    windows = [w for w in doc["windows"] if w["cause"] == "venue_fault"]
    assert rehearsal.accepted_then_5xx in windows[0]["detail"]
    partial = [d for d in doc["differences"] if d["cause"] == "partial_fill"]
    assert all("fills in the run" in d["detail"] for d in partial)
    assert doc["fills"]["both_sides"] == 2
    assert Decimal(doc["fills"]["max_unexplained_bp"]) <= 1
