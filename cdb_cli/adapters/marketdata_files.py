"""Market-data files for ``cdb replay``: candles and trades in the formats an operator has at hand.

Accepted formats (``FORMATS``), detected from the content (``.gz`` is decompressed first):

* ``bars-json`` — a JSON array of ``[open_time_ms, open, high, low, close, volume]`` rows
  (freqtrade's and ``cdb data download``'s format; numbers or numeric strings);
* ``mexc-klines`` — MEXC's ``/api/v3/klines`` answer: rows of
  ``[openTime, open, high, low, close, volume, closeTime, quoteAssetVolume]`` with string prices;
* ``trades-json`` — a JSON array of ``[time_ms, id, order, side, price, amount, cost]`` rows
  (freqtrade's trades format) for tick replay;
* ``bars-csv`` / ``trades-csv`` — CSV with a header: bars need a time column (``timestamp``,
  ``time``, ``open_time``, ``date`` or ``ts``; ms since the epoch or ISO 8601) and ``open``,
  ``high``, ``low``, ``close``, ``volume``; trades a time column, ``price`` and ``amount`` (or
  ``quantity``, ``qty``).

Every row is validated once here, so the replay loop can trust it: numbers finite, prices above
0, volume not negative, ``low <= open, close <= high``, timestamps strictly increasing and inside
``MIN_TIME_MS``..``MAX_TIME_MS`` (2000-01-01..2100-01-01 UTC, ms since the epoch, the unit of
every accepted format). A bad row is an error naming the file and row (``BadDataFile``), or, with
``skip_bad_rows``, skipped and counted (the first one's reason kept).

Hostile input is ``BadDataFile`` too, never a traceback (issue 22): a corrupt or truncated ``.gz``,
bytes that are not UTF-8 (with ``skip_bad_rows`` they become U+FFFD and the row holding them fails
its checks), invalid JSON, JSON nested deeper than the parser takes (a row is a flat array; a
nested value is a bad row), a number the parser refuses (over 4,300 digits), a CSV field over
``csv.field_size_limit()`` (131,072 characters unless changed), a ``.gz`` whose data would pass
:func:`gzip_cap` (a gzip bomb; decompressed as a stream, memory stays within the cap; plain files
have none). The whole-file errors (compression and its cap, JSON syntax and nesting, non-UTF-8
bytes without ``skip_bad_rows``) cannot be skipped; they name the row they are in when it can be
told, else the position.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO, Final

from cdb_cli.adapters.gzip_capped import GzipBroken, GzipOverCap, gunzip_capped
from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.replay import BarSeries, TradeSeries

__all__ = [
    "FORMATS",
    "GZIP_MAX_RATIO",
    "GZIP_MIN_CAP",
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "BadDataFile",
    "UnknownDataFormat",
    "file_sha256",
    "guess_interval_ns",
    "guess_symbol",
    "gzip_cap",
    "load_market_data",
]

NS_PER_MS: Final = 1_000_000
FORMATS: Final = ("bars-json", "mexc-klines", "trades-json", "bars-csv", "trades-csv")
_TIME_COLUMNS: Final = ("timestamp", "time", "open_time", "date", "ts")
_QUANTITY_COLUMNS: Final = ("amount", "quantity", "qty")
MIN_TIME_MS: Final = 946_684_800_000
"""2000-01-01T00:00:00Z: the earliest time a row may have (ms since the epoch)."""
MAX_TIME_MS: Final = 4_102_444_800_000
"""2100-01-01T00:00:00Z: rows must be before it (the ns times fit in 64 bits until 2262)."""
GZIP_MAX_RATIO: Final = 100
"""A ``.gz`` may decompress to this many times its size (or to ``GZIP_MIN_CAP``, when more)."""
GZIP_MIN_CAP: Final = 256 * 1024 * 1024
"""256 MiB: what any ``.gz`` may decompress to, however small (8 years of 1-minute bars)."""
_INTERVALS: Final = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600, "1h": 3600}


class UnknownDataFormat(CdbError):
    """The file is none of the accepted formats; the message lists them (a usage error)."""


class BadDataFile(CdbError):
    """A row of the file is invalid; the message names the file and the row."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes (the replay report's provenance)."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def guess_symbol(path: Path) -> str | None:
    """``UNITTEST_BTC-1m.json`` → ``UNITTESTBTC``, ``BTCUSDT-1m.json.gz`` → ``BTCUSDT``, or None."""
    head = path.name.split(".", 1)[0].split("-", 1)[0].replace("_", "").upper()
    if not head.isalnum():
        return None
    try:
        split_symbol(head)  # only a name that ends in a known quote currency is a symbol
    except ValueError:
        return None
    return head


def _interval_from_name(path: Path) -> int | None:
    stem = path.name.split(".", 1)[0]
    if "-" in stem:
        seconds = _INTERVALS.get(stem.rsplit("-", 1)[1])
        if seconds is not None:
            return seconds * 1_000_000_000
    return None


def guess_interval_ns(path: Path, ts: Sequence[int]) -> int:
    """The bar interval: from the file name (``-1m``), else the most common step between bars."""
    named = _interval_from_name(path)
    if named is not None:
        return named
    steps = Counter(b - a for a, b in pairwise(ts))
    if not steps:
        return 60 * 1_000_000_000
    return max(steps.items(), key=lambda item: (item[1], -item[0]))[0]


# --- reading -------------------------------------------------------------------------------------


def gzip_cap(compressed_size: int) -> int:
    """The most bytes a ``.gz`` of ``compressed_size`` bytes may decompress to: 100 times that,
    at least 256 MiB. Real files are far below: a year of 1-minute bars is ~30 MB, and market
    data compresses 5-10 times. A bigger file replays once decompressed."""
    return max(GZIP_MIN_CAP, GZIP_MAX_RATIO * compressed_size)


def _read_text(path: Path, skip: bool) -> str:
    raw: bytes | bytearray
    try:
        with path.open("rb") as handle:
            raw = handle.read(2)
            raw = _gunzip(path, handle) if raw == b"\x1f\x8b" else raw + handle.read()
    except FileNotFoundError:
        raise BadDataFile(f"{path}: no such file") from None
    except OSError as e:
        raise BadDataFile(f"{path}: cannot be read: {e}") from None
    try:
        return raw.decode(
            "utf-8-sig"
        )  # a leading byte-order mark (spreadsheets write one) is dropped
    except UnicodeDecodeError as e:
        if skip:
            return raw.decode("utf-8-sig", errors="replace")
        before = raw[: e.start].decode("utf-8-sig", errors="replace")
        raise BadDataFile(
            f"{path}: {_where(before)}: bytes that are not UTF-8 at byte {e.start:,} "
            f"({bytes(raw[e.start : e.start + 4])!r})"
        ) from None


# --- locating an error in the text (only ever run once something failed) -------------------------

_JSON_TOKENS: Final = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{},]')
_JSON_START: Final = re.compile(r"\s*\[")


def _gunzip(path: Path, handle: BinaryIO) -> bytearray:
    """The data of the gzip stream after the magic already read, within :func:`gzip_cap`."""
    cap = gzip_cap(os.fstat(handle.fileno()).st_size)
    try:
        return gunzip_capped(b"\x1f\x8b", handle, cap)
    except GzipOverCap:
        raise BadDataFile(
            f"{path}: byte {cap + 1:,} of the decompressed data: over the cap of {cap:,} bytes "
            f"for this .gz ({GZIP_MAX_RATIO} times its size, at least {GZIP_MIN_CAP:,}); a gzip "
            "bomb? decompress it first to replay it anyway"
        ) from None
    except GzipBroken as e:
        if not e.data:
            raise BadDataFile(f"{path}: corrupt or truncated gzip, no data: {e}") from None
        where = _where(e.data.decode("utf-8", errors="replace"))
        raise BadDataFile(
            f"{path}: {where}: corrupt or truncated gzip after {len(e.data):,} bytes of data: {e}"
        ) from None


def _json_row(text: str, end: int, *, deeper_than: int = 0) -> int:
    """The row (1-based element of the top-level array) that position ``end`` of ``text`` is in;
    with ``deeper_than``, the first row whose nesting passes that depth (0 when none does)."""
    depth = row = 0
    for token in _JSON_TOKENS.finditer(text, 0, end if not deeper_than else len(text)):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth == 2 and row == 0:
                row = 1
            if deeper_than and depth > deeper_than:
                return max(row, 1)
        elif mark in "]}":
            depth -= 1
        elif mark == "," and depth == 1:
            row += 1
    if deeper_than:
        return 0
    return max(row, 1) if row or depth else 1


def _where(before: str) -> str:
    """``row N`` for the text ``before`` an error: JSON rows by element, CSV rows by line."""
    if _JSON_START.match(before):
        return f"row {_json_row(before, len(before))}"
    line = before.count("\n")
    return f"row {line}" if line else "header"


def _detect_json(rows: list[Any]) -> str | None:
    """The format of the first rows' most common shape (one bad first row does not hide it)."""
    sample = [row for row in rows[:20] if isinstance(row, list)]
    if not sample:
        return None
    length = Counter(len(row) for row in sample).most_common(1)[0][0]
    first = next(row for row in sample if len(row) == length)
    if len(first) == 6:
        return "bars-json"
    if len(first) == 8 and isinstance(first[6], int | float):
        return "mexc-klines"
    if len(first) == 7 and isinstance(first[3], str) and first[3].lower() in {"buy", "sell"}:
        return "trades-json"
    return None


def _detect_csv(header: Sequence[str]) -> str | None:
    names = {name.strip().lower() for name in header}
    if not names & set(_TIME_COLUMNS):
        return None
    if {"open", "high", "low", "close", "volume"} <= names:
        return "bars-csv"
    if "price" in names and names & set(_QUANTITY_COLUMNS):
        return "trades-csv"
    return None


def _unknown(path: Path) -> UnknownDataFormat:
    return UnknownDataFormat(
        f"{path}: unknown market-data format; accepted: {', '.join(FORMATS)} "
        "(see 'cdb replay --help')"
    )


def load_market_data(
    path: Path,
    *,
    symbol: str,
    skip_bad_rows: bool = False,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> BarSeries | TradeSeries:
    """Load ``path`` as bars or trades, validated, in ``[since_ms, until_ms)`` when given."""
    text = _read_text(path, skip_bad_rows)
    rows: Iterable[Sequence[Any]]
    if _JSON_START.match(text):
        document = _parse_json(path, text)
        if not isinstance(document, list):
            raise _unknown(path)
        kind = _detect_json(document)
        rows = document
    else:
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader, [])
        except csv.Error as e:
            raise BadDataFile(f"{path}: header: CSV: {e}") from None
        kind = _detect_csv(header)
        rows = _csv_rows(reader, header, kind)
    if kind is None:
        raise _unknown(path)
    window = (since_ms, until_ms)
    if kind.startswith("trades"):
        return _load_trades(path, rows, symbol, skip_bad_rows, window)
    series = _load_bars(path, rows, symbol, skip_bad_rows, window)
    series.interval_ns = guess_interval_ns(path, series.ts)
    return series


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        row = _json_row(text, e.pos)
        raise BadDataFile(
            f"{path}: row {row}: not valid JSON: {e.msg} (line {e.lineno} column {e.colno})"
        ) from None
    except RecursionError:
        row = _json_row(text, 0, deeper_than=100) or _json_row(text, 0, deeper_than=2)
        raise BadDataFile(
            f"{path}: row {row}: arrays or objects nested too deep to read "
            "(a row is a flat array of values)"
        ) from None
    except ValueError as e:  # a number of over 4,300 digits (int_max_str_digits)
        digits = re.search(r"[0-9]{4300,}", text)
        where = f"row {_json_row(text, digits.start())}: " if digits else ""
        raise BadDataFile(f"{path}: {where}not valid JSON: {str(e).split(';')[0]}") from None


class _BadRow:
    """A row the CSV reader refused (a field over the size limit…); ``_valid_rows`` counts it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _csv_rows(
    reader: Iterator[list[str]], header: Sequence[str], kind: str | None
) -> Iterator[list[str]]:
    names = [name.strip().lower() for name in header]
    time_col = next((names.index(n) for n in _TIME_COLUMNS if n in names), -1)
    if kind == "bars-csv":
        columns = [time_col] + [names.index(n) for n in ("open", "high", "low", "close", "volume")]
    elif kind == "trades-csv":
        quantity = next(names.index(n) for n in _QUANTITY_COLUMNS if n in names)
        # The trades-json layout: [time, id, order, side, price, amount, cost].
        side = names.index("side") if "side" in names else -1
        columns = [time_col, -1, -1, side, names.index("price"), quantity]
    else:
        return
    while True:  # the try is outside the loop: no per-row cost
        try:
            for row in reader:
                yield [row[c] if 0 <= c < len(row) else "" for c in columns]
            return
        except csv.Error as e:  # the reader goes on with the next line
            yield _BadRow(f"CSV: {e}")  # type: ignore[misc]


def _time_ms(value: Any) -> int:
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(f"time {value!r} has no time zone")
        ms = int(moment.timestamp() * 1000)
    else:
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"time {value!r} is not a whole number of milliseconds")
        ms = int(number)
    if not MIN_TIME_MS <= ms < MAX_TIME_MS:
        raise ValueError(
            f"time {_short(value)} is outside 2000-01-01..2100-01-01 (ms since the epoch)"
        )
    return ms


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"{name} is missing")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} is {value!r}, not a finite number")
    return number


def _bar(row: Sequence[Any]) -> tuple[int, float, float, float, float, float]:
    if len(row) < 6:
        raise ValueError(
            f"expected 6 values [time, open, high, low, close, volume], found {len(row)}"
        )
    ts = _time_ms(row[0])
    o, h, low, c = (
        _number(row[i], n) for i, n in ((1, "open"), (2, "high"), (3, "low"), (4, "close"))
    )
    volume = _number(row[5], "volume")
    if min(o, h, low, c) <= 0:
        raise ValueError(f"prices must be above 0 (open {o}, high {h}, low {low}, close {c})")
    if volume < 0:
        raise ValueError(f"volume {volume} is negative")
    if not low <= min(o, c) <= max(o, c) <= h:
        raise ValueError(
            f"need low <= open, close <= high (open {o}, high {h}, low {low}, close {c})"
        )
    return ts, o, h, low, c, volume


class _Skipped:
    """How many rows were skipped, and the first one's reason (``row N: why``)."""

    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None


def _valid_rows(
    path: Path,
    rows: Iterable[Sequence[Any]],
    parse: Callable[[Sequence[Any], int], tuple[Any, ...]],
    skip: bool,
    window: tuple[int | None, int | None],
    skipped: _Skipped,
) -> Iterator[tuple[Any, ...]]:
    """Parse each row with ``parse(row, last_ts)`` (its first value is the time in ms); a bad
    row raises ``BadDataFile`` naming it, or with ``skip`` is counted in ``skipped``; rows
    outside the window are dropped after the order check."""
    since, until = window
    last = -1
    for number, row in enumerate(rows, start=1):
        try:
            if not isinstance(row, list | tuple):
                raise ValueError(
                    row.reason if isinstance(row, _BadRow) else "expected an array of values"
                )
            parsed = parse(row, last)
        except (ValueError, TypeError, OverflowError) as e:
            if not skip:
                raise BadDataFile(
                    f"{path}: row {number}: {e} (--skip-bad-rows skips and counts such rows)"
                ) from None
            skipped.count += 1
            if skipped.first is None:
                skipped.first = f"row {number}: {e}"
            continue
        last = parsed[0]
        if (since is None or last >= since) and (until is None or last < until):
            yield parsed


def _bar_after(row: Sequence[Any], last: int) -> tuple[int, float, float, float, float, float]:
    parsed = _bar(row)
    if parsed[0] <= last:
        raise ValueError(
            f"time {parsed[0]} is not after the previous row's {last} (unsorted or duplicate)"
        )
    return parsed


def _trade_after(row: Sequence[Any], last: int) -> tuple[int, float, float, int]:
    if len(row) < 6:
        raise ValueError("expected [time, id, order, side, price, amount, ...]")
    ts = _time_ms(row[0])
    price = _number(row[4], "price")
    quantity = _number(row[5], "amount")
    if price <= 0 or quantity <= 0:
        raise ValueError(f"price {price} and amount {quantity} must be above 0")
    if ts < last:  # trades may share a millisecond, but never go back
        raise ValueError(f"time {ts} is before the previous row's {last} (unsorted)")
    return ts, price, quantity, 0 if str(row[3]).lower() == "sell" else 1


def _load_bars(
    path: Path,
    rows: Iterable[Sequence[Any]],
    symbol: str,
    skip: bool,
    window: tuple[int | None, int | None],
) -> BarSeries:
    series = BarSeries(symbol=symbol, interval_ns=60 * 1_000_000_000)
    skipped = _Skipped()
    for ts, o, h, low, c, volume in _valid_rows(path, rows, _bar_after, skip, window, skipped):
        series.ts.append(ts * NS_PER_MS)
        series.open.append(o)
        series.high.append(h)
        series.low.append(low)
        series.close.append(c)
        series.volume.append(volume)
    series.skipped_rows = skipped.count
    series.first_skipped = skipped.first
    return series


def _load_trades(
    path: Path,
    rows: Iterable[Sequence[Any]],
    symbol: str,
    skip: bool,
    window: tuple[int | None, int | None],
) -> TradeSeries:
    series = TradeSeries(symbol=symbol)
    skipped = _Skipped()
    for ts, price, quantity, buyer in _valid_rows(path, rows, _trade_after, skip, window, skipped):
        series.ts.append(ts * NS_PER_MS)
        series.price.append(price)
        series.quantity.append(quantity)
        series.buyer.append(buyer)
    series.skipped_rows = skipped.count
    series.first_skipped = skipped.first
    return series
