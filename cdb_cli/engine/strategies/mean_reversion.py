"""``mean_reversion``: buy a close stretched below its Bollinger band with an oversold RSI, exit
when the close is back above the band's middle.

Pure: stdlib, pydantic and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from cdb_cli.engine.strategies import (
    RSI,
    Condition,
    RollingWindow,
    SignalIntent,
    StrategySettings,
    StrategyView,
    buy,
    clip01,
    exit_,
    warming_up,
)

__all__ = ["MeanReversionSettings", "MeanReversionStrategy"]


class MeanReversionSettings(StrategySettings):
    """Settings of :class:`MeanReversionStrategy` (``CDB_STRATEGY_BB_PERIOD``…)."""

    bb_period: int = Field(default=20, ge=2, description="Bars of the Bollinger band's SMA.")
    bb_k: float = Field(default=2.0, gt=0.0, le=10.0, description="Band width in deviations.")
    rsi_period: int = Field(default=14, ge=1, description="Period of the Wilder RSI.")
    rsi_oversold: float = Field(
        default=30.0, gt=0.0, lt=100.0, description="A buy needs RSI below this."
    )
    rsi_exit: float = Field(
        default=100.0, gt=0.0, le=100.0, description="Also exit when RSI rises above this."
    )

    @model_validator(mode="after")
    def _ordered(self) -> MeanReversionSettings:
        if self.rsi_exit <= self.rsi_oversold:
            raise ValueError(
                f"rsi_exit ({self.rsi_exit}) must be above rsi_oversold ({self.rsi_oversold})"
            )
        return self


class MeanReversionStrategy:
    """Bollinger band (SMA ± ``bb_k`` population deviations of the last ``bb_period`` closes,
    the current one included) and RSI:

    - **buy** when ``close < lower`` and ``RSI < rsi_oversold``, on the first bar of such a run
      (not on the bar before too): one buy per stretch below the band;
    - **exit** when the close crosses above the middle (``prev close <= prev middle`` and
      ``close > middle``), or RSI crosses above ``rsi_exit`` (off at 100).

    Strength: buy, the mean of how far below the band (in deviations, clipped to [0, 1]) and
    ``(rsi_oversold - RSI) / rsi_oversold``; exit, ``(close - middle) / (k * deviation)`` clipped.
    Warm-up: ``max(bb_period, rsi_period)`` bars.
    """

    name = "mean_reversion"
    settings_model = MeanReversionSettings

    __slots__ = ("_cfg", "_closes", "_last", "_prev", "_rsi")

    def __init__(self, settings: MeanReversionSettings | None = None) -> None:
        cfg = settings if settings is not None else MeanReversionSettings()
        self._cfg = cfg
        self._closes = RollingWindow(cfg.bb_period)
        self._rsi = RSI(cfg.rsi_period)
        # the latest bar: (close, middle, rsi, buy condition)
        self._prev: tuple[float, float, float, bool] | None = None
        # the latest evaluated bar, for explain: close, middle, lower, deviation, rsi, stretched
        # the bar before, exit condition
        self._last: tuple[float, float, float, float, float, bool, bool] | None = None

    @property
    def warmup(self) -> int:
        return max(self._cfg.bb_period, self._cfg.rsi_period)

    def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None:
        cfg = self._cfg
        self._closes.push(close)
        rsi = self._rsi.update(close)
        middle = self._closes.mean()
        if middle is None or rsi is None:
            return None
        deviation = self._closes.stdev() or 0.0
        lower = middle - cfg.bb_k * deviation
        stretched = close < lower and rsi < cfg.rsi_oversold
        prev = self._prev
        self._prev = (close, middle, rsi, stretched)
        if prev is None:
            return None
        crossed = prev[0] <= prev[1] and close > middle
        rsi_high = cfg.rsi_exit < 100.0 and prev[2] <= cfg.rsi_exit < rsi
        self._last = (close, middle, lower, deviation, rsi, prev[3], crossed or rsi_high)
        values = {"close": close, "bb_middle": middle, "bb_lower": lower, "rsi": rsi}
        if stretched and not prev[3]:
            depth = (lower - close) / deviation if deviation else 1.0
            margin = (cfg.rsi_oversold - rsi) / cfg.rsi_oversold
            return buy((clip01(depth) + clip01(margin)) / 2.0, values)
        if crossed or rsi_high:
            width = cfg.bb_k * deviation
            return exit_(clip01((close - middle) / width) if width else 1.0, values)
        return None

    def explain(self, close: float, volume: float) -> StrategyView:
        """The buy's three conditions (below the band, RSI oversold, not so on the bar
        before) and the exit's one, as :meth:`on_bar` judged them on the latest bar."""
        cfg = self._cfg
        last = self._last
        if last is None:
            return warming_up(max(self._closes.needed(), self._rsi.needed(), 1))
        close, middle, lower, deviation, rsi, before, exiting = last
        below = close < lower
        oversold = rsi < cfg.rsi_oversold
        conditions = (
            Condition(
                name="below_band",
                value=close,
                threshold=lower,
                passed=below,
                text=f"close {close:.6g} {'<' if below else '>='} lower band {lower:.6g}",
            ),
            Condition(
                name="rsi_oversold",
                value=rsi,
                threshold=cfg.rsi_oversold,
                passed=oversold,
                text=f"RSI {rsi:.1f} {'<' if oversold else '>='} {cfg.rsi_oversold:g}",
            ),
            Condition(
                name="fresh",
                passed=not before,
                text="first bar of the stretch" if not before else "stretched the bar before",
            ),
            Condition(
                name="back_to_middle",
                side="exit",
                value=close,
                threshold=middle,
                passed=exiting,
                text=f"close {close:.6g} vs middle {middle:.6g}, RSI {rsi:.1f} "
                f"(exit above {cfg.rsi_exit:g})",
            ),
        )
        values = {"bb_middle": middle, "bb_lower": lower, "bb_deviation": deviation, "rsi": rsi}
        return StrategyView("evaluated", 0, conditions, values)
