"""Incremental technical indicators: O(1) per update, one instance per symbol and series.

Each indicator is fed one value at a time with ``update(value)``, which returns the new indicator
value, or ``None`` until enough values have been seen (``ready`` then turns true). The conventions
are TA-Lib's, so results can be checked against it: ``SMA`` includes the current value, ``EMA`` is
seeded with the SMA of its first ``period`` values, ``RSI`` uses Wilder smoothing.

Indicators are analytics, not money: they work in ``float``. Pure: no I/O, stdlib only. A value that
is not finite (NaN, ±inf) is refused with ``ValueError`` rather than poisoning the state forever.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["EMA", "RSI", "SMA", "VolumeSMA"]


def _check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int):
        raise TypeError(f"period must be an int (received {type(period).__name__})")
    if period < 1:
        raise ValueError(f"period must be >= 1 (received {period})")
    return period


def _check_value(value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"indicator input must be finite (received {value!r})")
    return x


class SMA:
    """Simple moving average of the last ``period`` values, the current one included.

    First value after ``period`` updates. The rolling sum is Neumaier-compensated, so it does not
    drift over long series while staying O(1).
    """

    __slots__ = ("_comp", "_period", "_sum", "_value", "_window")

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._window: deque[float] = deque()
        self._sum = 0.0
        self._comp = 0.0
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def value(self) -> float | None:
        """The latest average, ``None`` until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        return self._value is not None

    def _add(self, x: float) -> None:
        total = self._sum + x
        if abs(self._sum) >= abs(x):
            self._comp += (self._sum - total) + x
        else:
            self._comp += (x - total) + self._sum
        self._sum = total

    def update(self, value: float) -> float | None:
        x = _check_value(value)
        self._window.append(x)
        self._add(x)
        if len(self._window) > self._period:
            self._add(-self._window.popleft())
        if len(self._window) == self._period:
            self._value = (self._sum + self._comp) / self._period
        return self._value


VolumeSMA = SMA
"""Moving average of volume: the same computation as ``SMA``."""


class EMA:
    """Exponential moving average, ``alpha = 2 / (period + 1)``.

    TA-Lib seeding: the first value (after ``period`` updates) is the SMA of the first ``period``
    values; then ``ema += alpha * (value - ema)``.
    """

    __slots__ = ("_alpha", "_count", "_period", "_seed_sum", "_value")

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._seed_sum = 0.0
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def value(self) -> float | None:
        """The latest average, ``None`` until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        return self._value is not None

    def update(self, value: float) -> float | None:
        x = _check_value(value)
        if self._value is not None:
            self._value += self._alpha * (x - self._value)
            return self._value
        self._count += 1
        self._seed_sum += x
        if self._count == self._period:
            self._value = self._seed_sum / self._period
        return self._value


class RSI:
    """Relative strength index with Wilder smoothing, in [0, 100].

    The first value comes after ``period + 1`` updates (``period`` changes): the average gain and
    loss are the simple means of the first ``period`` changes, then
    ``avg = (avg * (period - 1) + x) / period``. ``RSI = 100 * avg_gain / (avg_gain + avg_loss)``,
    so 100 when the average loss is 0. A flat series (both averages 0) gives 50, neutral; TA-Lib
    gives 0 there.
    """

    __slots__ = ("_avg_gain", "_avg_loss", "_count", "_period", "_prev", "_value")

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._prev: float | None = None
        self._count = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def value(self) -> float | None:
        """The latest RSI, ``None`` until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        return self._value is not None

    def update(self, value: float) -> float | None:
        x = _check_value(value)
        prev, self._prev = self._prev, x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        n = self._period
        if self._count < n:
            # Warm-up: accumulate sums; they become the simple means at the period-th change.
            self._count += 1
            self._avg_gain += gain
            self._avg_loss += loss
            if self._count < n:
                return None
            self._avg_gain /= n
            self._avg_loss /= n
        else:
            self._avg_gain = (self._avg_gain * (n - 1) + gain) / n
            self._avg_loss = (self._avg_loss * (n - 1) + loss) / n
        total = self._avg_gain + self._avg_loss
        self._value = 50.0 if total == 0.0 else 100.0 * self._avg_gain / total
        return self._value
