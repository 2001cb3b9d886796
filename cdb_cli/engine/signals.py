"""The signal engine: strategies that turn closed bars into buy / exit intents.

A strategy is one object per symbol implementing :class:`Strategy`: it is fed every closed bar with
``on_bar(ts_event, close, volume)`` (plain floats, the analytics domain) and returns a
:class:`SignalIntent` when it wants to act, ``None`` otherwise. The pipeline turns an intent into a
:class:`~cdb_cli.engine.events.TradingSignal` with :func:`signal_event`, so pydantic objects and
``Decimal`` are only built when a signal fires; the per-bar path is float math and O(1) indicator
updates, nothing else (no logging, no allocation beyond the indicators' own).

A second strategy only has to implement :class:`Strategy`; the pipeline does not change. How to
write one, load it and the rules it must keep: :mod:`cdb_cli.engine.strategies`.

Off the hot path a strategy explains its latest bar with ``explain(close, volume)``: each of its
conditions with the value it saw, its threshold and the outcome, or that it is still warming up
(:class:`StrategyView`). The run loop asks for it on every closed bar (the strategy trace behind
``cdb explain``); a replay only when it keeps traces, so the replay's per-bar path stays as lean.

Pure: stdlib, pydantic and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

from cdb_cli.engine.config import SignalConfig
from cdb_cli.engine.events import Condition, SignalSide, TradingSignal
from cdb_cli.engine.indicators import EMA, RSI, RollingWindow

__all__ = [
    "EmaCrossStrategy",
    "SignalConfig",
    "SignalIntent",
    "Strategy",
    "StrategyView",
    "signal_event",
]

CROSS_SCALE = 1000.0
"""A cross whose |EMA(fast) - EMA(slow)| is 0.1 % of the close (or more) has full magnitude 1."""


class SignalIntent(NamedTuple):
    """What a strategy wants on this bar; light on purpose (built only when a signal fires)."""

    side: SignalSide
    strength: float
    """In [0, 1]; each strategy documents its formula."""
    indicators: dict[str, float]
    """The indicator values the decision saw, for the signal's audit trail."""


class StrategyView(NamedTuple):
    """How a strategy saw its latest bar (built off the hot path, for traces and screens)."""

    status: str
    """``evaluated``, or ``warming_up`` while an indicator is not ready."""
    bars_needed: int
    """More bars needed before the strategy can signal (0 once evaluated)."""
    conditions: tuple[Condition, ...]
    values: dict[str, float]


class Strategy(Protocol):
    """One strategy instance per symbol, fed closed bars in time order.

    Built by its class from its settings model (``cls(settings)``, see
    :mod:`cdb_cli.engine.strategies`); ``name`` names it in signals and traces, ``warmup`` is how
    many bars it needs before it can signal (it returns ``None`` for the first ``warmup`` bars).
    """

    name: str

    @property
    def warmup(self) -> int:
        """Bars fed before the first one that can give an intent."""
        ...

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        """Consume one closed bar; return an intent when the strategy wants to act."""
        ...

    def explain(self, close: float, volume: float) -> StrategyView:
        """Each condition on the latest bar fed to :meth:`on_bar` (its ``close`` and ``volume``)."""
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

    settings_model = SignalConfig
    """The settings of this rule: the flat ``CDB_EMA_FAST``… settings (``SignalConfig``)."""

    __slots__ = (
        "_cfg",
        "_ema_fast",
        "_ema_slow",
        "_last_prev",
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
        self._last_prev: float | None = None  # the latest bar's previous diff (for explain)
        # Bound once: saves two attribute lookups per indicator per bar on the hot path.
        self._up_fast = self._ema_fast.update
        self._up_slow = self._ema_slow.update
        self._up_rsi = self._rsi.update
        self._push_volume = self._volume.push
        self._push_trend = self._trend.push if self._trend is not None else None

    @property
    def config(self) -> SignalConfig:
        return self._cfg

    @property
    def warmup(self) -> int:
        """The slow EMA and a previous gap, the RSI, the volume window (the trend SMA gates buys
        only, later)."""
        cfg = self._cfg
        return max(cfg.ema_slow, cfg.rsi_period, cfg.volume_period - 1)

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
        prev = self._last_prev = self._prev_diff
        self._prev_diff = diff
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

    def _gates(
        self, close: float, volume: float, rsi: float
    ) -> tuple[bool, bool, bool | None, float | None, float | None]:
        """The buy's confirmations on a bar: (RSI ok, volume ok, trend ok or None when the
        filter is off, the volume SMA, the trend SMA). One place for both ``_buy`` and
        ``explain``, so a trace can never disagree with the signal."""
        cfg = self._cfg
        vol_sma = self._volume.mean()
        rsi_ok = rsi > cfg.rsi_threshold
        volume_ok = vol_sma is not None and volume > cfg.volume_factor * vol_sma
        if self._trend is None:
            return rsi_ok, volume_ok, None, vol_sma, None
        trend = self._trend.mean()
        return rsi_ok, volume_ok, trend is not None and close > trend, vol_sma, trend

    def _buy(
        self, close: float, volume: float, fast: float, slow: float, diff: float, rsi: float
    ) -> SignalIntent | None:
        cfg = self._cfg
        rsi_ok, volume_ok, trend_ok, vol_sma, trend = self._gates(close, volume, rsi)
        if not (rsi_ok and volume_ok) or trend_ok is False or vol_sma is None:
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

    def _bars_needed(self) -> int:
        """Bars before the first possible signal: every indicator ready and a previous gap."""
        slow = self._ema_slow.needed()
        previous = slow + 1 if slow else (1 if self._last_prev is None else 0)
        return max(1, previous, self._ema_fast.needed(), self._rsi.needed(), self._volume.needed())

    def explain(self, close: float, volume: float) -> StrategyView:
        """Each condition on the latest bar: the cross up with RSI, volume and trend for a buy,
        the cross down for an exit; or how many bars the indicators still need."""
        cfg = self._cfg
        fast, slow, rsi = self._ema_fast.value, self._ema_slow.value, self._rsi.value
        diff, prev = self._prev_diff, self._last_prev
        if fast is None or slow is None or diff is None or prev is None or rsi is None:
            return StrategyView("warming_up", self._bars_needed(), (), {})
        if not self._volume.full:
            return StrategyView("warming_up", self._bars_needed(), (), {})
        rsi_ok, volume_ok, trend_ok, vol_sma, trend = self._gates(close, volume, rsi)
        gap, was = diff / close * 100.0, prev / close * 100.0
        up, down = prev <= 0.0 < diff, diff < 0.0 <= prev
        ratio = volume / vol_sma if vol_sma else 0.0
        conditions = [
            Condition(
                name="cross_up",
                value=gap,
                threshold=0.0,
                passed=up,
                text=f"cross up: gap {gap:+.3f} % (before {was:+.3f} %)",
            ),
            Condition(
                name="rsi",
                value=rsi,
                threshold=cfg.rsi_threshold,
                passed=rsi_ok,
                text=f"RSI {rsi:.1f} {'>' if rsi_ok else '<='} {cfg.rsi_threshold:g}",
            ),
            Condition(
                name="volume",
                value=ratio,
                threshold=cfg.volume_factor,
                passed=volume_ok,
                text=f"volume {ratio:.2f}x of {cfg.volume_factor:g}x average",
            ),
        ]
        values = {"ema_fast": fast, "ema_slow": slow, "rsi": rsi, "gap_pct": gap}
        values["prev_gap_pct"] = was
        if vol_sma is not None:
            values["volume_sma"] = vol_sma
        if self._trend is not None:
            conditions.append(
                Condition(
                    name="trend",
                    value=close,
                    threshold=trend,
                    passed=trend_ok,
                    text=f"close {close:.6g} {'>' if trend_ok else '<='} SMA{cfg.trend_period} "
                    f"{trend:.6g}"
                    if trend is not None
                    else f"SMA{cfg.trend_period} not ready",
                )
            )
            if trend is not None:
                values["trend_sma"] = trend
        conditions.append(
            Condition(
                name="cross_down",
                side="exit",
                value=gap,
                threshold=0.0,
                passed=down,
                text=f"cross down: gap {gap:+.3f} % (before {was:+.3f} %)",
            )
        )
        return StrategyView("evaluated", 0, tuple(conditions), values)


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
