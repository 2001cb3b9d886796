"""``cdb data download`` against the simulator: the replay file format and resuming."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.adapters.mexc.sim.market import load_replay
from cdb_cli.errors import ExitCode

MINUTE = 60_000


def _range(sim: SimServer, minutes: int) -> tuple[int, int]:
    candles = sim.exchange.markets["BTCUSDT"].candles
    start = candles[100].open_ms
    return start, start + minutes * MINUTE


def test_download_writes_the_replay_format(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    start, end = _range(threaded_sim, 700)  # two pages of 500
    result = cdb(  # --start/--end: the old names of --since/--until, hidden but still accepted
        "data",
        "download",
        "BTCUSDT",
        "ETHUSDT",
        "--start",
        str(start),
        "--end",
        str(end),
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "700 rows" in result.stdout
    path = tmp_path / "BTCUSDT-1m.json"
    rows = json.loads(path.read_text())
    assert len(rows) == 700
    assert all(len(row) == 6 and all(isinstance(v, int | float) for v in row) for row in rows)
    assert [row[0] for row in rows] == list(range(start, end, MINUTE))
    # The same format as tests/data/UNITTEST_BTC-1m.json; the simulator replays it.
    candles = load_replay(path)
    history = threaded_sim.exchange.markets["BTCUSDT"].candles[100:800]
    assert [(c.open_ms, c.close) for c in candles] == [(c.open_ms, c.close) for c in history]
    assert (tmp_path / "ETHUSDT-1m.json").is_file()


def test_cdb_replay_reads_what_data_download_writes(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    start, end = _range(threaded_sim, 600)
    downloaded = cdb(
        "data", "download", "BTCUSDT", "--since", str(start), "--until", str(end),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert downloaded.exit_code == 0, downloaded.output
    replayed = cdb("--json", "replay", str(tmp_path / "BTCUSDT-1m.json"))
    assert replayed.exit_code == 0, replayed.output
    report = json.loads(replayed.stdout)
    assert report["bars"] == 600
    assert report["provenance"]["symbol"] == "BTCUSDT"
    assert report["period"]["start"].startswith(
        datetime.fromtimestamp(start / 1000, UTC).strftime("%Y-%m-%dT%H:%M")
    )


def test_download_resumes_after_the_last_row(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    start, end = _range(threaded_sim, 240)
    middle = start + 100 * MINUTE
    args = ["data", "download", "BTCUSDT", "--since", str(start), "--out", str(tmp_path)]
    first = cdb(*args, "--until", str(middle))
    assert first.exit_code == 0, first.output
    second = cdb("--json", *args, "--until", str(end))
    assert second.exit_code == 0, second.output
    (report,) = json.loads(second.stdout)
    assert report == {
        "path": str(tmp_path / "BTCUSDT-1m.json"),
        "rows": 240,
        "new_rows": 140,
        "resumed": True,
        "expected_rows": 240,
        "missing_rows": 0,
    }
    rows = json.loads((tmp_path / "BTCUSDT-1m.json").read_text())
    assert [row[0] for row in rows] == list(range(start, end, MINUTE))


def test_hourly_download_uses_mexc_interval_names(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    candles = threaded_sim.exchange.markets["BTCUSDT"].candles
    start = candles[0].open_ms - candles[0].open_ms % 3_600_000 + 3_600_000
    result = cdb(
        "data",
        "download",
        "BTCUSDT",
        "-i",
        "1h",
        "--since",
        str(start),
        "--until",
        str(start + 5 * 3_600_000),
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "BTCUSDT-1h.json").read_text())
    assert [row[0] - start for row in rows] == [h * 3_600_000 for h in range(5)]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--interval", "7m"], ExitCode.USAGE),
        (["--since", "yesterday"], ExitCode.USAGE),
        (["--since", "2026-01-02", "--until", "2026-01-01"], ExitCode.CONFIGURATION),
        (["--since", "2026-01-01", "--start", "2026-01-01"], ExitCode.USAGE),
    ],
)
def test_bad_arguments_are_refused(
    cdb: Callable[..., Result], tmp_path: Path, args: list[str], code: int
) -> None:
    result = cdb("data", "download", "BTCUSDT", "--out", str(tmp_path), *args)
    assert result.exit_code == code, result.output


def test_unreachable_exchange_is_one_line(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", "http://127.0.0.1:1")
    result = cdb("data", "download", "BTCUSDT", "--out", str(tmp_path))
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "Cannot connect to MEXC at http://127.0.0.1:1" in result.stderr


def test_download_into_the_store_is_idempotent_and_resumes(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cdb_cli.engine.events import Bar
    from cdb_cli.kernel import open_store
    from cdb_cli.settings import Settings

    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    start, end = _range(threaded_sim, 120)
    args = ["--json", "data", "download", "BTCUSDT", "--to-store", "--since", str(start)]
    first = cdb(*args, "--until", str(start + 50 * MINUTE))
    assert first.exit_code == 0, first.output
    second = cdb(*args, "--until", str(end))
    assert second.exit_code == 0, second.output
    (report,) = json.loads(second.stdout)
    assert (report["rows"], report["new_rows"], report["resumed"]) == (120, 70, True)
    store = open_store(Settings(database_url=url))
    try:
        bars = store.events(Bar, symbol="BTCUSDT")
    finally:
        store.close()
    assert [b.ts_event // 1_000_000 for b in bars] == list(range(start, end, MINUTE))
    assert all(b.closed and b.interval == "1m" for b in bars)


def test_symbols_by_option_and_a_since_duration(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    result = cdb(
        "--json", "data", "download", "-s", "btcusdt,ETHUSDT", "--since", "30m",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [Path(item["path"]).name for item in document] == ["BTCUSDT-1m.json", "ETHUSDT-1m.json"]
    for item in document:
        assert item["missing_rows"] == 0
        assert item["rows"] >= item["expected_rows"] >= 29  # 30 minutes: the open one may come


def _beyond_history(sim: SimServer) -> tuple[int, int]:
    """A range starting 100 minutes before the simulator's first candle: it can serve 50."""
    first = sim.exchange.markets["BTCUSDT"].candles[0].open_ms
    return first - 100 * MINUTE, first + 50 * MINUTE


def test_a_range_the_source_cannot_serve_says_what_is_missing_and_exits_4(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    start, end = _beyond_history(threaded_sim)
    args = ["data", "download", "BTCUSDT", "--since", str(start), "--until", str(end)]
    result = cdb(*args, "--out", str(tmp_path))
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "could not serve the whole range" in result.stderr
    assert "BTCUSDT: 100 of 150 closed 1m candles missing (got 50)" in result.stderr
    rows = json.loads((tmp_path / "BTCUSDT-1m.json").read_text())
    assert len(rows) == 50  # what it served is kept

    as_json = cdb("--json", *args, "--out", str(tmp_path / "json"))
    assert as_json.exit_code == ExitCode.CHECK_FAILED, as_json.output
    (item,) = json.loads(as_json.stdout)
    assert (item["rows"], item["expected_rows"], item["missing_rows"]) == (50, 150, 100)


def test_allow_partial_accepts_a_short_range_with_a_warning(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    start, end = _beyond_history(threaded_sim)
    result = cdb(
        "data", "download", "BTCUSDT", "--since", str(start), "--until", str(end),
        "--out", str(tmp_path), "--allow-partial",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Warning: BTCUSDT: 100 of 150 closed 1m candles missing (got 50)" in result.stderr
    assert "50 rows, 50 new" in result.stdout


def test_a_short_download_into_the_store_exits_4_too(
    cdb: Callable[..., Result],
    threaded_sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_MEXC_REST_URL", threaded_sim.rest_url)
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cdb.db'}")
    start, end = _beyond_history(threaded_sim)
    result = cdb(
        "data", "download", "-s", "BTCUSDT", "--to-store", "--since", str(start),
        "--until", str(end),
    )  # fmt: skip
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "missing" in result.stderr


def _ms(*moment: int) -> int:
    return int(datetime(*moment, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("interval", "start", "end", "now", "expected"),
    [
        ("1m", 0, 10 * MINUTE, 100 * MINUTE, 10),
        ("1m", 30_000, 10 * MINUTE, 100 * MINUTE, 9),  # the first open is at 1 minute
        ("1m", 0, 10 * MINUTE, 5 * MINUTE + 1, 5),  # the one still open is not counted
        ("1m", 0, 10 * MINUTE, 0, 0),
        ("1h", _ms(2026, 11, 1), _ms(2026, 11, 1, 5), _ms(2026, 12, 1), 5),
        ("1w", _ms(2026, 11, 2), _ms(2026, 11, 30), _ms(2026, 12, 7), 4),  # Mondays
        ("1w", _ms(2026, 11, 3), _ms(2026, 11, 30), _ms(2026, 12, 7), 3),
        ("1M", _ms(2026, 1, 1), _ms(2026, 6, 1), _ms(2026, 12, 7), 5),  # months, not 30 days
        ("1M", _ms(2026, 1, 2), _ms(2026, 6, 1), _ms(2026, 3, 7), 1),  # February only
    ],
)
def test_expected_candles_counts_the_closed_ones_of_the_grid(
    interval: str, start: int, end: int, now: int, expected: int
) -> None:
    from cdb_cli.adapters.mexc.coverage import expected_candles

    assert expected_candles(interval, start, end, now) == expected
