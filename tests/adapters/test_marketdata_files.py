"""Replay data files: every accepted format, the real data, and each kind of bad row."""

from __future__ import annotations

import gzip
import json
import math
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, TRADES, require_data
from typer.testing import Result

from cdb_cli.adapters import marketdata_files
from cdb_cli.adapters.marketdata_files import (
    BadDataFile,
    UnknownDataFormat,
    guess_interval_ns,
    guess_symbol,
    gzip_cap,
    load_market_data,
)
from cdb_cli.engine.replay import BarSeries, TradeSeries
from cdb_cli.errors import ExitCode

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


# --- hostile input (issue 22): one line naming the file and the row, exit 1, never a traceback ---

CSV_HEADER = b"timestamp,open,high,low,close,volume\n"


def json_with_row_2(raw: bytes) -> bytes:
    """The five good rows as JSON, the second one replaced by ``raw``."""
    texts = [json.dumps(r).encode() for r in ROWS]
    texts[1] = raw
    return b"[" + b",".join(texts) + b"]"


def csv_with_row_2(raw: bytes) -> bytes:
    lines = [",".join(map(str, r)).encode() for r in ROWS]
    lines[1] = raw
    return CSV_HEADER + b"\n".join(lines) + b"\n"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


GOOD_JSON = json_with_row_2(json.dumps(ROWS[1]).encode())
OUTSIDE = "is outside 2000-01-01..2100-01-01"
# Rows the loader refuses one by one: an error naming the row, or skipped with --skip-bad-rows.
BAD_ROWS = {
    "huge-int-time.json": (json_with_row_2(b"[1" + b"9" * 40 + b", 1, 2, 0.5, 1.5, 3]"), OUTSIDE),
    "huge-float-time.json": (json_with_row_2(b"[1e300, 1, 2, 0.5, 1.5, 3]"), OUTSIDE),
    "seconds-time.json": (json_with_row_2(b"[1700000060, 1, 2, 0.5, 1.5, 3]"), OUTSIDE),
    "before-2000.json": (json_with_row_2(b"[946684799999, 1, 2, 0.5, 1.5, 3]"), OUTSIDE),
    "year-9999.csv": (csv_with_row_2(b"9999-12-31T23:59:59Z,1,2,0.5,1.5,3"), OUTSIDE),
    "year-1.csv": (csv_with_row_2(b"0001-01-01T00:00:00+14:00,1,2,0.5,1.5,3"), OUTSIDE),
    "nan.json": (json_with_row_2(b"[1700000060000, NaN, 2, 0.5, 1.5, 3]"), "open is nan"),
    "inf.json": (json_with_row_2(b"[1700000060000, 1, Infinity, 0.5, 1.5, 3]"), "high is inf"),
    "1e400.json": (json_with_row_2(b"[1700000060000, 1, 2, 1e400, 1.5, 3]"), "low is inf"),
    "huge-int-price.json": (
        json_with_row_2(b"[1700000060000, 1" + b"0" * 400 + b", 2, 0.5, 1.5, 3]"),
        "int too large to convert to float",
    ),
    "inf-volume.csv": (csv_with_row_2(b"1700000060000,1,2,0.5,1.5,1e999"), "volume is '1e999'"),
    "nested-value.json": (
        json_with_row_2(b"[1700000060000, [[1]], 2, 0.5, 1.5, 3]"),
        "not 'list'",
    ),
    "big-field.csv": (
        csv_with_row_2(b"1700000060000,1,2,0.5,1.5," + b"1" * 140_000),
        "CSV: field larger than field limit",
    ),
}
# Damage to the file as a whole: an error naming the row it is in (not skippable, except bytes
# that are not UTF-8: with --skip-bad-rows they read as U+FFFD and fail their row's checks).
BAD_FILES = {
    "deep.json": (json_with_row_2(b"[" * 100_000), "row 2: arrays or objects nested too deep"),
    "broken.json": (json_with_row_2(b"[1700000060000, 1, 2"), "row 2: not valid JSON"),
    "4301-digits.json": (
        json_with_row_2(b"[1700000060000, 1" + b"0" * 4300 + b", 2, 0.5, 1.5, 3]"),
        "row 2: not valid JSON: Exceeds the limit (4300 digits)",
    ),
    "not-utf8.json": (json_with_row_2(b'[1700000060000, "1\xff", 2, 0.5, 1.5, 3]'), "row 2: "),
    "not-utf8.csv": (csv_with_row_2(b"1700000060000,1\xc3\x28,2,0.5,1.5,3"), "row 2: "),
    "truncated.json.gz": (gz(GOOD_JSON)[:-12], "corrupt or truncated gzip"),
    "corrupt.json.gz": (gz(GOOD_JSON)[:12] + b"\xff" * 8 + gz(GOOD_JSON)[20:], "corrupt"),
    "only-magic.csv.gz": (b"\x1f\x8b", "corrupt or truncated gzip, no data"),
}


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_hostile_rows_name_file_and_row_or_are_skipped(tmp_path: Path, name: str) -> None:
    content, message = BAD_ROWS[name]
    for path in (tmp_path / name, tmp_path / f"{name}.gz"):
        path.write_bytes(content if path.suffix != ".gz" else gz(content))
        with pytest.raises(BadDataFile, match="row 2: ") as caught:
            load_market_data(path, symbol="BTCUSDT")
        assert caught.value.message.startswith(f"{path}: row 2: ")
        assert message in caught.value.message
        assert "\n" not in caught.value.message
        series = load_market_data(path, symbol="BTCUSDT", skip_bad_rows=True)
        assert (len(series), series.skipped_rows) == (4, 1)
        assert series.first_skipped is not None
        assert series.first_skipped.startswith("row 2: ")
        assert message in series.first_skipped


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_damaged_files_name_file_and_row(tmp_path: Path, name: str) -> None:
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadDataFile) as caught:
        load_market_data(path, symbol="BTCUSDT")
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("name", ["not-utf8.csv", "not-utf8.json"])
def test_non_utf8_bytes_in_a_row_are_skipped_with_the_flag(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name][0])
    series = load_market_data(path, symbol="BTCUSDT", skip_bad_rows=True)
    assert (len(series), series.skipped_rows) == (4, 1)
    assert series.first_skipped is not None
    assert series.first_skipped.startswith("row 2: could not convert string to float")


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_with_row_2(b"1700000060000,11,12,10,11.5,6"))
    assert len(load_market_data(path, symbol="BTCUSDT")) == 5


def test_the_time_range_is_inclusive_of_2000_and_exclusive_of_2100(tmp_path: Path) -> None:
    first, last = 946_684_800_000, 4_102_444_800_000 - MINUTE_MS
    rows = [[first, 1, 1, 1, 1, 1], [last, 1, 1, 1, 1, 1]]
    assert len(load_market_data(write(tmp_path, "edges.json", rows), symbol="X")) == 2
    rows.append([last + MINUTE_MS, 1, 1, 1, 1, 1])
    with pytest.raises(BadDataFile, match=f"row 3: time 4102444800000 {OUTSIDE}"):
        load_market_data(write(tmp_path, "after.json", rows), symbol="X")


@pytest.mark.parametrize("name", ["huge-int-time.json", "big-field.csv", "nan.json"])
def test_cli_bad_row_is_exit_1_or_skipped_and_reported(
    cdb: Callable[..., Result], tmp_path: Path, name: str
) -> None:
    content, message = BAD_ROWS[name]
    path = tmp_path / f"BTCUSDT-1m.{name}"
    path.write_bytes(content)
    failed = cdb("replay", str(path))
    assert failed.exit_code == ExitCode.FAILURE, failed.output
    assert failed.stderr.startswith(f"Error: {path}: row 2: ")
    assert message in failed.stderr
    assert "Traceback" not in failed.output
    skipped = cdb("replay", str(path), "--skip-bad-rows", "--json")
    assert skipped.exit_code == 0, skipped.output
    report = json.loads(skipped.stdout)
    assert (report["bars"], report["skipped_rows"]) == (4, 1)
    assert report["first_skipped_row"].startswith("row 2: ")
    assert message in report["first_skipped_row"]
    table = cdb("replay", str(path), "--skip-bad-rows")
    assert table.exit_code == 0, table.output
    assert "1 bad rows skipped; first: row 2:" in table.stdout


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_cli_damaged_file_is_exit_1(cdb: Callable[..., Result], tmp_path: Path, name: str) -> None:
    content, message = BAD_FILES[name]
    path = tmp_path / f"BTCUSDT-1m.{name}"
    path.write_bytes(content)
    skippable = name.startswith("not-utf8")  # see test_non_utf8_bytes_in_a_row_are_skipped...
    for args in [[]] if skippable else [[], ["--skip-bad-rows"]]:
        result = cdb("replay", str(path), *args)
        assert result.exit_code == ExitCode.FAILURE, result.output
        assert result.stderr.startswith(f"Error: {path}: ")
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.output
        if not args:
            assert message in result.stderr


def test_a_clean_run_has_no_first_skipped_row(cdb: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m.json"
    path.write_bytes(GOOD_JSON)
    result = cdb("replay", str(path), "--skip-bad-rows", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped_rows"] == 0
    assert "first_skipped_row" not in report


# --- gzip bombs: a .gz decompresses to at most gzip_cap(its size) bytes ------------------------

MiB = 1 << 20
ZEROS_MIB_GZ = gz(bytes(MiB))  # ~1 KB; members concatenated make a bomb of N MiB cheaply
OVER_CAP = "of the decompressed data: over the cap of"


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 1 MiB floor instead of 256 MiB, so a bomb that passes it stays small to build."""
    monkeypatch.setattr(marketdata_files, "GZIP_MIN_CAP", MiB)
    return MiB


def test_the_cap_is_100_times_the_file_and_at_least_256_mib() -> None:
    assert gzip_cap(0) == gzip_cap(2 * MiB) == 256 * MiB
    assert gzip_cap(30 * MiB) == 3_000 * MiB  # a year of bars compresses to ~5 MB: far below


@pytest.mark.parametrize("members", [1, 8])
def test_a_gzip_bomb_fails_at_the_cap_naming_file_and_position(
    tmp_path: Path, small_cap: int, members: int
) -> None:
    path = tmp_path / "BTCUSDT-1m.json.gz"
    # 8 MiB of zeros in one member or in 8 (~8 KB): over the 1 MiB floor, 100 times the size
    path.write_bytes(gz(bytes(8 * MiB)) if members == 1 else ZEROS_MIB_GZ * members)
    assert path.stat().st_size * 100 < small_cap
    for skip in (False, True):  # the whole file is refused: no row to skip
        with pytest.raises(BadDataFile) as caught:
            load_market_data(path, symbol="BTCUSDT", skip_bad_rows=skip)
        assert caught.value.message.startswith(
            f"{path}: byte 1,048,577 {OVER_CAP} 1,048,576 bytes for this .gz "
            "(100 times its size, at least 1,048,576); a gzip bomb?"
        )
        assert "\n" not in caught.value.message


def test_the_cap_grows_with_the_compressed_size(tmp_path: Path, small_cap: int) -> None:
    rows = [[1_700_000_000_000 + i * MINUTE_MS, 10 + i % 2, 12, 9, 11, i] for i in range(30_000)]
    data = json.dumps(rows).encode()
    bars = tmp_path / "bars.json.gz"
    bars.write_bytes(gz(data))
    assert small_cap < len(data) <= 100 * bars.stat().st_size  # over the floor, under 100 times
    assert len(load_market_data(bars, symbol="BTCUSDT")) == 30_000
    zeros = tmp_path / "zeros.csv.gz"
    zeros.write_bytes(ZEROS_MIB_GZ * 16)  # ~17 KB: its cap is 100 times that, over the floor
    cap = 100 * zeros.stat().st_size
    assert small_cap < cap < 16 * MiB
    with pytest.raises(BadDataFile, match=f"byte {cap + 1:,} {OVER_CAP} {cap:,} bytes"):
        load_market_data(zeros, symbol="BTCUSDT")


def test_a_bomb_is_decompressed_as_a_stream(tmp_path: Path, small_cap: int) -> None:
    """A 1 GiB bomb stops at the cap: memory holds the cap, never the bomb."""
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(ZEROS_MIB_GZ * 1024)  # ~1 MB; cap 100 times that
    tracemalloc.start()
    try:
        with pytest.raises(BadDataFile, match=OVER_CAP):
            load_market_data(path, symbol="BTCUSDT")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    cap = gzip_cap(path.stat().st_size)
    assert cap < 128 * MiB
    assert peak < cap + 16 * MiB  # the cap and a step's buffers, not 1 GiB


def test_a_truncated_bomb_is_still_stopped_at_the_cap(tmp_path: Path, small_cap: int) -> None:
    path = tmp_path / "bomb.json.gz"
    path.write_bytes((ZEROS_MIB_GZ * 8)[:-100])
    with pytest.raises(BadDataFile, match=OVER_CAP):
        load_market_data(path, symbol="BTCUSDT")


def test_cli_gzip_bomb_is_exit_1_with_one_line(
    cdb: Callable[..., Result], tmp_path: Path, small_cap: int
) -> None:
    path = tmp_path / "BTCUSDT-1m.json.gz"
    path.write_bytes(ZEROS_MIB_GZ * 4)
    for args in ([], ["--skip-bad-rows"], ["--json"]):
        result = cdb("replay", str(path), *args)
        assert result.exit_code == ExitCode.FAILURE, result.output
        assert result.stderr.startswith(f"Error: {path}: byte 1,048,577 {OVER_CAP} ")
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.output
