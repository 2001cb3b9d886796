"""``cdb data download`` as a service, against the simulator served in the same loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
from cdb_cli.engine.events import Bar
from cdb_cli.kernel import open_store
from cdb_cli.services.download import (
    Downloaded,
    DownloadRequest,
    KlineDownload,
    kline_interval,
    shortfalls,
)
from cdb_cli.settings import Settings

MINUTE = 60_000


def _download(
    tmp_path: Path, *, minutes: int, to_store: bool = False, before: int = 100
) -> tuple[list[Downloaded], list[tuple[str, int, int]], Settings]:
    """Download ``minutes`` 1m candles of BTCUSDT starting ``before`` candles into the
    simulator's history; return the results, the progress calls and the settings used."""
    calls: list[tuple[str, int, int]] = []

    def started(symbol: str) -> Callable[[int, int], None]:
        return lambda done, total: calls.append((symbol, done, total))

    async def main() -> tuple[list[Downloaded], Settings]:
        config = SimConfig(symbols=("BTCUSDT",), history_minutes=600, tick_interval=None)
        async with SimServer(SimExchange(config)) as server:
            settings = Settings(
                mexc_rest_url=server.rest_url,
                database_url=f"sqlite:///{tmp_path / 'cdb.db'}",
            )
            start = server.exchange.markets["BTCUSDT"].candles[before].open_ms
            request = DownloadRequest(
                ["BTCUSDT"], "1m", start, start + minutes * MINUTE, tmp_path, to_store=to_store
            )
            with KlineDownload(settings, request) as job:
                assert job.expected_rows == minutes  # every candle of the range has closed
                return await job.run(started), settings

    results, settings = asyncio.run(main())
    return results, calls, settings


def test_klines_go_into_the_replay_file_and_are_counted(tmp_path: Path) -> None:
    results, calls, _ = _download(tmp_path, minutes=120)

    path = tmp_path / "BTCUSDT-1m.json"
    assert results == [
        Downloaded("BTCUSDT", str(path), rows=120, new_rows=120, resumed=False, expected_rows=120)
    ]
    assert len(json.loads(path.read_text())) == 120
    assert calls[0][0] == "BTCUSDT"
    assert calls[-1][1:] == (120, 120)
    assert results[0].as_json()["missing_rows"] == 0
    assert shortfalls(results, "1m") == []


def test_to_store_writes_closed_bars_and_names_the_store(tmp_path: Path) -> None:
    results, _, settings = _download(tmp_path, minutes=30, to_store=True)

    assert results[0].path == settings.database_url
    assert results[0].rows == 30
    store = open_store(settings)
    try:
        bars = store.events(Bar, symbol="BTCUSDT")
    finally:
        store.close()
    assert len(bars) == 30
    assert all(bar.closed and bar.interval == "1m" for bar in bars)


def test_what_the_source_cannot_serve_is_named() -> None:
    short = Downloaded("ETHUSDT", "x.json", rows=7, new_rows=7, resumed=True, expected_rows=10)
    full = Downloaded("BTCUSDT", "y.json", rows=10, new_rows=0, resumed=True, expected_rows=10)

    assert short.missing_rows == 3
    assert shortfalls([full, short], "5m") == ["ETHUSDT: 3 of 10 closed 5m candles missing (got 7)"]


def test_intervals_by_any_of_their_names() -> None:
    assert kline_interval("60m") == "1h"
    assert kline_interval("Min60") == "1h"
    assert kline_interval("1M") == "1M"
    with pytest.raises(ValueError, match="Unknown kline interval '2m'"):
        kline_interval("2m")
