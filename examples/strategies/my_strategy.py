"""An example strategy in a file: a breakout of the recent closes, confirmed by volume.

Run it:  cdb replay DATA --strategy examples/strategies/my_strategy.py:Breakout --set lookback=30
         CDB_STRATEGY=examples/strategies/my_strategy.py:Breakout cdb run --paper --feed sim

- buy when the close rises above the highest close of the ``lookback`` bars before it and the
  volume is above ``volume_factor`` x their average volume;
- exit when the close falls below the lowest close of the ``exit_lookback`` bars before it.
"""

from __future__ import annotations

from collections import deque

from pydantic import Field

from cdb_cli.engine.strategies import (
    Condition,
    SignalIntent,
    StrategySettings,
    StrategyView,
    buy,
    clip01,
    exit_,
    warming_up,
)


class BreakoutSettings(StrategySettings):
    lookback: int = Field(default=20, ge=2, description="Bars whose highest close is broken.")
    exit_lookback: int = Field(default=10, ge=2, description="Bars whose lowest close exits.")
    volume_factor: float = Field(default=1.0, gt=0, description="Volume above this x average.")


class Breakout:
    name = "breakout"
    settings_model = BreakoutSettings

    def __init__(self, settings: BreakoutSettings) -> None:
        self.settings = settings
        size = max(settings.lookback, settings.exit_lookback)
        self.closes: deque[float] = deque(maxlen=size)  # the bars before the current one
        self.volumes: deque[float] = deque(maxlen=settings.lookback)
        self.last: tuple[float, float, float, float, float] | None = None

    @property
    def warmup(self) -> int:
        return max(self.settings.lookback, self.settings.exit_lookback)

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        s = self.settings
        intent = None
        if len(self.closes) == self.closes.maxlen:
            recent = list(self.closes)
            high = max(recent[-s.lookback :])
            low = min(recent[-s.exit_lookback :])
            average = sum(self.volumes) / len(self.volumes)
            self.last = (close, volume, high, low, average)
            seen = {"close": close, "high": high, "low": low, "volume_avg": average}
            if close > high and volume > s.volume_factor * average:
                intent = buy(clip01((close - high) / high * 100.0), seen)
            elif close < low:
                intent = exit_(clip01((low - close) / low * 100.0), seen)
        self.closes.append(close)
        self.volumes.append(volume)
        return intent

    def explain(self, close: float, volume: float) -> StrategyView:
        if self.last is None:
            return warming_up(self.warmup + 1 - len(self.closes))
        close, volume, high, low, average = self.last
        s = self.settings
        conditions = (
            Condition(name="breakout", value=close, threshold=high, passed=close > high,
                      text=f"close {close:.6g} vs high {high:.6g}"),
            Condition(name="volume", value=volume, threshold=s.volume_factor * average,
                      passed=volume > s.volume_factor * average,
                      text=f"volume {volume:.6g} vs {s.volume_factor:g}x {average:.6g}"),
            Condition(name="breakdown", side="exit", value=close, threshold=low,
                      passed=close < low, text=f"close {close:.6g} vs low {low:.6g}"),
        )  # fmt: skip
        return StrategyView("evaluated", 0, conditions, {"high": high, "low": low})
