"""A command's settings with its ``--strategy`` and ``--set NAME=VALUE`` for the strategy.

``--set`` names a setting (``max_spread_pct``, ``ema_fast``) or a setting of the chosen strategy
(``bb_period``, also as ``strategy_bb_period``); the strategy's names are only known once it is
loaded, so they are checked here, after the settings. A name neither knows is a usage error with a
did-you-mean (``ValueError``); a bad value or a broken strategy is a ``StrategyError`` (exit 3).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["command_settings"]


def command_settings(
    env_file: Path | None, items: Iterable[str], strategy: str | None = None
) -> Settings:
    """The settings with ``--set`` items and ``--strategy`` (when given) applied. A name the
    strategy's settings model has goes to the strategy (``mean_reversion``'s ``rsi_period`` is
    its own, not the seed rule's ``CDB_RSI_PERIOD``), except for ``ema_cross``, whose settings
    are the flat ones."""
    from cdb_cli.engine.config import SignalConfig
    from cdb_cli.kernel.strategies import strategy_model
    from cdb_cli.settings import Settings
    from cdb_cli.settings_io import load_settings, split_overrides

    known, rest = split_overrides(items)
    if strategy:
        known["strategy"] = strategy.strip()
    settings = load_settings(env_file, {k: v for k, v in known.items() if k.startswith("strat")})
    model = strategy_model(settings.strategy)
    fields = set(model.model_fields)
    if model is not SignalConfig:
        rest.update({name: known.pop(name) for name in fields & set(known)})
    for name in rest:
        if name not in fields:
            names = sorted({*Settings.model_fields, *fields})
            guess = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]}?" if guess else ""
            raise ValueError(f"unknown setting {name!r}{hint}")
    if rest:
        known_params: dict[str, Any] = {"strategy_params": {**settings.strategy_params, **rest}}
        return load_settings(env_file, {**known, **known_params})
    return load_settings(env_file, known)
