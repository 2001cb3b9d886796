"""``--strategy`` and the strategy's ``--set`` on ``cdb replay`` and ``cdb run``: a user strategy
file replays; a broken one is one line naming it and exit 3 before anything runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, require_data
from strategies_testkit import EXAMPLE_SPEC, write_strategy
from typer.testing import Result

from cdb_cli.errors import ExitCode

BROKEN = {
    "import error": ("import no_such_module_for_cdb\n", "cannot import"),
    "missing class": ("x = 1\n", "has no class Strategy"),
    "constructor": (
        "class Strategy:\n"
        "    def __init__(self, settings):\n"
        "        raise RuntimeError('boom')\n"
        "    def on_bar(self, ts, close, volume): return None\n"
        "    def explain(self, close, volume): return None\n",
        "its constructor raised RuntimeError: boom",
    ),
    "wrong return type": (
        "class Strategy:\n"
        "    name = 'wrong'\n"
        "    warmup = 0\n"
        "    def __init__(self, settings): pass\n"
        "    def on_bar(self, ts, close, volume): return ('buy', 1.0, {})\n"
        "    def explain(self, close, volume): return None\n",
        "on_bar returned ('buy', 1.0, {}), not a SignalIntent or None",
    ),
}


def one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["replay", "run"])
def test_a_broken_strategy_is_exit_3_and_one_line(
    cdb: Callable[..., Result], tmp_path: Path, case: str, command: str
) -> None:
    body, message = BROKEN[case]
    spec = f"{write_strategy(tmp_path, body)}:Strategy"
    args = [str(require_data(CANDLES))] if command == "replay" else ["--paper", "--feed", "sim"]
    result = cdb(command, *args, "--strategy", spec)
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    line = one_error_line(result)
    assert line.startswith(f"Error: strategy '{spec}': ")
    assert message in line


def test_a_user_strategy_file_replays_with_its_settings(cdb: Callable[..., Result]) -> None:
    data = str(require_data(CANDLES))
    default = cdb("replay", data, "--json")
    mine = cdb("replay", data, "--strategy", EXAMPLE_SPEC, "--json")
    longer = cdb("replay", data, "--strategy", EXAMPLE_SPEC, "--set", "lookback=60", "--json")
    prefixed = cdb("replay", data, "--strategy", EXAMPLE_SPEC, "--set", "strategy_lookback=60")
    for result in (default, mine, longer, prefixed):
        assert result.exit_code == 0, result.output
    reports = [json.loads(r.stdout) for r in (default, mine, longer)]
    assert reports[1]["signals"]["buy"] > 0
    assert reports[1]["fills"] > 0
    assert len({json.dumps(r["signals"]) for r in reports}) == 3
    assert len({r["provenance"]["settings_sha256"] for r in reports}) == 3


def test_the_strategy_and_its_settings_from_the_environment(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(require_data(CANDLES))
    by_option = cdb("replay", data, "--strategy", EXAMPLE_SPEC, "--set", "lookback=60", "--json")
    monkeypatch.setenv("CDB_STRATEGY", EXAMPLE_SPEC)
    monkeypatch.setenv("CDB_STRATEGY_LOOKBACK", "60")
    by_env = cdb("replay", data, "--json")
    assert by_option.exit_code == by_env.exit_code == 0, by_env.output
    assert by_env.stdout == by_option.stdout
    monkeypatch.setenv("CDB_STRATEGY_LOOKBACK", "one")
    bad = cdb("replay", data)
    assert bad.exit_code == ExitCode.CONFIGURATION
    assert one_error_line(bad) == (
        f"Error: strategy '{EXAMPLE_SPEC}': lookback: Input should be a valid integer, unable to "
        "parse string as an integer (received 'one')"
    )


def test_its_settings_are_checked_against_its_model(cdb: Callable[..., Result]) -> None:
    data = str(require_data(CANDLES))
    unknown = cdb("replay", data, "--strategy", "mean_reversion", "--set", "bb_perod=3")
    assert unknown.exit_code == ExitCode.USAGE
    assert "unknown setting 'bb_perod'; did you mean bb_period?" in unknown.stderr
    bad = cdb("replay", data, "--strategy", "mean_reversion", "--set", "bb_period=1")
    assert bad.exit_code == ExitCode.CONFIGURATION
    assert "strategy 'mean_reversion': bb_period: Input should be greater than or equal to 2" in (
        one_error_line(bad)
    )
    # mean_reversion's own rsi_period, not the seed rule's CDB_RSI_PERIOD
    own = cdb("replay", data, "--strategy", "mean_reversion", "--set", "rsi_period=5", "--json")
    default = cdb("replay", data, "--strategy", "mean_reversion", "--json")
    assert own.exit_code == default.exit_code == 0, own.output
    assert json.loads(own.stdout)["signals"] != json.loads(default.stdout)["signals"]
