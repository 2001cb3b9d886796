"""The daily summary of one UTC day, from a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from market_testkit import fill

from cdb_cli.adapters.sql import SqlStore, upgrade
from cdb_cli.engine.events import Bar, CheckResult, RiskDecision, Side, SignalSide
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import EquitySnapshot, OrderRecord
from cdb_cli.services.systemcheck import CheckRow, Status
from cdb_cli.services.systemcheck.daily import (
    MINUTES_PER_DAY,
    daily_summary,
    day_window,
    feed_gaps,
    report_text,
    summary_lines,
    yesterday,
)
from cdb_cli.settings import Settings

DAY = date(2026, 11, 22)
SINCE, UNTIL = day_window(DAY)
MINUTE = 60 * 1_000_000_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.infra)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cdb.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    upgrade(url)
    return Settings(database_url=url, symbols="BTCUSDT,ETHUSDT")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = SqlStore(settings.database_url)
    yield opened
    opened.close()


def _fill(store: Store, n: int, side: Side, ts: int, qty: str, price: str, fee: str) -> None:
    order_id = f"o{n}"
    store.save_order(
        OrderRecord(client_order_id=order_id, decision_id=f"d{n}", symbol="BTCUSDT", side=side,
                    order_type="MARKET", quote_amount=D(100), status="FILLED", ts_created=ts,
                    ts_updated=ts, mode="paper")
    )  # fmt: skip
    store.add_fill(
        fill(side, qty, price, fill_id=f"f{n}", client_order_id=order_id, fee=fee, fee_asset="",
             ts=ts)
    )  # fmt: skip


def _decision(n: int, ts: int, verdict: str, failing: tuple[str, ...] = ()) -> RiskDecision:
    checks = tuple(
        CheckResult(rule=code, code=code, passed=False, observed=D(1), limit=D(0))
        for code in failing
    )
    return RiskDecision(
        event_id=f"dec-{n}", symbol="BTCUSDT", ts_event=ts, source="risk", signal_id=f"s{n}",
        verdict=verdict, side=SignalSide.BUY, requested_quote=D(100),
        final_quote=D(0) if verdict == "rejected" else D(100), checks=checks,
    )  # fmt: skip


def _bar(symbol: str, minute: int, *, interval: str = "1m") -> Bar:
    return Bar(
        symbol=symbol, ts_event=SINCE + minute * MINUTE, source="mexc", interval=interval,
        open=D(1), high=D(1), low=D(1), close=D(1), volume=D(1),
    )  # fmt: skip


def _snapshot(ts: int, equity: str) -> EquitySnapshot:
    return EquitySnapshot(
        ts_event=ts, cash=D(equity), position_value=D(0), equity=D(equity),
        day_start_equity=D(equity), peak_equity=D(equity),
    )  # fmt: skip


def test_daily_summary_counts_the_day_only(store: Store, settings: Settings) -> None:
    # A trip opened the day before and closed on the day; one opened and closed on the day; one
    # still open at the end; and one entirely on the next day (not counted).
    _fill(store, 1, Side.BUY, SINCE - 3600 * 10**9, "1", "100", "0.05")
    _fill(store, 2, Side.SELL, SINCE + 60 * MINUTE, "1", "110", "0.06")
    _fill(store, 3, Side.BUY, SINCE + 100 * MINUTE, "2", "100", "0.1")
    _fill(store, 4, Side.SELL, SINCE + 200 * MINUTE, "2", "95", "0.1")
    _fill(store, 5, Side.BUY, SINCE + 300 * MINUTE, "1", "100", "0.05")
    _fill(store, 6, Side.SELL, UNTIL + MINUTE, "1", "120", "0.05")
    store.append_events(
        [
            _decision(1, SINCE + 1, "approved"),
            _decision(2, SINCE + 2, "rejected", ("spread", "stale_data")),
            _decision(3, SINCE + 3, "rejected", ("spread",)),
            _decision(4, SINCE + 4, "reduced", ("exposure",)),
            _decision(5, UNTIL, "rejected", ("circuit_breaker",)),  # the next day
        ]
    )
    minutes = [m for m in range(MINUTES_PER_DAY) if not 10 <= m < 20 and m != 100]
    store.append_events([_bar("BTCUSDT", m) for m in minutes] + [_bar("ETHUSDT", 0, interval="5m")])
    store.add_equity_snapshot(_snapshot(SINCE - 1, "10000"))
    store.add_equity_snapshot(_snapshot(UNTIL - 1, "10009.5"))

    summary = daily_summary(store, settings, DAY)

    trades = summary["trades"]
    # 110 - 100 - 0.11 = 9.89; 190 - 200 - 0.2 = -10.2
    assert trades == {"closed": 2, "won": 1, "lost": 1, "open_at_end": 1, "pnl": "-0.31",
                      "fills": 4, "fees": "0.31", "fees_other_assets": {}}  # fmt: skip
    assert summary["equity"] == {"start": "10000", "end": "10009.5", "change": "9.5"}
    decisions = summary["decisions"]
    assert (decisions["total"], decisions["rejected"], decisions["reduced"]) == (4, 2, 1)
    assert decisions["rejections_by_reason"] == {"spread": 2, "stale_data": 1}
    assert decisions["top_blocker"]["rule"] == "spread"
    assert summary["feed_gaps"] == {
        "BTCUSDT": {"bars": 1429, "missing_minutes": 11, "longest_gap_minutes": 10},
        "ETHUSDT": {"bars": 0, "missing_minutes": 1440, "longest_gap_minutes": 1440},
    }
    text = "\n".join(summary_lines(summary))
    assert "2 closed (1 won, 1 lost), PnL -0.31 after fees" in text
    assert "2 rejected: spread 2, stale_data 1)" in text
    assert "feed BTCUSDT: 1429 bars, 11 minutes missing (longest gap 10 min)" in text


def test_daily_summary_of_an_empty_store(store: Store, settings: Settings) -> None:
    summary = daily_summary(store, settings, DAY)
    assert summary["trades"]["closed"] == 0
    assert summary["equity"] is None
    assert summary["decisions"]["rejections_by_reason"] == {}
    assert "equity" not in "\n".join(summary_lines(summary))


def test_feed_gaps_longest_run_at_the_end() -> None:
    gaps = feed_gaps({"X": set(range(MINUTES_PER_DAY - 30))}, ["X"])
    assert gaps["X"] == {"bars": 1410, "missing_minutes": 30, "longest_gap_minutes": 30}


def test_yesterday_is_the_previous_utc_day() -> None:
    assert yesterday(datetime(2026, 11, 23, 0, 5, tzinfo=UTC)) == DAY
    assert day_window(DAY)[1] - day_window(DAY)[0] == MINUTES_PER_DAY * MINUTE


def test_report_text_lists_every_row_then_the_summary(store: Store, settings: Settings) -> None:
    rows = [
        CheckRow("database", Status.OK, "SQLite, 1 ms"),
        CheckRow("smtp", Status.FAIL, "x", "h"),
    ]
    text = report_text(rows, daily_summary(store, settings, DAY))
    assert text.splitlines()[:2] == ["OK    database  SQLite, 1 ms", "FAIL  smtp      x  (h)"]
    assert "Summary of 2026-11-22 (UTC)" in text
