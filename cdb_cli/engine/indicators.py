"""Incremental technical indicators: O(1) per update, one instance per symbol and series.

Each indicator is fed one value at a time with ``update(value)``, which returns the new indicator
value, or ``None`` until enough values have been seen (``ready`` then turns true). The conventions
are TA-Lib's, so results can be checked against it: ``SMA`` includes the current value, ``EMA`` is
seeded with the SMA of its first ``period`` values, ``RSI`` uses Wilder smoothing.

Indicators are analytics, not money: they work in ``float``. Pure: no I/O, stdlib only.

``update`` is on the per-bar hot path and does no checking: inputs must be finite. They are
validated once at the data boundary (``Bar`` events refuse NaN and non-positive prices; the replay
loaders refuse bad rows), not on every call.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["EMA", "RSI", "SMA", "RollingWindow", "SeriesCache", "VolumeSMA", "window_mean"]

SeriesCache = dict[tuple[Any, ...], Any]
"""Indicator values computed over one series, by indicator, period and series: configurations
replayed over the same data share them (``update_many``'s ``cache``)."""

_NAN = math.nan


def _check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int):
        raise TypeError(f"period must be an int (received {type(period).__name__})")
    if period < 1:
        raise ValueError(f"period must be >= 1 (received {period})")
    return period


class _Indicator:
    """What every indicator shows: its period, its latest value (None until ready)."""

    __slots__ = ("_period", "_value")

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def value(self) -> float | None:
        """The latest value, ``None`` until enough values have been seen."""
        return self._value

    @property
    def ready(self) -> bool:
        return self._value is not None

    def needed(self) -> int:
        """How many more updates before the first value (0 once ready); off the hot path."""
        return 0 if self._value is not None else self._period - self._seen()

    def _seen(self) -> int:
        raise NotImplementedError


class SMA(_Indicator):
    """Simple moving average of the last ``period`` values, the current one included.

    First value after ``period`` updates. The rolling sum is Neumaier-compensated, so it does not
    drift over long series while staying O(1); the window is a fixed ring buffer.
    """

    __slots__ = ("_buf", "_comp", "_count", "_i", "_sum")

    def _seen(self) -> int:
        return self._count

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._buf = [0.0] * period
        self._i = 0
        self._count = 0
        self._sum = 0.0
        self._comp = 0.0

    def update(self, value: float) -> float | None:
        i = self._i
        old = self._buf[i]
        self._buf[i] = value
        self._i = i + 1 if i + 1 < self._period else 0
        # Neumaier-compensated running sum, inlined (hot path): add the new value ...
        s = self._sum
        total = s + value
        comp = self._comp + ((s - total) + value if abs(s) >= abs(value) else (value - total) + s)
        if self._value is None:
            self._count += 1
            if self._count < self._period:
                self._sum, self._comp = total, comp
                return None
        else:
            # ... and subtract the one leaving the window (a zero while the window fills).
            s, total = total, total - old
            comp += (s - total) - old if abs(s) >= abs(old) else (-old - total) + s
        self._sum, self._comp = total, comp
        self._value = (total + comp) / self._period
        return self._value


VolumeSMA = SMA
"""Moving average of volume: the same computation as ``SMA``."""


def window_mean(values: Sequence[float], period: int) -> float:
    """The correctly rounded mean of ``values`` (a full window of ``period``), in any order."""
    return math.fsum(values) / period


class RollingWindow:
    """The last ``period`` values, O(1) per ``push``; :meth:`mean` is their exact average.

    For a moving average that is read rarely (a strategy's confirmation filter, read only when a
    cross happens): the per-bar cost is one store, and the average, computed on demand with
    ``math.fsum``, is the correctly rounded mean of the window — the SMA convention (current value
    included), without any running-sum error.
    """

    __slots__ = ("_buf", "_full", "_i", "_period")

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._buf = [0.0] * period
        self._i = 0
        self._full = False

    @property
    def period(self) -> int:
        return self._period

    @property
    def full(self) -> bool:
        """True once ``period`` values were pushed (the mean is defined)."""
        return self._full

    def needed(self) -> int:
        """How many more values before the window is full (0 once it is)."""
        return 0 if self._full else self._period - self._i

    def push(self, value: float) -> None:
        i = self._i
        self._buf[i] = value
        i += 1
        if i == self._period:
            i = 0
            self._full = True
        self._i = i

    def push_many(self, values: Sequence[float]) -> None:
        """:meth:`push` each of ``values`` in order (only the last ``period`` stay)."""
        skipped = len(values) - self._period
        if skipped > 0:  # these would be overwritten: only the ring position moves
            self._i = (self._i + skipped) % self._period
            self._full = True
            values = values[skipped:]
        for value in values:
            self.push(value)

    def ordered(self) -> list[float]:
        """The values in the window, oldest first (fewer than ``period`` until full)."""
        if not self._full:
            return self._buf[: self._i]
        return self._buf[self._i :] + self._buf[: self._i]

    def mean(self) -> float | None:
        """The mean of the window, ``None`` until it is full."""
        return window_mean(self._buf, self._period) if self._full else None

    def stdev(self) -> float | None:
        """The population standard deviation of the window (Bollinger's), ``None`` until full."""
        if not self._full:
            return None
        mean = math.fsum(self._buf) / self._period
        return math.sqrt(math.fsum((x - mean) ** 2 for x in self._buf) / self._period)

    def oldest(self) -> float | None:
        """The value pushed ``period - 1`` pushes ago (the window's first), ``None`` until full."""
        return self._buf[self._i] if self._full else None


class _Recurrence(_Indicator):
    """An indicator whose values come from a recurrence over the series (EMA, RSI): the
    recurrence is :meth:`_feed`, the one place of it; :meth:`update` feeds it one value and
    :meth:`update_many` a column, with values shared through a cache."""

    __slots__ = ()
    _KIND = ""
    """The cache's name of the indicator (``ema``, ``rsi``)."""

    def update(self, value: float) -> float | None:
        self._feed((value,))
        return self._value

    def update_many(
        self, values: Sequence[float], cache: SeriesCache | None = None
    ) -> array[float]:
        """Feed ``values`` in order; their indicator values (NaN while not ready). ``cache``:
        shared by the indicators fed the same ``values`` from scratch (a sweep's
        configurations)."""
        if cache is None or not self._fresh():
            return self._feed(values)
        key = (self._KIND, self._period, id(values))
        hit = cache.get(key)
        if hit is not None and hit[2] is values:  # the very column, not one at its old address
            out, state, _ = hit
            self._restore(state)
            return out  # type: ignore[no-any-return]
        out = self._feed(values)
        cache[key] = (out, self._state(), values)
        return out

    def _feed(self, values: Sequence[float]) -> array[float]:
        raise NotImplementedError

    def _fresh(self) -> bool:
        """Nothing fed yet: the cache's values are this indicator's."""
        raise NotImplementedError

    def _state(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def _restore(self, state: tuple[Any, ...]) -> None:
        raise NotImplementedError


class EMA(_Recurrence):
    """Exponential moving average, ``alpha = 2 / (period + 1)``.

    TA-Lib seeding: the first value (after ``period`` updates) is the SMA of the first ``period``
    values; then ``ema += alpha * (value - ema)``. The recurrence lives in :meth:`_feed`;
    :meth:`update` is its one-value case.
    """

    __slots__ = ("_alpha", "_count", "_seed_sum")

    def _seen(self) -> int:
        return self._count

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._seed_sum = 0.0

    _KIND = "ema"

    def _fresh(self) -> bool:
        return self._count == 0

    def _state(self) -> tuple[Any, ...]:
        return self._value, self._count, self._seed_sum

    def _restore(self, state: tuple[Any, ...]) -> None:
        self._value, self._count, self._seed_sum = state

    def _feed(self, values: Sequence[float]) -> array[float]:
        """The recurrence, the one place of it (:meth:`update` feeds it one value)."""
        out = array("d")
        append = out.append
        value = self._value
        rest: Iterator[float] = iter(values)
        if value is None:
            count, seed, period = self._count, self._seed_sum, self._period
            for x in rest:
                count += 1
                seed += x
                if count == period:
                    value = seed / period
                    append(value)
                    break
                append(_NAN)
            self._count, self._seed_sum = count, seed
        if value is not None:
            alpha = self._alpha
            for x in rest:
                value += alpha * (x - value)
                append(value)
        self._value = value
        return out


class RSI(_Recurrence):
    """Relative strength index with Wilder smoothing, in [0, 100].

    The first value comes after ``period + 1`` updates (``period`` changes): the average gain and
    loss are the simple means of the first ``period`` changes, then
    ``avg = (avg * (period - 1) + x) / period``. ``RSI = 100 * avg_gain / (avg_gain + avg_loss)``,
    so 100 when the average loss is 0. A flat series (both averages 0) gives 50, neutral; TA-Lib
    gives 0 there. The recurrence lives in :meth:`_feed`; :meth:`update` is its one-value
    case.
    """

    __slots__ = ("_avg_gain", "_avg_loss", "_count", "_prev")

    def _seen(self) -> int:
        # The first value takes period + 1 updates: the very first one brings no change.
        return self._count - (1 if math.isnan(self._prev) else 0)

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self._prev = math.nan  # no value yet
        self._count = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0

    _KIND = "rsi"

    def _fresh(self) -> bool:
        return self._count == 0 and math.isnan(self._prev)

    def _state(self) -> tuple[Any, ...]:
        return self._prev, self._count, self._avg_gain, self._avg_loss, self._value

    def _restore(self, state: tuple[Any, ...]) -> None:
        self._prev, self._count, self._avg_gain, self._avg_loss, self._value = state

    def _feed(self, values: Sequence[float]) -> array[float]:
        """The recurrence, the one place of it (:meth:`update` feeds it one value)."""
        out = array("d")
        append = out.append
        rest: Iterator[float] = iter(values)
        if self._value is None:
            self._warm_up_many(rest, append)
        # Floats: a float times an int converts the int first, so the results are the same,
        # without a conversion per value.
        n = float(self._period)
        keep = n - 1.0
        prev, gain, loss = self._prev, self._avg_gain, self._avg_loss
        if self._value is not None:
            rsi = self._value
            for x in rest:
                change = x - prev
                prev = x
                if change > 0.0:
                    gain = (gain * keep + change) / n
                    loss = loss * keep / n
                else:
                    gain = gain * keep / n
                    loss = (loss * keep - change) / n
                total = gain + loss
                rsi = 50.0 if total == 0.0 else 100.0 * gain / total
                append(rsi)
            self._value = rsi
            self._prev, self._avg_gain, self._avg_loss = prev, gain, loss
        return out

    def _warm_up_many(self, rest: Iterator[float], append: Callable[[float], None]) -> None:
        """Take values from ``rest`` until the first RSI (the simple means of the first
        ``period`` changes), appending NaN for each before it and the RSI for the last."""
        n = self._period
        prev, gain, loss, count = self._prev, self._avg_gain, self._avg_loss, self._count
        for x in rest:
            if math.isnan(prev):  # the very first value: no change yet
                prev = x
                append(_NAN)
                continue
            change = x - prev
            prev = x
            count += 1
            gain += change if change > 0.0 else 0.0
            loss += -change if change < 0.0 else 0.0
            if count == n:
                gain /= n
                loss /= n
                total = gain + loss
                self._value = 50.0 if total == 0.0 else 100.0 * gain / total
                append(self._value)
                break
            append(_NAN)
        self._prev, self._avg_gain, self._avg_loss, self._count = prev, gain, loss, count
