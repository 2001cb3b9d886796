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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol, runtime_checkable

from cdb_cli.engine.config import SignalConfig
from cdb_cli.engine.events import Condition, SignalSide, TradingSignal
from cdb_cli.engine.indicators import EMA, RSI, RollingWindow, SeriesCache, window_mean

__all__ = [
    "BarColumns",
    "BatchStrategy",
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


@dataclass(frozen=True, slots=True)
class BarColumns:
    """Closed bars of one symbol as columns, for :meth:`BatchStrategy.on_bars` (a replay)."""

    ts: Sequence[int]
    """Each bar's close time (ns): the ``ts_event`` :meth:`Strategy.on_bar` would be given."""
    close: Sequence[float]
    volume: Sequence[float]
    cache: SeriesCache | None = field(default=None, compare=False)
    """Indicator values over these very columns, shared by the strategies fed them from the
    start (a sweep's configurations: each distinct period computed once)."""


@runtime_checkable
class BatchStrategy(Strategy, Protocol):
    """A strategy that can also take many bars in one call (a replay's fast path).

    ``on_bars(columns)`` must give exactly the intents ``on_bar`` would give bar by bar, as
    (index in the columns, intent), and leave the strategy as ``on_bar`` would; the built-in
    rule implements it. The pipeline uses it in a replay that keeps no traces; live, paper and
    traced replays call ``on_bar``.
    """

    def on_bars(self, bars: BarColumns) -> list[tuple[int, SignalIntent]]:
        """Consume the bars in order; each intent with the index of its bar."""
        ...


def _window(before: list[float], values: Sequence[float], i: int, period: int) -> Sequence[float]:
    """The last ``period`` values up to ``values[i]``, reaching into ``before`` (the window's
    values ahead of ``values``, oldest first) when ``i`` is early."""
    start = i + 1 - period
    if start >= 0:
        return values[start : i + 1]
    return before[len(before) + start :] + list(values[: i + 1])


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
        prev = self._last_prev = self._prev_diff
        self._prev_diff = fast - slow
        return self._decide(close, volume, fast, slow, prev, rsi, self._volume.full, self._means)

    def on_bars(self, bars: BarColumns) -> list[tuple[int, SignalIntent]]:
        """:meth:`on_bar` over many bars at once (:class:`BatchStrategy`): the indicators run
        over the columns in one pass each (shared through ``bars.cache``), and the rule is
        asked only on the bars where the EMA gap changes sign, which every signal needs."""
        import numpy as np

        closes, volumes, cache = bars.close, bars.volume, bars.cache
        n = len(closes)
        if n == 0:
            return []
        prev_diff = self._prev_diff
        volume_wait = self._volume.needed()  # the window is full from this bar index - 1 on
        volumes_before = self._volume.ordered()
        trend_before = self._trend.ordered() if self._trend is not None else []
        fast = self._ema_fast.update_many(closes, cache)
        slow = self._ema_slow.update_many(closes, cache)
        rsi = self._rsi.update_many(closes, cache)
        self._volume.push_many(volumes)
        if self._trend is not None:
            self._trend.push_many(closes)
        diff = np.frombuffer(fast) - np.frombuffer(slow)  # NaN until both EMAs are ready
        prev = np.empty(n)
        prev[0] = math.nan if prev_diff is None else prev_diff
        prev[1:] = diff[:-1]
        with np.errstate(invalid="ignore"):
            turns = np.flatnonzero((np.sign(prev) != np.sign(diff)) & ~np.isnan(diff))
        intents: list[tuple[int, SignalIntent]] = []
        cfg = self._cfg
        for i in turns.tolist():
            before = float(prev[i])
            rsi_i = rsi[i]

            def means(i: int = i) -> tuple[float | None, float | None]:
                vol_sma = window_mean(
                    _window(volumes_before, volumes, i, cfg.volume_period), cfg.volume_period
                )
                if self._trend is None:
                    return vol_sma, None
                period = cfg.trend_period
                full = len(trend_before) + i + 1 >= period
                trend = window_mean(_window(trend_before, closes, i, period), period)
                return vol_sma, trend if full else None

            intent = self._decide(
                closes[i],
                volumes[i],
                fast[i],
                slow[i],
                None if math.isnan(before) else before,
                None if math.isnan(rsi_i) else rsi_i,
                i + 1 >= volume_wait,
                means,
            )
            if intent is not None:
                intents.append((i, intent))
        last = float(diff[-1])
        if not math.isnan(last):  # as on_bar leaves them after the last bar
            self._prev_diff = last
            before = float(prev[-1])
            self._last_prev = None if math.isnan(before) else before
        return intents

    def _means(self) -> tuple[float | None, float | None]:
        """The volume SMA and the trend SMA (None when off or not ready) of the latest bar."""
        return self._volume.mean(), self._trend.mean() if self._trend is not None else None

    def _decide(
        self,
        close: float,
        volume: float,
        fast: float,
        slow: float,
        prev: float | None,
        rsi: float | None,
        volume_full: bool,
        means: Callable[[], tuple[float | None, float | None]],
    ) -> SignalIntent | None:
        """The rule on one bar whose EMAs are ready (``prev``: the gap on the bar before;
        ``means``: the bar's volume and trend SMAs, read only for a cross up)."""
        if prev is None or rsi is None:
            return None
        diff = fast - slow
        if prev <= 0.0 < diff:
            if not volume_full:
                return None
            vol_sma, trend = means()
            return self._buy(close, volume, fast, slow, diff, rsi, vol_sma, trend)
        if diff < 0.0 <= prev:
            if not volume_full:
                return None
            return SignalIntent(
                SignalSide.EXIT,
                _clip01(abs(diff) / close * CROSS_SCALE),
                {"close": close, "ema_fast": fast, "ema_slow": slow, "rsi": rsi},
            )
        return None

    def _gates(
        self, close: float, volume: float, rsi: float, vol_sma: float | None, trend: float | None
    ) -> tuple[bool, bool, bool | None]:
        """The buy's confirmations on a bar: (RSI ok, volume ok, trend ok or None when the
        filter is off). One place for both ``_buy`` and ``explain``, so a trace can never
        disagree with the signal."""
        cfg = self._cfg
        rsi_ok = rsi > cfg.rsi_threshold
        volume_ok = vol_sma is not None and volume > cfg.volume_factor * vol_sma
        if self._trend is None:
            return rsi_ok, volume_ok, None
        return rsi_ok, volume_ok, trend is not None and close > trend

    def _buy(
        self,
        close: float,
        volume: float,
        fast: float,
        slow: float,
        diff: float,
        rsi: float,
        vol_sma: float | None,
        trend: float | None,
    ) -> SignalIntent | None:
        cfg = self._cfg
        rsi_ok, volume_ok, trend_ok = self._gates(close, volume, rsi, vol_sma, trend)
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
        vol_sma, trend = self._means()
        rsi_ok, volume_ok, trend_ok = self._gates(close, volume, rsi, vol_sma, trend)
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
