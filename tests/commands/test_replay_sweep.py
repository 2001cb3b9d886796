"""``cdb replay --sweep``: ranked JSON, a table with the winner's command, that command reproducing
its row exactly, walk-forward side by side, and usage errors (exit 2) before anything runs."""

from __future__ import annotations

import csv
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import CANDLES, TRADES, require_data
from typer.testing import Result

from cdb_cli.errors import ExitCode

SWEEP = ("--sweep", "ema_fast=8..12:4", "--sweep", "volume_factor=1.2,1.5")


def _json(result: Result) -> Any:
    assert result.exit_code == ExitCode.OK, result.output
    return json.loads(result.stdout)


def _rerun(cdb: Callable[..., Result], command: str) -> dict[str, Any]:
    """Run a printed ``cdb replay ...`` command line in process, with --json."""
    args = shlex.split(command)
    assert args[0] == "cdb"
    report: dict[str, Any] = _json(cdb(*args[1:], "--json"))
    return report


def _as_row(report: dict[str, Any]) -> dict[str, Any]:
    """What a sweep row says of a run, read from ``cdb replay --json``'s report."""
    trades = report["trades"]
    return {
        "pnl": report["pnl"],
        "pnl_pct": report["pnl_pct"],
        "max_drawdown": report["max_drawdown_pct"],
        "trades": trades["closed"],
        "win_rate": round(trades["win_rate"] * 100, 4) if trades["win_rate"] is not None else None,
        "exposure": report["exposure"]["mean_pct"],
        "fees": report["fees"],
        "won": trades["won"],
        "open_trades": trades["open"],
        "fills": report["fills"],
        "bars": report["bars"],
        "final_equity": report["final_equity"],
        "starting_cash": report["starting_cash"],
    }


def _provenance(report: dict[str, Any]) -> dict[str, str]:
    return {k: report["provenance"][k] for k in ("run_id", "settings_sha256", "data_sha256")}


def _without_ratios(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("sharpe", "sortino")}


def test_a_sweep_prints_ranked_json_and_the_winner_reproduces_its_row(
    cdb: Callable[..., Result],
) -> None:
    data = str(require_data(CANDLES))

    document = _json(
        cdb(
            "replay",
            data,
            *SWEEP,
            "--cash",
            "5000",
            "--set",
            "max_spread_pct=0.2",
            "-j",
            "2",
            "--json",
        )
    )

    rows = document["rows"]
    assert len(rows) == document["configurations"] == 4
    assert [row["rank"] for row in rows] == [1, 2, 3, 4]
    assert [float(row["metrics"]["pnl"]) for row in rows] == sorted(
        (float(row["metrics"]["pnl"]) for row in rows), reverse=True
    )
    assert document["data"]["sha256"] == rows[0]["provenance"]["data_sha256"]
    for row in (rows[0], rows[-1]):
        command = row["command"]
        assert "--cash 5000 --set max_spread_pct=0.2" in command
        report = _rerun(cdb, command)
        assert _as_row(report) == _without_ratios(row["metrics"])
        assert _provenance(report) == row["provenance"]


def test_the_table_ranks_and_prints_the_winners_command(cdb: Callable[..., Result]) -> None:
    data = str(require_data(CANDLES))

    result = cdb("replay", data, *SWEEP, "--constraint", "max_drawdown<=12", "--top", "3")
    document = _json(cdb("replay", data, *SWEEP, "--constraint", "max_drawdown<=12", "--json"))

    assert result.exit_code == ExitCode.OK, result.output
    out = result.stdout
    assert "4 configurations (grid), objective pnl, constraints max_drawdown<=12" in out
    for header in ("ema_fast", "volume_factor", "PnL", "DD%", "win%", "Sharpe", "Sortino"):
        assert header in out
    assert "... 1 more rows" in out
    best = document["rows"][0]
    assert f"Best: {best['command']}" in out
    failing = [row for row in document["rows"] if not row["passes"]]
    assert failing, "the constraint should rule out some configuration"
    assert all(row["violations"] == ["max_drawdown<=12"] for row in failing)
    # never dropped: the failing ones come after every passing one
    assert [row["passes"] for row in document["rows"]] == sorted(
        (row["passes"] for row in document["rows"]), reverse=True
    )
    assert f"{len(failing)} configuration(s) break a constraint" in out


def test_walk_forward_prints_in_and_out_of_sample_side_by_side(cdb: Callable[..., Result]) -> None:
    data = str(require_data(CANDLES))
    options = (*SWEEP, "--walk-forward", "train=4320,test=2880", "--jobs", "2")

    table = cdb("replay", data, *options)
    document = _json(cdb("replay", data, *options, "--json"))

    walk = document["walk_forward"]
    assert table.exit_code == ExitCode.OK, table.output
    assert "in-sample" in table.stdout
    assert "out-of-sample" in table.stdout
    assert "Each test window starts flat with the starting cash" in table.stdout
    assert len(walk["windows"]) == 4
    assert walk["windows"][0]["train"]["bars"] == 4320
    assert walk["windows"][0]["test"]["bars"] == 2880
    assert walk["in_sample"]["windows"] == walk["out_of_sample"]["windows"] == 4
    assert walk["out_of_sample"]["bars"] == sum(w["test"]["bars"] for w in walk["windows"])
    window = walk["windows"][1]  # a training window is `cdb replay --since --until` of it
    report = _rerun(cdb, window["command"])
    assert _as_row(report) == _without_ratios(window["in_sample"])
    assert _provenance(report) == window["provenance"]["train"]


def test_csv_and_heatmap(cdb: Callable[..., Result], tmp_path: Path) -> None:
    data = str(require_data(CANDLES))
    table, heat = tmp_path / "sweep.csv", tmp_path / "heat.png"

    result = cdb("replay", data, *SWEEP, "--csv", str(table), "--heatmap", str(heat), "--json")

    document = _json(result)
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["command"] for row in rows] == [row["command"] for row in document["rows"]]
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sweep", "ema_fast=0,12"), "ema_fast=0: Invalid settings"),
        (("--sweep", "ema_fats=8,12"), "unknown setting 'ema_fats'; did you mean ema_fast?"),
        (("--sweep", "ema_fast=16..8:2"), "the range ends (8) before it starts (16)"),
        (("--sweep", "ema_fast=8,12", "--set", "ema_fast=9"), "ema_fast is given twice"),
        (("--sweep", "ema_fast=8,12", "--objective", "profit"), "'profit': one of pnl"),
        (("--sweep", "ema_fast=8,12", "--constraint", "dd<5"), "unknown metric 'dd'"),
        (("--sweep", "ema_fast=8,12", "--trials", "3", "--sampler", "grid"), "drop --trials"),
        (("--sweep", "ema_fast=8,12", "--sampler", "random"), "needs --trials N"),
        (("--sweep", "ema_fast=8,12", "--sampler", "tpe", "--trials", "2"), "'tpe': one of"),
        (("--sweep", "ema_fast=8,12", "--walk-forward", "train=30d"), "needs both train="),
        (("--sweep", "ema_fast=8,12", "--walk-forward", "train=30d,test=7d"), "hold no train"),
        (("--sweep", "ema_fast=8,12", "--heatmap", "h.png"), "exactly two --sweep settings"),
        (("--sweep", "ema_fast=8,12", "--plot", "p.png"), "--plot and --persist replay one"),
        (
            (
                "--trials",
                "5",
            ),
            "needs --sweep",
        ),
        (
            (
                "--objective",
                "sharpe",
            ),
            "needs --sweep",
        ),
        (
            (
                "--walk-forward",
                "train=3d,test=1d",
            ),
            "needs --sweep",
        ),
    ],
)
def test_usage_errors_are_exit_2_before_anything_runs(
    cdb: Callable[..., Result], args: tuple[str, ...], message: str
) -> None:
    result = cdb("replay", str(require_data(CANDLES)), *args)

    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_optuna_missing_is_one_line_and_exit_2(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # what find_spec sees when not installed

    result = cdb(
        "replay", str(require_data(CANDLES)), *SWEEP, "--sampler", "optuna", "--trials", "3"
    )

    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--sampler optuna needs optuna: pip install 'cdb-cli[sweep]'" in result.stderr


def test_random_search_with_a_seed_is_reproducible(cdb: Callable[..., Result]) -> None:
    data = str(require_data(CANDLES))
    options = ("--sweep", "ema_fast=5..15", "--sweep", "rsi_threshold=40..60:5", "--trials", "3")

    first = _json(cdb("replay", data, *options, "--seed", "11", "--json"))
    again = _json(cdb("replay", data, *options, "--seed", "11", "--json", "-j", "1"))

    assert first["sampler"] == "random"
    assert len(first["rows"]) == 3
    assert first["rows"] == again["rows"]


def test_optuna_chooses_the_trials_and_its_best_reproduces(cdb: Callable[..., Result]) -> None:
    pytest.importorskip("optuna")
    data = str(require_data(CANDLES))
    options = ("--sweep", "ema_fast=5..15", "--sweep", "volume_factor=1.2,1.5,2")

    document = _json(
        cdb("replay", data, *options, "--sampler", "optuna", "--trials", "4", "--json")
    )

    assert document["sampler"] == "optuna"
    assert 2 <= len(document["rows"]) <= 4
    best = document["rows"][0]
    assert _as_row(_rerun(cdb, best["command"])) == _without_ratios(best["metrics"])


def test_a_heatmap_without_matplotlib_says_so_before_the_sweep(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what find_spec sees when not installed

    result = cdb("replay", str(require_data(CANDLES)), *SWEEP, "--heatmap", str(tmp_path / "h.png"))

    assert result.exit_code == ExitCode.FAILURE, result.output  # as --plot without it
    assert "Plotting needs matplotlib: pip install 'cdb-cli[plot]'" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "h.png").exists()


def test_a_window_symbol_and_env_file_are_in_the_reproducing_command(
    cdb: Callable[..., Result], tmp_path: Path
) -> None:
    env = tmp_path / "sweep.env"
    env.write_text("CDB_PAPER_SEED=5\nCDB_EMA_SLOW=30\n")
    data = str(require_data(CANDLES))
    window = ("--since", "2017-11-06", "--until", "2017-11-10T12:30", "-s", "unittestbtc")

    document = _json(
        cdb("--env-file", str(env), "replay", data, *window, "--sweep", "ema_fast=8,12", "--json")
    )

    best = document["rows"][0]
    assert best["command"].startswith(f"cdb --env-file {env} replay {data} --symbol UNITTESTBTC")
    assert "--since 2017-11-06T00:00:00Z --until 2017-11-10T12:30:00Z" in best["command"]
    report = _rerun(cdb, best["command"])
    assert report["provenance"]["seed"] == 5
    assert report["period"]["start"] == "2017-11-06T00:00:00Z"
    assert _as_row(report) == _without_ratios(best["metrics"])
    assert _provenance(report) == best["provenance"]


def test_a_trades_file_sweeps_and_reproduces_but_does_not_walk_forward(
    cdb: Callable[..., Result],
) -> None:
    data = str(require_data(TRADES))
    options = ("--sweep", "ema_fast=3,5", "--interval-s", "30")

    document = _json(cdb("replay", data, *options, "--json"))
    walk = cdb("replay", data, *options, "--walk-forward", "train=10,test=5")

    best = document["rows"][0]
    assert "--interval-s 30" in best["command"]
    assert best["metrics"]["bars"] > 0
    assert _as_row(_rerun(cdb, best["command"])) == _without_ratios(best["metrics"])
    assert walk.exit_code == ExitCode.USAGE
    assert "needs a bar file" in walk.stderr
