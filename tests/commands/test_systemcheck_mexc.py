"""The MEXC rows of ``cdb systemcheck`` against the simulator, and without any MEXC."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.errors import ExitCode

from .conftest import SIM_KEY, SIM_SECRET

MEXC_ROWS = ("mexc rest", "mexc clock", "mexc keys", "mexc trading", "mexc websocket")


@pytest.fixture(autouse=True)
def _sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdb_cli.adapters.sql import upgrade

    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    upgrade(url)
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))


def mexc_rows(result: Result) -> dict[str, dict[str, Any]]:
    rows = {row["name"]: row for row in json.loads(result.stdout)["checks"]}
    return {name: rows[name] for name in MEXC_ROWS}


def point_at(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", sim.rest_url)
    monkeypatch.setenv("CDB_MEXC_WS_URL", sim.ws_url)
    monkeypatch.setenv("CDB_SYMBOLS", "BTCUSDT")


def test_all_mexc_rows_pass_against_the_simulator(
    cdb: Callable[..., Result], threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(threaded_sim, monkeypatch)
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    result = cdb("systemcheck", "--json")
    rows = mexc_rows(result)
    assert {name: row["status"] for name, row in rows.items()} == dict.fromkeys(MEXC_ROWS, "ok")
    assert rows["mexc rest"]["value"].startswith(threaded_sim.rest_url)
    assert rows["mexc keys"]["value"].startswith("mx0v…ey1 accepted, 1 asset")
    assert "ack in" in rows["mexc websocket"]["value"]
    assert rows["mexc trading"]["value"] == "spot trading allowed for BTCUSDT"
    assert SIM_SECRET not in result.stdout + result.stderr
    assert result.exit_code == 0, result.output


def test_api_untradable_symbol_warns_in_paper_and_fails_in_live(
    cdb: Callable[..., Result], threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(threaded_sim, monkeypatch)
    monkeypatch.setenv("CDB_SYMBOLS", "BTCUSDT,ETHUSDT")
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    threaded_sim.exchange.tradability.api_untradable.add("ETHUSDT")
    try:
        paper = cdb("systemcheck", "--json")
        monkeypatch.setenv("CDB_MODE", "live")
        live = cdb("systemcheck", "--json")
    finally:
        threaded_sim.exchange.tradability.api_untradable.discard("ETHUSDT")
    expected = "ETHUSDT is not tradable over the API (not in /api/v3/defaultSymbols"
    assert mexc_rows(paper)["mexc trading"]["status"] == "warn"
    assert expected in mexc_rows(paper)["mexc trading"]["hint"]
    assert live.exit_code == ExitCode.CHECK_FAILED, live.output
    trading = mexc_rows(live)["mexc trading"]
    assert trading["status"] == "fail"
    assert trading["hint"].startswith(expected)
    assert "BTCUSDT" not in trading["hint"]


def test_a_symbol_without_market_orders_passes_with_a_note(
    cdb: Callable[..., Result], threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(threaded_sim, monkeypatch)
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    threaded_sim.exchange.tradability.no_market.add("BTCUSDT")
    try:
        result = cdb("systemcheck", "--json")
    finally:
        threaded_sim.exchange.tradability.no_market.discard("BTCUSDT")
    trading = mexc_rows(result)["mexc trading"]
    assert trading["status"] == "ok"
    assert "no MARKET orders on BTCUSDT: cdb sends LIMIT orders there" in trading["value"]


def test_rejected_keys_fail_the_keys_row(
    cdb: Callable[..., Result], threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(threaded_sim, monkeypatch)
    wrong = "ffffffffffffffffffffffffffffffff"
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", wrong)
    result = cdb("systemcheck", "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    keys = mexc_rows(result)["mexc keys"]
    assert keys["status"] == "fail"
    assert "CDB_MEXC_API_SECRET" in keys["hint"]
    assert wrong not in result.stdout + result.stderr


def test_refused_websocket_topic_fails(
    cdb: Callable[..., Result], threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(threaded_sim, monkeypatch)
    monkeypatch.setenv("CDB_SYMBOLS", "SOLUSDT")  # a symbol the simulator does not serve
    result = cdb("systemcheck", "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert mexc_rows(result)["mexc websocket"]["status"] == "fail"


def test_unreachable_mexc_warns_in_paper_and_fails_in_live(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CDB_MEXC_WS_URL", "ws://127.0.0.1:1/ws")
    paper = mexc_rows(cdb("systemcheck", "--json"))
    assert [paper[name]["status"] for name in MEXC_ROWS] == ["warn", "skip", "skip", "skip", "warn"]
    assert "cdb sim-exchange" in paper["mexc rest"]["hint"]

    monkeypatch.setenv("CDB_MODE", "live")
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    live = cdb("systemcheck", "--json")
    assert live.exit_code == ExitCode.CHECK_FAILED, live.output
    rows = mexc_rows(live)
    assert [rows[name]["status"] for name in MEXC_ROWS] == ["fail", "skip", "skip", "skip", "fail"]


def test_quick_skips_the_mexc_rows(cdb: Callable[..., Result]) -> None:
    result = cdb("systemcheck", "--quick", "--json")
    assert result.exit_code == 0, result.output
    assert {row["status"] for row in mexc_rows(result).values()} == {"skip"}


@pytest.mark.infra
def test_every_row_against_the_simulator_and_real_services(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    monkeypatch: pytest.MonkeyPatch,
    postgres_database: str,
    redis_url: str,
    pg_client_tools: object,
) -> None:
    """Issue 7's line: against the simulator and the real Redis and PostgreSQL, all ok."""
    from cdb_cli.adapters.sql import upgrade

    upgrade(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    monkeypatch.setenv("CDB_BUS_URL", redis_url)
    point_at(threaded_sim, monkeypatch)
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    backup = cdb("backup", "create", "--verify")
    assert backup.exit_code == 0, backup.output
    result = cdb("systemcheck", "--json")
    rows = {row["name"]: row for row in json.loads(result.stdout)["checks"]}
    not_ok = {
        name: (row["status"], row["value"])
        for name, row in rows.items()
        if row["status"] != "ok" and not (name == "smtp" and row["status"] == "skip")
    }
    # the test's Redis and PostgreSQL ask no password: the rows that say so warn
    unauthenticated = {name: not_ok.pop(name)[0] for name in ("redis", "database auth")}
    assert unauthenticated == {"redis": "warn", "database auth": "warn"}
    assert not_ok == {}, not_ok
    assert {"redis", "database", "full path", "breaker"} <= set(rows)
    assert result.exit_code == 0, result.output


def test_an_untradable_symbol_fails_the_trading_row_in_live_mode(
    cdb: Callable[..., Result], threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(threaded_sim, monkeypatch)
    monkeypatch.setenv("CDB_SYMBOLS", "BTCUSDT,SOLUSDT")  # the simulator lists no SOLUSDT
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    paper = mexc_rows(cdb("systemcheck", "--json"))["mexc trading"]
    assert (paper["status"], paper["hint"]) == ("warn", "SOLUSDT is not listed")

    monkeypatch.setenv("CDB_MODE", "live")
    live = cdb("systemcheck", "--json")
    assert live.exit_code == ExitCode.CHECK_FAILED, live.output
    row = mexc_rows(live)["mexc trading"]
    assert (row["status"], row["value"], row["hint"]) == (
        "fail",
        "not tradable",
        "SOLUSDT is not listed",
    )
