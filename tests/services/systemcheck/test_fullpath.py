"""The full-path check: the configured pipeline trades once in memory, or names the broken step."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cdb_cli.services.systemcheck.fullpath import PathBroken, run_full_path
from cdb_cli.settings import Settings


def _settings(**values: Any) -> Settings:
    return Settings(database_url="sqlite://", **values)


def test_full_path_default_settings_trade_and_return_flat() -> None:
    result = run_full_path(_settings())
    assert result.verdict == "reduced"  # 2 % risk / 5 % move = 40 % of equity, capped at 30 %
    assert result.quote_amount == Decimal("3000")
    assert result.fills == 2
    assert result.quantity > 0
    assert "signal → reduced (6 rules) → order → fill → exit → flat" in result.summary()


def test_full_path_is_deterministic() -> None:
    first, second = run_full_path(_settings()), run_full_path(_settings())
    assert (first.quantity, first.price) == (second.quantity, second.price)


@pytest.mark.parametrize(
    "values",
    [
        {"trend_filter": True, "trend_period": 300},
        {"paper_latency_ms": 60_000},
        {"paper_partial_fill_pct": "10"},
        {"rsi_threshold": 95.0, "volume_factor": 5.0, "volume_period": 6},
        {"ema_fast": 3, "ema_slow": 50, "rsi_period": 2},
        {"max_spread_pct": "0.01", "assumed_spread_pct": "5"},  # a quote, not the assumed spread
        {"symbols": "ETHBTC", "starting_cash": "1", "min_position_quote": "0.01"},
    ],
)
def test_full_path_follows_the_configured_strategy_and_venue(values: dict[str, Any]) -> None:
    result = run_full_path(_settings(**values))
    assert result.verdict in {"approved", "reduced"}
    assert result.fills >= 2


def test_full_path_runs_the_seed_rule_whatever_the_configured_strategy() -> None:
    # its synthetic market is made for the seed's rule; the configured strategy has its own probe
    chosen = _settings(strategy="mean_reversion", strategy_params={"bb_period": "30"})
    result = run_full_path(chosen)
    assert result.fills == 2
    assert (result.quantity, result.price) == (
        run_full_path(_settings()).quantity,
        run_full_path(_settings()).price,
    )


def test_full_path_names_the_risk_rule_that_blocks_every_entry() -> None:
    with pytest.raises(PathBroken) as caught:
        run_full_path(_settings(min_position_quote="5000"))  # 30 % of 10 000 never reaches it
    assert caught.value.step == "decision"
    assert "position_size_min" in caught.value.message
    assert "cdb risk explain" in caught.value.message


def test_full_path_says_when_the_strategy_can_never_buy() -> None:
    with pytest.raises(PathBroken) as caught:
        run_full_path(_settings(volume_period=2, volume_factor=2.0))
    assert caught.value.step == "signal"
    assert "CDB_VOLUME_FACTOR" in caught.value.message
