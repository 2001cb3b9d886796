"""Replay data files: every accepted format, the real data, and each kind of bad row."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, TRADES, require_data

from cdb_cli.adapters.marketdata_files import (
    BadDataFile,
    UnknownDataFormat,
    guess_interval_ns,
    guess_symbol,
    load_market_data,
)
from cdb_cli.engine.replay import BarSeries, TradeSeries

MINUTE_MS = 60_000
NS_PER_MS = 1_000_000
ROWS = [
    [1_700_000_000_000 + i * MINUTE_MS, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 5.0 + i]
    for i in range(5)
]


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_real_candles_load_as_bars() -> None:
    series = load_market_data(require_data(CANDLES), symbol="UNITTESTBTC")
    assert isinstance(series, BarSeries)
    assert len(series) == 13_681
    assert series.interval_ns == 60 * 10**9
    assert series.skipped_rows == 0
    assert all(a < b for a, b in zip(series.ts, series.ts[1:], strict=False))


def test_real_trades_load_from_gzip() -> None:
    series = load_market_data(require_data(TRADES), symbol="XRPETH")
    assert isinstance(series, TradeSeries)
    assert len(series) == 12_477
    assert set(series.buyer) == {0, 1}


def test_mexc_klines_with_string_prices(tmp_path: Path) -> None:
    rows = [[r[0], *map(str, r[1:]), r[0] + MINUTE_MS - 1, "123.4"] for r in ROWS]
    series = load_market_data(write(tmp_path, "k.json", rows), symbol="BTCUSDT")
    assert isinstance(series, BarSeries)
    assert list(series.close) == [r[4] for r in ROWS]
    assert series.ts[0] == ROWS[0][0] * NS_PER_MS


def test_csv_bars_with_iso_times(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n"
    text += "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n2024-01-01T00:05:00+00:00,1.5,2,1,1.8,3\n"
    series = load_market_data(write(tmp_path, "b.csv", text), symbol="BTCUSDT")
    assert isinstance(series, BarSeries)
    assert series.interval_ns == 300 * 10**9  # from the step: the name says nothing
    assert list(series.volume) == [10.0, 3.0]


def test_csv_trades(tmp_path: Path) -> None:
    text = "timestamp,side,price,amount\n1700000000000,buy,1.5,2\n1700000000000,sell,1.4,1\n"
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    series = load_market_data(path, symbol="BTCUSDT")
    assert isinstance(series, TradeSeries)
    assert list(series.price) == [1.5, 1.4]
    assert list(series.buyer) == [1, 0]


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (4, math.nan, "close is 'nan', not a finite number"),
        (1, -1.0, "prices must be above 0"),
        (5, -3.0, "volume -3.0 is negative"),
        (3, 100.0, "need low <= open, close <= high"),
    ],
)
def test_bad_values_name_the_row(tmp_path: Path, index: int, value: float, message: str) -> None:
    rows = [list(r) for r in ROWS]
    rows[2][index] = value
    path = write(tmp_path, "bad.json", json.dumps(rows).replace("NaN", '"nan"'))
    with pytest.raises(BadDataFile, match=f"bad.json: row 3: .*{message}") as caught:
        load_market_data(path, symbol="BTCUSDT")
    assert "--skip-bad-rows" in caught.value.message
    series = load_market_data(path, symbol="BTCUSDT", skip_bad_rows=True)
    assert (len(series), series.skipped_rows) == (4, 1)


@pytest.mark.parametrize("kind", ["duplicate", "unsorted"])
def test_time_order_is_enforced(tmp_path: Path, kind: str) -> None:
    rows = [list(r) for r in ROWS]
    rows[3][0] = rows[2][0] if kind == "duplicate" else rows[1][0]
    path = write(tmp_path, "order.json", rows)
    with pytest.raises(BadDataFile, match=r"row 4: time .* is not after the previous row"):
        load_market_data(path, symbol="BTCUSDT")
    assert load_market_data(path, symbol="BTCUSDT", skip_bad_rows=True).skipped_rows == 1


def test_short_rows_and_text_values_name_the_row(tmp_path: Path) -> None:
    rows: list[object] = [list(r) for r in ROWS]
    rows[0] = [ROWS[0][0], "x", 1, 1, 1, 1]
    path = write(tmp_path, "text.json", rows)
    with pytest.raises(BadDataFile, match="row 1: could not convert string to float"):
        load_market_data(path, symbol="BTCUSDT")
    rows[0] = ROWS[0][:4]
    with pytest.raises(BadDataFile, match=r"row 1: expected 6 values .* found 4"):
        load_market_data(write(tmp_path, "short.json", [*rows[:1], *ROWS[1:]]), symbol="X")


def test_window_keeps_only_rows_inside(tmp_path: Path) -> None:
    path = write(tmp_path, "w.json", ROWS)
    series = load_market_data(path, symbol="BTCUSDT", since_ms=ROWS[1][0], until_ms=ROWS[3][0])
    assert [t // NS_PER_MS for t in series.ts] == [ROWS[1][0], ROWS[2][0]]


@pytest.mark.parametrize(
    "content",
    ['{"a": 1}', "[[1, 2, 3]]", "hello,world\n1,2\n", "[]"],
)
def test_unknown_formats_list_the_accepted_ones(tmp_path: Path, content: str) -> None:
    with pytest.raises(UnknownDataFormat, match="accepted: bars-json, mexc-klines"):
        load_market_data(write(tmp_path, "x.dat", content), symbol="BTCUSDT")


def test_broken_json_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BadDataFile, match="not valid JSON"):
        load_market_data(write(tmp_path, "broken.json", "[[1, 2"), symbol="BTCUSDT")
    with pytest.raises(BadDataFile, match="no such file"):
        load_market_data(tmp_path / "missing.json", symbol="BTCUSDT")


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("UNITTEST_BTC-1m.json", "UNITTESTBTC"),
        ("btcusdt-1m.json.gz", "BTCUSDT"),
        ("XRP_ETH-trades.json.gz", "XRPETH"),
        ("my data.json", None),
    ],
)
def test_guess_symbol_from_file_names(name: str, symbol: str | None) -> None:
    assert guess_symbol(Path(name)) == symbol


def test_guess_interval_prefers_the_name_then_the_common_step() -> None:
    minute = 60 * 10**9
    assert guess_interval_ns(Path("x-5m.json"), [0, minute]) == 5 * minute
    assert guess_interval_ns(Path("x.json"), [0, minute, 2 * minute, 5 * minute]) == minute
