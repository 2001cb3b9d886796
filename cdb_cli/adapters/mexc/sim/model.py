"""The simulator's generative market: one model for both its history and its live trades.

The model is a pure function of ``(seed, symbol, minute)``: the 1-minute candle of any wall-clock
minute (unix minutes, no epoch of its own) is the same whenever and however often it is asked
for. So the klines served for a warm-up and the trades streamed afterwards come from the same
process and cannot drift apart, and a simulator restarted at time T regenerates the path up to T
and carries on from the price it had reached, instead of rewinding to a start price.

How a minute is made:

- **Day levels.** The log price at the start of each UTC day is a mean-reverting (AR(1), phi
  :data:`DAY_PHI`) walk around the symbol's base price, written as a truncated moving average of
  per-day shocks, so any day's level costs :data:`DAY_TERMS` seeded draws and never a walk from an
  epoch. Prices wander (daily sd :data:`DAY_SIGMA`) but stay within tens of percent of the base.
- **Regimes within a day.** Trend up, trend down, range (mean-reverting) and volatility bursts,
  switching at random (each lasts a geometric number of minutes), drive the drift, volatility and
  volume of each minute. The day's minutes, generated from the day's own seed, are then bridged
  (a small constant drift per minute) so the day ends at the next day's level.
- **Volume.** Log-normal-ish and bursty: a persistent AR(1) component, minute noise, the regime's
  level, and more volume on bigger moves.
- **Inside a minute.** A price path open → first extreme → second extreme → close at seeded times,
  so live trades sampled from it make bars with (nearly) the candle's open, high, low, close; the
  minute's volume is spread over its trades by elapsed time (see :meth:`MarketModel.price_at`).

Floats throughout: this is a simulation; the market rounds to the instrument when it prints.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

__all__ = ["REGIMES", "MarketModel", "ModelMinute", "Regime"]

MINUTE_MS: Final = 60_000
DAY_MINUTES: Final = 1440

DAY_PHI: Final = 0.98
"""Persistence of the day level's deviation from the base price (half-life about 34 days)."""
DAY_SIGMA: Final = 0.03
"""Sd of a day level's shock (log): about 3 % a day, like BTC."""
DAY_TERMS: Final = 500
"""Terms of the day level's moving average: DAY_PHI ** 500 is below 1e-4."""

VOLUME_PHI: Final = 0.9
"""Persistence of the volume's slow component (minute to minute)."""
VOLUME_SLOW_SD: Final = 0.25
"""Sd of the slow component's innovation (stationary sd 0.25 / sqrt(1 - 0.81), about 0.57)."""
VOLUME_NOISE_SD: Final = 0.5
"""Sd of the volume's own minute noise (log)."""
VOLUME_MOVE: Final = 0.35
"""Extra log volume per unit of ``|shock| - E|shock|``: bigger moves trade more."""
WICK: Final = 0.45
"""Sd, in units of the minute's volatility, of how far high / low reach past open and close."""
CACHED_DAYS: Final = 8


@dataclass(frozen=True, slots=True)
class Regime:
    """How the market behaves for a while."""

    name: str
    drift: float
    """Mean log return per minute, in units of the base volatility."""
    volatility: float
    """Multiplier of the base volatility."""
    volume: float
    """Multiplier of the base volume."""
    minutes: float
    """Mean duration (geometric)."""
    share: float
    """Long-run share of time spent in this regime."""
    pull: float = 0.0
    """Mean reversion per minute toward the price the regime started at (a range)."""


REGIMES: Final = (
    Regime("range", 0.0, 0.7, 0.8, 90.0, 0.40, pull=0.03),
    Regime("trend_up", 0.12, 1.0, 1.1, 60.0, 0.25),
    Regime("trend_down", -0.12, 1.1, 1.2, 60.0, 0.25),
    Regime("burst", 0.0, 2.5, 2.5, 15.0, 0.10),
)
_ENTRY = [r.share / r.minutes for r in REGIMES]  # entry rates that give each regime its share
_MEAN_ABS_NORMAL = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True, slots=True)
class ModelMinute:
    """One minute of the model: its candle and the shape of its price path (floats)."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    """Base-asset volume traded in the minute."""
    first_at: float
    """Fraction of the minute at which the path reaches its first extreme."""
    second_at: float
    """Fraction of the minute at which it reaches the other extreme (after ``first_at``)."""
    low_first: bool
    regime: str

    def price_at(self, fraction: float) -> float:
        """The path's price ``fraction`` (0..1) of the way through the minute."""
        first, second = (self.low, self.high) if self.low_first else (self.high, self.low)
        points = ((0.0, self.open), (self.first_at, first), (self.second_at, second))
        end = (1.0, self.close)
        for (t0, p0), (t1, p1) in zip(points, (*points[1:], end), strict=True):
            if fraction <= t1:
                return p0 if t1 <= t0 else p0 + (p1 - p0) * (fraction - t0) / (t1 - t0)
        return self.close


class MarketModel:
    """The minutes of one symbol's simulated market, a pure function of (seed, symbol, minute).

    ``base_price`` is the level prices revert to over weeks, ``volatility`` the sd of a
    1-minute log return in a normal regime, ``volume`` the median base-asset volume of a minute
    (before regimes and noise).
    """

    def __init__(
        self,
        seed: int,
        symbol: str,
        base_price: float,
        *,
        volatility: float = 0.0008,
        volume: float = 1.0,
    ) -> None:
        if base_price <= 0 or volatility <= 0 or volume <= 0:
            raise ValueError("base_price, volatility and volume must be above 0")
        self.seed = seed
        self.symbol = symbol
        self.base_price = base_price
        self.volatility = volatility
        self.volume = volume
        self._shocks: dict[int, float] = {}
        self._days: dict[int, list[ModelMinute]] = {}
        self._powers = [DAY_PHI**k for k in range(DAY_TERMS)]

    def minute(self, index: int) -> ModelMinute:
        """The minute that opens at ``index * MINUTE_MS`` (unix minutes)."""
        day, within = divmod(index, DAY_MINUTES)
        return self._day(day)[within]

    def minutes(self, first: int, count: int) -> list[ModelMinute]:
        """``count`` consecutive minutes from unix minute ``first``."""
        return [self.minute(first + i) for i in range(count)]

    def price_at(self, ms: int) -> float:
        """The model's price at wall-clock ``ms`` (on the path of the minute it falls in)."""
        index, offset = divmod(ms, MINUTE_MS)
        return self.minute(index).price_at(offset / MINUTE_MS)

    # -- generation ------------------------------------------------------------------------------

    def _shock(self, day: int) -> float:
        found = self._shocks.get(day)
        if found is None:
            found = random.Random(f"{self.seed}:{self.symbol}:level:{day}").gauss(0.0, 1.0)
            self._shocks[day] = found
        return found

    def _level(self, day: int) -> float:
        """Log price at the start of ``day`` (days since the unix epoch)."""
        deviation = sum(p * self._shock(day - k) for k, p in enumerate(self._powers))
        return math.log(self.base_price) + DAY_SIGMA * deviation

    def _day(self, day: int) -> list[ModelMinute]:
        found = self._days.get(day)
        if found is None:
            found = self._generate_day(day)
            if len(self._days) >= CACHED_DAYS:
                del self._days[max(self._days, key=lambda d: abs(d - day))]  # the farthest
            self._days[day] = found
        return found

    def _generate_day(self, day: int) -> list[ModelMinute]:
        rng = random.Random(f"{self.seed}:{self.symbol}:day:{day}")
        start, end = self._level(day), self._level(day + 1)
        sigma0 = self.volatility
        regime = rng.choices(REGIMES, weights=[r.share for r in REGIMES])[0]
        anchor = x = 0.0
        slow = rng.gauss(0.0, VOLUME_SLOW_SD / math.sqrt(1.0 - VOLUME_PHI**2))
        raw: list[tuple[float, float, float, Regime]] = []  # (relative close, sigma, log volume)
        for _ in range(DAY_MINUTES):
            if rng.random() < 1.0 / regime.minutes:
                regime = rng.choices(REGIMES, weights=_ENTRY)[0]
                anchor = x
            sigma = sigma0 * regime.volatility
            z = rng.gauss(0.0, 1.0)
            x += regime.drift * sigma0 + sigma * z - regime.pull * (x - anchor)
            slow = VOLUME_PHI * slow + rng.gauss(0.0, VOLUME_SLOW_SD)
            log_volume = (
                slow
                + rng.gauss(0.0, VOLUME_NOISE_SD)
                + math.log(regime.volume)
                + VOLUME_MOVE * (abs(z) - _MEAN_ABS_NORMAL)
            )
            raw.append((x, sigma, log_volume, regime))
        bridge = (end - start - x) / DAY_MINUTES
        minutes: list[ModelMinute] = []
        first_ms = day * DAY_MINUTES * MINUTE_MS
        previous = start
        for i, (rel, sigma, log_volume, regime) in enumerate(raw):
            close = start + rel + bridge * (i + 1)
            top = max(previous, close) + abs(rng.gauss(0.0, WICK * sigma))
            bottom = min(previous, close) - abs(rng.gauss(0.0, WICK * sigma))
            a, b = rng.random(), rng.random()
            minutes.append(
                ModelMinute(
                    open_ms=first_ms + i * MINUTE_MS,
                    open=math.exp(previous),
                    high=math.exp(top),
                    low=math.exp(bottom),
                    close=math.exp(close),
                    volume=self.volume * math.exp(log_volume),
                    first_at=0.05 + 0.9 * min(a, b),
                    second_at=0.05 + 0.9 * max(a, b),
                    # falling minutes mostly make their high first, rising ones their low
                    low_first=rng.random() < (0.7 if close >= previous else 0.3),
                    regime=regime.name,
                )
            )
            previous = close
        return minutes
