"""Choosing the strategy (cdb_cli.kernel.strategies): built-ins, a file, a module; its settings
from CDB_STRATEGY_* and overrides; every way a strategy can be broken is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from strategies_testkit import EXAMPLE_SPEC, write_strategy

from cdb_cli.engine.config import SignalConfig
from cdb_cli.engine.signals import EmaCrossStrategy
from cdb_cli.engine.strategies.mean_reversion import MeanReversionStrategy
from cdb_cli.kernel import strategy_factory
from cdb_cli.kernel.strategies import BUILTINS, StrategyError, strategy_fields
from cdb_cli.settings import Settings
from cdb_cli.settings_io import load_settings, settings_env

GOOD = """
from cdb_cli.engine.strategies import StrategySettings, SignalIntent, buy, warming_up
class Settings_(StrategySettings):
    level: float = 1.0
class Good:
    name = "good"
    settings_model = Settings_
    warmup = 1
    def __init__(self, settings):
        self.settings = settings
    def on_bar(self, ts_event, close, volume):
        return None
    def explain(self, close, volume):
        return warming_up(1)
"""

BROKEN = {
    "import_error": ("import no_such_module_for_cdb\n", "Good", "cannot import"),
    "syntax_error": ("def broken(:\n", "Good", "cannot import"),
    "missing_class": (GOOD, "Missing", "has no class Missing"),
    "constructor": (
        GOOD.replace("self.settings = settings", "raise RuntimeError('no API key')"),
        "Good",
        "its constructor raised RuntimeError: no API key",
    ),
    "wrong_return": (
        GOOD.replace("return None", "return 'buy'"),
        "Good",
        "probe bar 0: TypeError: on_bar returned 'buy', not a SignalIntent or None",
    ),
    "strength": (
        GOOD.replace("return None", "return buy(1.5, {})"),
        "Good",
        "intent strength 1.5 is not in [0, 1]",
    ),
    "raises_on_a_bar": (
        GOOD.replace("return None", "return 1 / 0"),
        "Good",
        "probe bar 0: ZeroDivisionError: division by zero",
    ),
    "explain": (
        GOOD.replace("return warming_up(1)", "return {}"),
        "Good",
        "explain returned dict",
    ),
    "no_explain": (GOOD.replace("def explain", "def explained"), "Good", "has no explain method"),
    "warmup": (GOOD.replace("warmup = 1", "warmup = 'a while'"), "Good", "warmup is 'a while'"),
    "exits_at_import": ("raise SystemExit(2)\n", "Good", "cannot import"),
}


def test_the_default_is_the_seed_rule_with_the_flat_settings() -> None:
    factory = strategy_factory(Settings(ema_fast=5))
    strategy = factory()
    assert isinstance(strategy, EmaCrossStrategy)
    assert strategy.config == SignalConfig(ema_fast=5)
    assert factory() is not strategy  # one instance per symbol
    # its own settings win over the flat ones
    assert factory.settings == SignalConfig(ema_fast=5)
    overridden = strategy_factory(Settings(ema_fast=5, strategy_params={"ema_fast": "7"}))
    assert overridden.settings == SignalConfig(ema_fast=7)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_built_in_loads_by_name(name: str) -> None:
    strategy = strategy_factory(Settings(strategy=name))()
    assert strategy.name == name
    assert strategy.warmup > 0


def test_a_file_and_a_module_load(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, GOOD, "good.py")
    factory = strategy_factory(Settings(strategy=f"{path}:Good", strategy_params={"level": "2"}))
    assert factory().name == "good"
    assert factory.settings.level == 2.0  # type: ignore[attr-defined]
    assert type(factory()) is type(strategy_factory(Settings(strategy=f"{path}:Good"))())
    module = "cdb_cli.engine.strategies.mean_reversion:MeanReversionStrategy"
    assert isinstance(strategy_factory(Settings(strategy=module))(), MeanReversionStrategy)
    assert strategy_fields(EXAMPLE_SPEC) == ["lookback", "exit_lookback", "volume_factor"]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_strategy_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    body, cls, message = BROKEN[case]
    spec = f"{write_strategy(tmp_path, body)}:{cls}"
    with pytest.raises(StrategyError) as raised:
        strategy_factory(Settings(strategy=spec))
    text = str(raised.value)
    assert text.startswith(f"strategy {spec!r}: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        ("nope", {}, "not a built-in (ema_cross, mean_reversion, regime)"),
        ("missing/file.py:X", {}, "no file missing/file.py"),
        ("no_such_package_xyz:X", {}, "cannot import no_such_package_xyz: ModuleNotFoundError"),
        ("cdb_cli.engine.events:Bar", {}, "Bar has no on_bar or explain method"),
        ("mean_reversion", {"bb_period": "x"}, "bb_period: Input should be a valid integer"),
        ("mean_reversion", {"bb_perod": "3"}, "unknown setting 'bb_perod'; valid: bb_period"),
        ("mean_reversion", {"rsi_exit": "20"}, "rsi_exit (20.0) must be above rsi_oversold"),
        ("regime", {"inner_settings": "{"}, "inner_settings: not a JSON object"),
        ("regime", {"inner_settings": '{"ema_fast": 30}'}, "ema_fast (30) must be below"),
    ],
)
def test_bad_specs_and_settings_are_one_line(
    spec: str, params: dict[str, str], message: str
) -> None:
    with pytest.raises(StrategyError, match=r"^strategy ") as raised:
        strategy_factory(Settings(strategy=spec, strategy_params=params))
    assert message in str(raised.value)


def test_its_settings_come_from_cdb_strategy_variables_and_go_to_a_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CDB_STRATEGY=mean_reversion\nCDB_STRATEGY_BB_PERIOD=30\n")
    env_file.chmod(0o600)
    monkeypatch.setenv("CDB_STRATEGY_BB_K", "2.5")
    monkeypatch.setenv("CDB_STRATEGY_MAX_ERRORS", "4")  # a setting of its own, not the strategy's
    settings = load_settings(env_file, {"strategy_params": {"rsi_period": "9"}})
    assert settings.strategy == "mean_reversion"
    assert settings.strategy_max_errors == 4
    assert settings.strategy_params == {"bb_period": "30", "bb_k": "2.5", "rsi_period": "9"}
    factory = strategy_factory(settings)
    assert factory.settings.model_dump() == {
        "bb_period": 30,
        "bb_k": 2.5,
        "rsi_period": 9,
        "rsi_oversold": 30.0,
        "rsi_exit": 100.0,
    }
    child = settings_env(settings)
    assert child["CDB_STRATEGY_BB_PERIOD"] == "30"
    assert child["CDB_STRATEGY_RSI_PERIOD"] == "9"
    assert "CDB_STRATEGY_PARAMS" not in child
    monkeypatch.delenv("CDB_STRATEGY_BB_K")
    monkeypatch.delenv("CDB_STRATEGY_MAX_ERRORS")
    for name, value in child.items():
        monkeypatch.setenv(name, value)
    assert load_settings(None) == settings
