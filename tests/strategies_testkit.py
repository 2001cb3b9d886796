"""Strategies in tests: the example user strategy shipped in the repo, the built-ins with the
settings the tests run them with, and broken strategies written to files."""

from __future__ import annotations

from pathlib import Path

from cdb_cli.kernel.strategies import StrategyFactory, strategy_factory
from cdb_cli.settings import Settings

__all__ = ["EXAMPLE", "EXAMPLE_SPEC", "STRATEGIES", "factory_for", "write_strategy"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "strategies" / "my_strategy.py"
EXAMPLE_SPEC = f"{EXAMPLE}:Breakout"

STRATEGIES: dict[str, tuple[str, dict[str, str]]] = {
    "ema_cross": ("ema_cross", {}),
    "ema_cross_trend": ("ema_cross", {"trend_filter": "true", "trend_period": "50"}),
    "mean_reversion": ("mean_reversion", {}),
    "mean_reversion_rsi_exit": ("mean_reversion", {"rsi_exit": "60"}),
    "regime_trend": ("regime", {}),
    "regime_range": (
        "regime",
        {"inner": "mean_reversion", "allow": "range", "inner_settings": '{"rsi_oversold": 40}'},
    ),
    "example_file": (EXAMPLE_SPEC, {}),
}
"""Every strategy the contract suite runs: each built-in (and variants) and the example file."""


def factory_for(case: str) -> StrategyFactory:
    spec, params = STRATEGIES[case]
    return strategy_factory(Settings(strategy=spec, strategy_params=params))


def write_strategy(folder: Path, body: str, name: str = "broken.py") -> str:
    """A strategy file ``name`` in ``folder`` with ``body``; returns its ``FILE.py`` path."""
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return str(path)
