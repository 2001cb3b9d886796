"""``regime``: a trend/range filter that gates another strategy's buys.

The regime is read from the closes by Kaufman's efficiency ratio over ``er_period`` bars:
``ER = |close - close[n bars ago]| / sum of |close - previous close|`` over those bars, in [0, 1]:
near 1 when price moved one way (a trend), near 0 when it went back and forth (a range). The bar
is a **trend** when ``ER >= er_threshold``, a **range** otherwise.

The inner strategy (``inner``: ``ema_cross`` or ``mean_reversion``, with its settings in
``inner_settings``) sees every bar; its buys pass only in the regime ``allow`` (``trend`` for a
trend follower, ``range`` for mean reversion). Its exits always pass: a filter never keeps a
position open.

Pure: stdlib, pydantic and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cdb_cli.engine.config import SignalConfig
from cdb_cli.engine.strategies import (
    Condition,
    EmaCrossStrategy,
    RollingWindow,
    SignalIntent,
    SignalSide,
    Strategy,
    StrategySettings,
    StrategyView,
)
from cdb_cli.engine.strategies.mean_reversion import MeanReversionSettings, MeanReversionStrategy

__all__ = ["RegimeFilterSettings", "RegimeFilterStrategy"]


class RegimeFilterSettings(StrategySettings):
    """Settings of :class:`RegimeFilterStrategy` (``CDB_STRATEGY_INNER``…)."""

    inner: Literal["ema_cross", "mean_reversion"] = Field(
        default="ema_cross", description="The strategy whose buys are gated."
    )
    inner_settings: dict[str, Any] = Field(
        default_factory=dict,
        description='The inner strategy\'s settings, as JSON (e.g. {"ema_fast": 9}).',
    )
    allow: Literal["trend", "range"] = Field(
        default="trend", description="The regime in which the inner strategy may buy."
    )
    er_period: int = Field(default=20, ge=2, description="Bars of the efficiency ratio.")
    er_threshold: float = Field(
        default=0.3, gt=0.0, lt=1.0, description="A trend when the efficiency ratio is >= this."
    )

    @field_validator("inner_settings", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError(f"not a JSON object: {value[:60]!r}") from None
        return value

    @model_validator(mode="after")
    def _inner_valid(self) -> RegimeFilterSettings:
        self.inner_config()  # its own model's errors, at once
        return self

    def inner_config(self) -> SignalConfig | MeanReversionSettings:
        if self.inner == "ema_cross":
            return SignalConfig.model_validate(self.inner_settings)
        return MeanReversionSettings.model_validate(self.inner_settings)


class RegimeFilterStrategy:
    """The inner strategy, its buys gated by the regime; see the module docstring.

    Strength: the inner buy's strength times how clearly the regime holds (``ER`` above the
    threshold scaled to [0.5, 1] for a trend, below it for a range); exits keep theirs.
    Warm-up: the inner strategy's (a buy also needs ``er_period + 1`` closes).
    """

    name = "regime"
    settings_model = RegimeFilterSettings

    __slots__ = ("_cfg", "_closes", "_inner", "_moves", "_prev_close", "_trend_wanted")

    def __init__(self, settings: RegimeFilterSettings | None = None) -> None:
        cfg = settings if settings is not None else RegimeFilterSettings()
        self._cfg = cfg
        inner = cfg.inner_config()
        self._inner: Strategy = (
            EmaCrossStrategy(inner)
            if isinstance(inner, SignalConfig)
            else MeanReversionStrategy(inner)
        )
        self._closes = RollingWindow(cfg.er_period + 1)
        self._moves = RollingWindow(cfg.er_period)
        self._prev_close: float | None = None
        self._trend_wanted = cfg.allow == "trend"

    @property
    def warmup(self) -> int:
        return self._inner.warmup

    def efficiency_ratio(self) -> float | None:
        """ER of the latest ``er_period`` bars, ``None`` before ``er_period + 1`` closes."""
        first = self._closes.oldest()
        moves = self._moves.mean()
        if first is None or moves is None or self._prev_close is None:
            return None
        path = moves * self._cfg.er_period
        return abs(self._prev_close - first) / path if path > 0.0 else 0.0

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        previous, self._prev_close = self._prev_close, close
        self._closes.push(close)
        if previous is not None:
            self._moves.push(abs(close - previous))
        intent = self._inner.on_bar(ts_event, close, volume)
        if intent is None or intent.side is SignalSide.EXIT:
            return intent
        er = self.efficiency_ratio()
        if er is None:
            return None
        clarity = self._clarity(er)
        if clarity is None:
            return None
        indicators = {**intent.indicators, "efficiency_ratio": er}
        return SignalIntent(intent.side, intent.strength * clarity, indicators)

    def _clarity(self, er: float) -> float | None:
        """How clearly the allowed regime holds, in [0.5, 1]; None when it does not."""
        threshold = self._cfg.er_threshold
        if self._trend_wanted:
            return 0.5 + 0.5 * (er - threshold) / (1.0 - threshold) if er >= threshold else None
        return 0.5 + 0.5 * (threshold - er) / threshold if er < threshold else None

    def explain(self, close: float, volume: float) -> StrategyView:
        """The inner strategy's conditions, the regime as one more buy condition."""
        view = self._inner.explain(close, volume)
        er = self.efficiency_ratio()
        if view.status != "evaluated":
            return view
        threshold = self._cfg.er_threshold
        if er is None:
            regime = Condition(name="regime", threshold=threshold, text="regime not known yet")
        else:
            trend = er >= threshold
            passed = trend == self._trend_wanted
            regime = Condition(
                name="regime",
                value=er,
                threshold=threshold,
                passed=passed,
                text=f"{'trend' if trend else 'range'}: ER {er:.2f} "
                f"{'>=' if trend else '<'} {threshold:g} (buys in a {self._cfg.allow})",
            )
        values = dict(view.values)
        if er is not None:
            values["efficiency_ratio"] = er
        return StrategyView(view.status, 0, (*view.conditions, regime), values)
