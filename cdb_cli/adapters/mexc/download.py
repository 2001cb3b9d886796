"""Download MEXC klines into a replay file, resumable (``cdb data download``).

The file is a JSON array of ``[open_time_ms, open, high, low, close, volume]`` rows with numbers,
the format of ``tests/data/UNITTEST_BTC-1m.json`` that ``cdb replay`` and ``cdb sim-exchange
--replay`` read. It is rewritten atomically after every page, so an interrupted download keeps
what it has and the next run continues after its last row.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.engine.events import Bar
from cdb_cli.engine.ports.store import Store

__all__ = ["DownloadResult", "bar_event_id", "download_klines", "download_to_store", "read_rows"]

Row = list[int | Decimal]


@dataclass(frozen=True)
class DownloadResult:
    """What one download did."""

    path: Path
    rows: int
    new_rows: int
    resumed_from_ms: int | None


def read_rows(path: Path) -> list[Row]:
    """The rows of an existing file (exact decimals); ConfigurationError when it is not one."""
    try:
        rows = json.loads(path.read_text(), parse_float=Decimal)
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"Cannot resume from {path}: {e}") from None
    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 6 for r in rows):
        raise ConfigurationError(f"{path} is not a file of [open_ms, o, h, l, c, v] rows")
    return rows


def _existing(path: Path) -> list[Row]:
    return read_rows(path) if path.exists() else []


def _write(path: Path, rows: list[Row]) -> None:
    lines = ",\n".join(
        "[" + ", ".join(str(v) if isinstance(v, int) else f"{v:f}" for v in row) + "]"
        for row in rows
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"[\n{lines}\n]\n")
    os.replace(tmp, path)


async def download_klines(
    client: MexcHttpClient,
    symbol: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    path: Path,
    *,
    page: int = 500,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> DownloadResult:
    """Fetch klines with ``start_ms <= open < end_ms`` into ``path``, resuming an existing file.

    ``progress(done, total)`` is called in candles after every page.
    """
    step = lookup_interval(interval).ms
    rows = _existing(path)
    rows = [r for r in rows if start_ms <= int(r[0]) < end_ms]
    resumed_from = int(rows[-1][0]) if rows else None
    cursor = resumed_from + step if resumed_from is not None else start_ms
    total = max(1, -(-(end_ms - start_ms) // step))
    new_rows = 0
    progress(len(rows), total)
    async for klines in client.iter_klines(symbol, interval, cursor, end_ms, page=page):
        batch: list[Row] = [
            [k.open_time_ms, k.open, k.high, k.low, k.close, k.volume] for k in klines
        ]
        rows.extend(batch)
        new_rows += len(batch)
        _write(path, rows)
        progress(len(rows), total)
    if new_rows == 0:
        _write(path, rows)  # an empty range still leaves a valid (maybe empty) file
    return DownloadResult(path, len(rows), new_rows, resumed_from)


def bar_event_id(symbol: str, interval: str, open_ms: int) -> str:
    """The same id for the same candle, so a repeated download writes nothing twice."""
    key = f"mexc:bar:{symbol}:{interval}:{open_ms}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def _last_stored_open_ms(
    store: Store, symbol: str, interval: str, start_ms: int, end_ms: int
) -> int | None:
    recent = store.events(
        Bar,
        symbol=symbol,
        since_ns=start_ms * 1_000_000,
        until_ns=end_ms * 1_000_000,
        limit=1000,
        descending=True,
    )
    for bar in recent:
        if bar.interval == interval and bar.closed:
            return bar.ts_event // 1_000_000
    return None


async def download_to_store(
    client: MexcHttpClient,
    store: Store,
    symbol: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    *,
    page: int = 500,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> DownloadResult:
    """Like :func:`download_klines`, into the store as closed ``Bar`` events (idempotent ids).

    Resumes after the latest closed bar of this symbol and interval already in the range. Only
    candles that have closed (``open + interval <= now`` per the server) are final; the caller's
    ``end_ms`` should not be in the future.
    """
    step = lookup_interval(interval).ms
    name = lookup_interval(interval).name
    resumed_from = await asyncio.to_thread(
        _last_stored_open_ms, store, symbol, name, start_ms, end_ms
    )
    cursor = resumed_from + step if resumed_from is not None else start_ms
    total = max(1, -(-(end_ms - start_ms) // step))
    done = (cursor - start_ms) // step
    written = 0
    progress(done, total)
    async for klines in client.iter_klines(symbol, interval, cursor, end_ms, page=page):
        bars = [
            Bar(
                event_id=bar_event_id(symbol, name, k.open_time_ms),
                symbol=symbol,
                ts_event=k.open_time_ms * 1_000_000,
                source="mexc",
                interval=name,
                open=k.open,
                high=k.high,
                low=k.low,
                close=k.close,
                volume=k.volume,
                closed=True,
            )
            for k in klines
        ]
        written += await asyncio.to_thread(store.append_events, bars)
        done += len(bars)
        progress(done, total)
    return DownloadResult(Path("store"), done, written, resumed_from)
