"""Shared test kit: the real exchange data of tests/data, independent batch references, and a
market feed the test fills (``QueueFeed``).

The references recompute each indicator over the whole series with plain loops, in a different
form from the incremental code (window sums recomputed from scratch, ``alpha * x + (1 - alpha) *
prev``, Wilder's relative strength ``RS``), and re-derive the EMA-cross rule from those whole
series, so a test built on them does not share the engine's code path. ``pythonpath`` in
pyproject.toml makes this module importable from every test.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from cdb_cli.engine.events import Event
from cdb_cli.engine.signals import SignalConfig

DATA = Path(__file__).resolve().parent / "data"
"""tests/data: real exchange history that ships with the project (see its README.md)."""
CANDLES = DATA / "UNITTEST_BTC-1m.json"
TRADES = DATA / "XRP_ETH-trades.json.gz"


class QueueFeed:
    """The feed port as a queue the test fills (what MexcDataClient hands the loop)."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False


def require_data(path: Path) -> Path:
    """``path``, which ships with the project: a missing file fails the test, it never skips."""
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (it ships in tests/data; see its README.md)")
    return path


def load_candles() -> list[list[float]]:
    """The real 1-minute candles ``[open_time_ms, open, high, low, close, volume]``."""
    rows: list[list[float]] = json.loads(require_data(CANDLES).read_text())
    assert len(rows) > 1000
    assert all(len(row) == 6 for row in rows)
    return rows


def ref_sma(values: Sequence[float], n: int) -> list[float | None]:
    out: list[float | None] = [None] * len(values)
    for i in range(n - 1, len(values)):
        total = 0.0
        for j in range(i - n + 1, i + 1):
            total += values[j]
        out[i] = total / n
    return out


def ref_ema(values: Sequence[float], n: int) -> list[float | None]:
    alpha = 2 / (n + 1)
    out: list[float | None] = [None] * len(values)
    prev = math.fsum(values[:n]) / n
    out[n - 1] = prev
    for i in range(n, len(values)):
        prev = alpha * values[i] + (1 - alpha) * prev
        out[i] = prev
    return out


def ref_rsi(values: Sequence[float], n: int) -> list[float | None]:
    changes = [values[i] - values[i - 1] for i in range(1, len(values))]
    gains = [max(c, 0.0) for c in changes]
    losses = [max(-c, 0.0) for c in changes]
    out: list[float | None] = [None] * len(values)
    avg_gain = math.fsum(gains[:n]) / n
    avg_loss = math.fsum(losses[:n]) / n
    for k in range(n - 1, len(changes)):
        if k >= n:
            avg_gain = (avg_gain * (n - 1) + gains[k]) / n
            avg_loss = (avg_loss * (n - 1) + losses[k]) / n
        if avg_loss == 0.0:
            rsi = 50.0 if avg_gain == 0.0 else 100.0
        else:
            rs = avg_gain / avg_loss
            rsi = 100.0 * rs / (1.0 + rs)
        out[k + 1] = rsi
    return out


def ref_signals(
    closes: Sequence[float], volumes: Sequence[float], cfg: SignalConfig
) -> tuple[list[int], list[int]]:
    """Buy and exit indices re-derived from whole batch series."""
    fast = ref_ema(closes, cfg.ema_fast)
    slow = ref_ema(closes, cfg.ema_slow)
    rsi = ref_rsi(closes, cfg.rsi_period)
    vol = ref_sma(volumes, cfg.volume_period)
    trend = ref_sma(closes, cfg.trend_period)
    buys: list[int] = []
    exits: list[int] = []
    for i in range(1, len(closes)):
        f0, s0, f1, s1 = fast[i - 1], slow[i - 1], fast[i], slow[i]
        r, v = rsi[i], vol[i]
        if f0 is None or s0 is None or f1 is None or s1 is None or r is None or v is None:
            continue
        before, now = f0 - s0, f1 - s1
        if before <= 0 < now:
            t = trend[i]
            trend_ok = not cfg.trend_filter or (t is not None and closes[i] > t)
            if r > cfg.rsi_threshold and volumes[i] > cfg.volume_factor * v and trend_ok:
                buys.append(i)
        elif now < 0 <= before:
            exits.append(i)
    return buys, exits
