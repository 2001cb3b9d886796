"""Writing a strategy: the interface, what a strategy may use, and the rules it keeps.

A strategy is a class. cdb builds one instance per symbol from the class's settings model and
feeds it that symbol's closed bars in time order, in replay, paper, live and the ``signals``
component alike (the kernel's strategy factory; ``CDB_STRATEGY`` / ``--strategy`` choose it)::

    class MyStrategy:
        name = "my_strategy"              # names it in signals and traces
        settings_model = MySettings       # a pydantic model (StrategySettings: frozen, no extras)

        def __init__(self, settings: MySettings) -> None: ...

        @property
        def warmup(self) -> int: ...      # bars before it can signal; None for the first ones

        def on_bar(self, ts_event: int, close: float, volume: float) -> SignalIntent | None: ...
            # every closed bar (ts_event: its close, ns); return buy(...) / exit_(...) or None

        def explain(self, close: float, volume: float) -> StrategyView: ...
            # off the hot path: the conditions of the latest bar fed to on_bar (cdb explain)

The rules (``tests/engine/strategies/test_contract.py`` checks every built-in and the example
``examples/strategies/my_strategy.py`` against them):

- **deterministic**: the same bars give the same intents; no clock, no randomness, no I/O;
- **warm-up respected**: ``None`` for the first ``warmup`` bars;
- **valid intents**: a :class:`SignalIntent` (built with :func:`buy` / :func:`exit_`) with a
  strength in [0, 1] and finite float indicators, or ``None``;
- **explain agrees with on_bar**: on a bar that gave a buy, every ``buy`` condition passed; on
  one that gave an exit, every ``exit`` condition passed;
- **one instance per symbol**: keep state on the instance, never on the class or module.

``on_bar`` runs on every bar: keep it to float math and O(1) indicator updates (the indicators
below). An exception in it is caught by the pipeline, logged with the bar and counted; after
``CDB_STRATEGY_MAX_ERRORS`` the symbol's strategy is disabled (risk's limits keep running).

Pure: stdlib, pydantic and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from cdb_cli.engine.events import Condition, SignalSide
from cdb_cli.engine.indicators import EMA, RSI, SMA, RollingWindow
from cdb_cli.engine.signals import EmaCrossStrategy, SignalIntent, Strategy, StrategyView

__all__ = [
    "EMA",
    "RSI",
    "SMA",
    "Condition",
    "EmaCrossStrategy",
    "RollingWindow",
    "SignalIntent",
    "SignalSide",
    "Strategy",
    "StrategySettings",
    "StrategyView",
    "buy",
    "check_intent",
    "clip01",
    "exit_",
    "warming_up",
]


class StrategySettings(BaseModel):
    """Base of a strategy's settings model: frozen, unknown names refused. Its fields are set
    as ``CDB_STRATEGY_<NAME>`` or ``--set NAME=VALUE`` and validated here."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def clip01(x: float) -> float:
    """``x`` clipped to [0, 1] (a strength)."""
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def buy(strength: float, indicators: Mapping[str, float]) -> SignalIntent:
    """A buy intent; ``strength`` in [0, 1], ``indicators`` what the decision saw."""
    return SignalIntent(SignalSide.BUY, strength, dict(indicators))


def exit_(strength: float, indicators: Mapping[str, float]) -> SignalIntent:
    """An exit intent (sell what is held); ``strength`` in [0, 1]."""
    return SignalIntent(SignalSide.EXIT, strength, dict(indicators))


def warming_up(bars_needed: int) -> StrategyView:
    """The view of a strategy whose indicators are not ready: ``bars_needed`` more bars."""
    return StrategyView("warming_up", max(1, bars_needed), (), {})


_NUMBER = (float, int)


def check_intent(intent: object) -> None:
    """Raise ``TypeError`` / ``ValueError`` (one line) unless ``intent`` is a valid
    :class:`SignalIntent`: a side, a strength in [0, 1], finite float indicators."""
    if type(intent) is not SignalIntent:
        raise TypeError(f"on_bar returned {_short(intent)}, not a SignalIntent or None")
    side, strength, indicators = intent
    if not isinstance(side, SignalSide):
        raise TypeError(f"intent side {_short(side)} is not a SignalSide")
    if not isinstance(strength, _NUMBER) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"intent strength {_short(strength)} is not in [0, 1]")
    if not isinstance(indicators, dict):
        raise TypeError(f"intent indicators {_short(indicators)} are not finite floats by name")
    isfinite = math.isfinite
    for name, value in indicators.items():  # a loop, not all(...): once per intent, measured
        if not (isinstance(name, str) and isinstance(value, _NUMBER) and isfinite(value)):
            raise TypeError(f"intent indicators {_short(indicators)} are not finite floats by name")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
