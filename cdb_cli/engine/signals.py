"""The signal engine: strategies that turn closed bars into buy / exit intents.

A strategy is one object per symbol implementing :class:`Strategy`: it is fed every closed bar with
``on_bar(ts_event, close, volume)`` (plain floats, the analytics domain) and returns a
:class:`SignalIntent` when it wants to act, ``None`` otherwise. The pipeline turns an intent into a
:class:`~cdb_cli.engine.events.TradingSignal` with :func:`signal_event`, so pydantic objects and
``Decimal`` are only built when a signal fires; the per-bar path is float math and O(1) indicator
updates, nothing else (no logging, no allocation beyond the indicators' own).

A second strategy only has to implement :class:`Strategy`; the pipeline does not change.

Pure: stdlib, pydantic and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cdb_cli.engine.events import SignalSide, TradingSignal
from cdb_cli.engine.indicators import EMA, RSI, RollingWindow

__all__ = [
    "EmaCrossStrategy",
    "SignalConfig",
    "SignalIntent",
    "Strategy",
    "signal_event",
]

CROSS_SCALE = 1000.0
"""A cross whose |EMA(fast) - EMA(slow)| is 0.1 % of the close (or more) has full magnitude 1."""


class SignalConfig(BaseModel):
    """Parameters of :class:`EmaCrossStrategy` (the seed's EMA-cross rule), frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ema_fast: int = Field(default=12, ge=1, description="Period of the fast EMA of the close.")
    ema_slow: int = Field(
        default=26, ge=1, description="Period of the slow EMA of the close; > ema_fast."
    )
    rsi_period: int = Field(default=14, ge=1, description="Period of the Wilder RSI of the close.")
    rsi_threshold: float = Field(
        default=50.0,
        ge=0.0,
        lt=100.0,
        description="A buy needs RSI strictly above this value (0..100).",
    )
    volume_period: int = Field(
        default=20, ge=1, description="Period of the volume SMA (current bar included)."
    )
    volume_factor: float = Field(
        default=1.5,
        gt=0.0,
        description="A buy needs volume > volume_factor x SMA(volume, volume_period).",
    )
    trend_filter: bool = Field(
        default=False, description="Only buy when the close is above SMA(close, trend_period)."
    )
    trend_period: int = Field(
        default=200, ge=1, description="Period of the close SMA used by the trend filter."
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SignalConfig:
        if self.ema_fast >= self.ema_slow:
            raise ValueError(
                f"ema_fast must be < ema_slow (received {self.ema_fast} >= {self.ema_slow})"
            )
        return self


class SignalIntent(NamedTuple):
    """What a strategy wants on this bar; light on purpose (built only when a signal fires)."""

    side: SignalSide
    strength: float
    """In [0, 1]; each strategy documents its formula."""
    indicators: dict[str, float]
    """The indicator values the decision saw, for the signal's audit trail."""


class Strategy(Protocol):
    """One strategy instance per symbol, fed closed bars in time order."""

    name: str

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        """Consume one closed bar; return an intent when the strategy wants to act."""
        ...


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


class EmaCrossStrategy:
    """The seed's rule on closed bars: EMA cross confirmed by RSI and volume.

    With ``diff = EMA(fast) - EMA(slow)`` and ``prev`` its value on the previous bar:

    - **buy** when ``prev <= 0 < diff`` (cross up) and ``RSI > rsi_threshold`` and
      ``volume > volume_factor * SMA(volume, volume_period)`` (the SMA includes the current bar),
      and, with ``trend_filter``, ``close > SMA(close, trend_period)``;
    - **exit** when ``diff < 0 <= prev`` (cross down); RSI, volume and trend do not gate exits.

    No signal before the EMAs, the RSI and the volume SMA are all ready and a ``prev`` exists
    (with defaults, the first candidate is bar index 26). With the trend filter, no buy before the
    trend SMA is ready either.

    Strength, in [0, 1]:

    - buy: the mean of three components, each clipped to [0, 1]: RSI margin
      ``(rsi - threshold) / (100 - threshold)``, volume margin ``(ratio - factor) / factor`` with
      ``ratio = volume / SMA(volume)``, and cross magnitude ``|diff| / close * 1000``;
    - exit: the cross magnitude alone.
    """

    __slots__ = (
        "_cfg",
        "_ema_fast",
        "_ema_slow",
        "_prev_diff",
        "_push_trend",
        "_push_volume",
        "_rsi",
        "_trend",
        "_up_fast",
        "_up_rsi",
        "_up_slow",
        "_volume",
        "name",
    )

    def __init__(self, config: SignalConfig | None = None, *, name: str = "ema_cross") -> None:
        cfg = config if config is not None else SignalConfig()
        self._cfg = cfg
        self.name = name
        self._ema_fast = EMA(cfg.ema_fast)
        self._ema_slow = EMA(cfg.ema_slow)
        self._rsi = RSI(cfg.rsi_period)
        # The volume and trend averages are read only when a cross happens: a rolling window
        # costs one store per bar and gives the exact mean on demand.
        self._volume = RollingWindow(cfg.volume_period)
        self._trend = RollingWindow(cfg.trend_period) if cfg.trend_filter else None
        self._prev_diff: float | None = None
        # Bound once: saves two attribute lookups per indicator per bar on the hot path.
        self._up_fast = self._ema_fast.update
        self._up_slow = self._ema_slow.update
        self._up_rsi = self._rsi.update
        self._push_volume = self._volume.push
        self._push_trend = self._trend.push if self._trend is not None else None

    @property
    def config(self) -> SignalConfig:
        return self._cfg

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        """Feed one closed bar (``ts_event`` is unused by this rule); return a buy / exit intent."""
        fast = self._up_fast(close)
        slow = self._up_slow(close)
        rsi = self._up_rsi(close)
        self._push_volume(volume)
        if self._push_trend is not None:
            self._push_trend(close)
        if slow is None or fast is None:
            return None
        diff = fast - slow
        prev, self._prev_diff = self._prev_diff, diff
        if prev is None or rsi is None:
            return None
        if prev <= 0.0 < diff:
            if not self._volume.full:
                return None
            return self._buy(close, volume, fast, slow, diff, rsi)
        if diff < 0.0 <= prev:
            if not self._volume.full:
                return None
            return SignalIntent(
                SignalSide.EXIT,
                _clip01(abs(diff) / close * CROSS_SCALE),
                {"close": close, "ema_fast": fast, "ema_slow": slow, "rsi": rsi},
            )
        return None

    def _buy(
        self, close: float, volume: float, fast: float, slow: float, diff: float, rsi: float
    ) -> SignalIntent | None:
        cfg = self._cfg
        vol_sma = self._volume.mean()
        if vol_sma is None or rsi <= cfg.rsi_threshold or volume <= cfg.volume_factor * vol_sma:
            return None
        trend = self._trend.mean() if self._trend is not None else None
        if self._trend is not None and (trend is None or close <= trend):
            return None
        # vol_sma > 0 here: the volume is > 0 and is part of its own window.
        ratio = volume / vol_sma
        strength = (
            _clip01((rsi - cfg.rsi_threshold) / (100.0 - cfg.rsi_threshold))
            + _clip01((ratio - cfg.volume_factor) / cfg.volume_factor)
            + _clip01(abs(diff) / close * CROSS_SCALE)
        ) / 3.0
        indicators = {
            "close": close,
            "ema_fast": fast,
            "ema_slow": slow,
            "rsi": rsi,
            "volume": volume,
            "volume_sma": vol_sma,
            "volume_ratio": ratio,
        }
        if trend is not None:
            indicators["trend_sma"] = trend
        return SignalIntent(SignalSide.BUY, strength, indicators)


def signal_event(
    intent: SignalIntent,
    *,
    symbol: str,
    ts_event: int,
    source: str,
    strategy: str,
    price: Decimal,
) -> TradingSignal:
    """Build the :class:`TradingSignal` for an intent (only when a signal fires)."""
    return TradingSignal(
        symbol=symbol,
        ts_event=ts_event,
        source=source,
        side=intent.side,
        strategy=strategy,
        price=price,
        strength=intent.strength,
        indicators=dict(intent.indicators),
    )
