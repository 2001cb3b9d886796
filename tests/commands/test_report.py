"""``cdb report`` on a store written by a real replay: the numbers agree with the replay's own
report, the tables add up, CSV and JSON, SQLite and the real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import CANDLES, require_data
from typer.testing import Result

from cdb_cli.errors import ExitCode
from cdb_cli.services.replay import ReplayRequest, persist_replay, run_replay
from cdb_cli.settings import Settings


def persisted(url: str) -> dict[str, Any]:
    settings = Settings(database_url=url)
    result = run_replay(settings, ReplayRequest(data=require_data(CANDLES), symbol="UNITTESTBTC"))
    persist_replay(settings, result)
    return result.report


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'run.db'}"
    return url, persisted(url)


def report_json(cdb: Callable[..., Result], *args: str) -> dict[str, Any]:
    result = cdb("report", *args, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def check_pnl(cdb: Callable[..., Result]) -> str:
    pnl: str = report_json(cdb)["summary"]["pnl"]
    assert len(pnl.split(".")[1]) > 8  # what the store keeps, and the JSON shows
    return pnl


def check_against_replay(doc: dict[str, Any], replay: dict[str, Any]) -> None:
    summary = doc["summary"]
    assert summary["trades"] == replay["trades"]["closed"] > 0
    assert summary["won"] == replay["trades"]["won"]
    assert summary["fills"] == replay["fills"]
    assert summary["open_positions"] == replay["trades"]["open"]
    assert Decimal(summary["fees_all_fills"]) == Decimal(replay["fees"])
    assert doc["rejections"]["by_reason"] == replay["decisions"]["by_rule"]
    # the per-day and per-symbol tables add up to the total
    total = Decimal(summary["pnl"])
    assert sum(Decimal(day["pnl"]) for day in doc["daily"].values()) == total
    assert sum(Decimal(s["pnl"]) for s in doc["symbols"].values()) == total
    assert sum(day["trades"] for day in doc["daily"].values()) == summary["trades"]
    assert len(doc["exposure"]) >= 10  # one snapshot per UTC day roll, and the last one


def test_report_agrees_with_the_replay(
    cdb: Callable[..., Result],
    sqlite_run: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, replay = sqlite_run
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    check_against_replay(report_json(cdb), replay)
    text = cdb("report")
    assert text.exit_code == 0, text.output
    assert f"Trades {replay['trades']['closed']}" in text.stdout
    # rounded for reading (UNITTESTBTC is quoted in BTC: 8 places); the JSON keeps every digit
    assert f"PnL {Decimal(check_pnl(cdb)):.8f}," in text.stdout
    assert not re.search(r"\d\.\d{9,}", text.stdout)
    assert re.search(r"win rate \d+\.\d %", text.stdout)


def test_windows_symbols_and_runs_filter(
    cdb: Callable[..., Result],
    sqlite_run: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, replay = sqlite_run
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    run = replay["provenance"]["run_id"]
    assert report_json(cdb, "--run", run)["summary"]["fills"] == replay["fills"]
    future = cdb("report", "--since", "2030-01-01", "--json")
    assert future.exit_code == 1, future.output
    assert json.loads(future.stdout)["reason"] == (
        "Nothing to report from 2030-01-01T00:00:00Z, until now: no fills and no risk decisions "
        "or equity snapshots"
    )
    for nothing in (("--run", "rnothere"), ("--symbol", "ETHUSDT")):
        empty = cdb("report", *nothing, "--json")  # a script still gets a document, and why
        assert empty.exit_code == 1, empty.output
        document = json.loads(empty.stdout)
        assert (document["summary"]["fills"], document["summary"]["trades"]) == (0, 0)
        assert document["reason"].startswith("Nothing to report from the start, until now")
        human = cdb("report", *nothing)
        assert human.exit_code == 1, human.output
        assert human.stdout == ""
        assert "Nothing to report" in human.stderr
        assert "no fills and no risk decisions" in human.stderr
    one_day = report_json(cdb, "--since", "2017-11-09", "--until", "2017-11-10")
    assert set(one_day["daily"]) <= {"2017-11-09"}
    assert one_day["summary"]["trades"] <= report_json(cdb)["daily"]["2017-11-09"]["trades"] + 1


def test_csv_tables(
    cdb: Callable[..., Result],
    sqlite_run: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, replay = sqlite_run
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    daily = cdb("report", "--csv", "daily")
    assert daily.exit_code == 0, daily.output
    rows = list(csv.DictReader(io.StringIO(daily.stdout)))
    assert sum(int(row["trades"]) for row in rows) == replay["trades"]["closed"]
    for table, column in (
        ("trades", "pnl"),
        ("exposure", "exposure_pct"),
        ("rejections", "reason"),
    ):
        result = cdb("report", "--csv", table)
        assert result.exit_code == 0, result.output
        assert column in result.stdout.splitlines()[0].split(",")
    bad = cdb("report", "--csv", "nonsense")
    assert bad.exit_code == ExitCode.USAGE, bad.output
    assert "is not one of" in bad.stderr


@pytest.mark.parametrize(
    "args", [["report", "--csv", "daily", "--json"], ["--json", "report", "--csv", "trades"]]
)
def test_csv_and_json_together_are_a_usage_error(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cdb.db'}")
    result = cdb(*args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "choose one of --csv and --json" in result.stderr
    assert result.stdout == ""


@pytest.mark.infra
def test_report_on_postgres(
    cdb: Callable[..., Result], postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = persisted(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    check_against_replay(report_json(cdb), replay)


# A window that starts while a position is open ------------------------------------------------

DAY1, DAY2 = 1_772_323_200_000_000_000, 1_772_409_600_000_000_000  # 2026-03-01 and -02 UTC
HOUR = 3_600_000_000_000
STRADDLE_PNL = Decimal("-19.9915")  # 0.5 BTC bought at 6000, sold at 5966, fees 1.5 + 1.4915
INSIDE_PNL = Decimal("4.4075")  # 0.1 BTC bought at 5900, sold at 5950, fees 0.295 + 0.2975


def straddling_store(url: str) -> None:
    """Run paper-a buys 0.5 BTC on day 1 and stops with it open; run paper-b takes the position over
    and sells it at a loss on day 2 (the straddling round trip), then makes a small winning trade
    of its own. No replay: the store's fills are the ledger, as cdb run restores it."""
    from cdb_cli.engine.events import Side
    from cdb_cli.engine.records import FillRecord, OrderRecord
    from cdb_cli.kernel import open_store

    store = open_store(Settings(database_url=url), create_if_new=True)
    trades = [
        ("paper_a0000000001", Side.BUY, "0.5", "6000", "1.5", DAY1 + 10 * HOUR),
        ("paper_b0000000001", Side.SELL, "0.5", "5966", "1.4915", DAY2 + 9 * HOUR),
        ("paper_b0000000002", Side.BUY, "0.1", "5900", "0.295", DAY2 + 10 * HOUR),
        ("paper_b0000000003", Side.SELL, "0.1", "5950", "0.2975", DAY2 + 11 * HOUR),
    ]
    try:
        for order_id, side, quantity, price, fee, ts in trades:
            store.save_order(
                OrderRecord(client_order_id=order_id, decision_id=f"d-{order_id}",
                            symbol="BTCUSDT", side=side, order_type="MARKET",
                            quantity=Decimal(quantity), status="FILLED", ts_created=ts,
                            ts_updated=ts, mode="paper")
            )  # fmt: skip
            store.add_fill(
                FillRecord(fill_id=f"{order_id}f", client_order_id=order_id, symbol="BTCUSDT",
                           side=side, quantity=Decimal(quantity), price=Decimal(price),
                           fee=Decimal(fee), fee_asset="USDT", ts_event=ts, liquidity="taker")
            )  # fmt: skip
    finally:
        store.close()


def check_straddling_window(cdb: Callable[..., Result], *window: str) -> None:
    doc = report_json(cdb, *window)
    summary = doc["summary"]
    assert (summary["trades"], summary["won"], summary["lost"]) == (2, 1, 1)
    assert Decimal(summary["pnl"]) == STRADDLE_PNL + INSIDE_PNL == Decimal("-15.584")
    assert summary["opened_before_window"] == 1
    assert summary["entry_fills_before_window"] == 1
    assert summary["fills"] == 3  # the window's own; the entry is read, not counted
    assert summary["open_positions"] == 0
    straddle, inside = doc["trades"]
    assert straddle["opened"] == "2026-03-01T10:00:00Z"  # its true entry, not the sale's instant
    assert straddle["closed"] == "2026-03-02T09:00:00Z"
    assert Decimal(straddle["pnl"]) == STRADDLE_PNL
    assert straddle["opened_before_window"] is True
    assert Decimal(inside["pnl"]) == INSIDE_PNL
    assert inside["opened_before_window"] is False
    assert Decimal(doc["daily"]["2026-03-02"]["pnl"]) == Decimal("-15.584")
    assert list(doc["daily"]) == ["2026-03-02"]
    assert Decimal(doc["symbols"]["BTCUSDT"]["pnl"]) == Decimal("-15.584")
    text = cdb("report", *window)
    assert text.exit_code == 0, text.output
    assert "PnL -15.58," in text.stdout
    assert "1 trade opened before the window: PnL and fees from the true entry" in text.stdout
    assert "-19.99" in text.stdout  # the trade's own row
    assert "2981" not in text.stdout  # the sale is not booked as a gain


def test_a_window_that_starts_with_a_position_open_books_the_true_loss(
    cdb: Callable[..., Result], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'straddle.db'}"
    straddling_store(url)
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    check_straddling_window(cdb, "--since", "2026-03-02")
    check_straddling_window(cdb, "--run", "paper-b")
    # the run that opened it: one fill, nothing closed, the position still open
    opened = report_json(cdb, "--run", "paper-a")["summary"]
    assert (opened["trades"], opened["open_positions"], opened["fills"]) == (0, 1, 1)
    assert opened["win_rate"] is None
    no_trades = cdb("report", "--run", "paper-a")
    assert no_trades.exit_code == 0, no_trades.output
    assert "Trades 0 (0 won, 0 lost, win rate \u2013), PnL 0.00," in no_trades.stdout
    # after the position was flat again, nothing is read from before the window
    later = report_json(cdb, "--since", "2026-03-02T09:30")["summary"]
    assert Decimal(later["pnl"]) == INSIDE_PNL
    assert (later["trades"], later["opened_before_window"]) == (1, 0)
    # consecutive windows add up to the whole: each trade counts in the window it closed in
    first = report_json(cdb, "--until", "2026-03-02")["summary"]
    whole = report_json(cdb)["summary"]
    assert (first["trades"], first["open_positions"]) == (0, 1)
    assert Decimal(first["pnl"]) + STRADDLE_PNL + INSIDE_PNL == Decimal(whole["pnl"])


@pytest.mark.infra
def test_a_straddling_window_on_postgres(
    cdb: Callable[..., Result], postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    straddling_store(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    check_straddling_window(cdb, "--since", "2026-03-02")
    check_straddling_window(cdb, "--run", "paper-b")
