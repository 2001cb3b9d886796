"""``cdb report`` on a store written by a real replay: the numbers agree with the replay's own
report, the tables add up, CSV and JSON, SQLite and the real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cdb_testkit import CANDLES, require_data
from typer.testing import Result

from cdb_cli.errors import ExitCode
from cdb_cli.replay import ReplayRequest, persist_replay, run_replay
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


def test_windows_symbols_and_runs_filter(
    cdb: Callable[..., Result],
    sqlite_run: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, replay = sqlite_run
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    run = replay["provenance"]["run_id"]
    assert report_json(cdb, "--run", run)["summary"]["fills"] == replay["fills"]
    assert report_json(cdb, "--run", "rnothere")["summary"]["fills"] == 0
    assert report_json(cdb, "--symbol", "ETHUSDT")["summary"]["trades"] == 0
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


@pytest.mark.infra
def test_report_on_postgres(
    cdb: Callable[..., Result], postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = persisted(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    check_against_replay(report_json(cdb), replay)
