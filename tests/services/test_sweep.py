"""The sweep service: every configuration through the replay pipeline in forked workers, equal to
running each alone; validation before anything runs; CSV and heatmap files."""

from __future__ import annotations

import csv
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import CANDLES, require_data

from cdb_cli.engine.replay import BarSeries
from cdb_cli.engine.sweep import parse_axis, parse_constraint
from cdb_cli.services.replay import LoadedReplay, ReplayRequest, load_replay, run_replay
from cdb_cli.services.strategy import command_settings
from cdb_cli.services.sweep import (
    Reproduce,
    SweepInvalid,
    SweepSpec,
    plot_sweep_heatmap,
    row_metrics,
    run_sweep,
    write_csv,
)

SYMBOL = "UNITTESTBTC"


@pytest.fixture(scope="module")
def request_() -> ReplayRequest:
    return ReplayRequest(data=require_data(CANDLES), symbol=SYMBOL, trace=False)


@pytest.fixture(scope="module")
def loaded(request_: ReplayRequest) -> LoadedReplay:
    return load_replay(request_)


def _reproduce(data: Path) -> Reproduce:
    return Reproduce(("cdb", "replay", str(data)))


def _spec(*axes: str, **options: Any) -> SweepSpec:
    return SweepSpec(axes=tuple(parse_axis(axis) for axis in axes), **options)


def _alone(params: dict[str, str], request: ReplayRequest, **options: Any) -> dict[str, Any]:
    """One configuration through plain ``run_replay``: the metrics and provenance of its row."""
    settings = command_settings(
        None,
        [*options.get("base", []), *(f"{k}={v}" for k, v in params.items())],
        options.get("strategy"),
    )
    result = run_replay(settings, request)
    metrics, _ = row_metrics(result)
    provenance = result.report["provenance"]
    return {
        "metrics": metrics,
        "provenance": {
            key: provenance[key] for key in ("run_id", "settings_sha256", "data_sha256")
        },
    }


def test_sweep_rows_equal_each_configuration_run_alone(
    request_: ReplayRequest, loaded: LoadedReplay
) -> None:
    spec = _spec("ema_fast=6..12:3", "risk_per_trade_pct=1,3", jobs=2)

    document = run_sweep(spec, request_, loaded, _reproduce(request_.data))

    rows = document["rows"]
    assert document["configurations"] == len(rows) == 6
    assert len({row["provenance"]["run_id"] for row in rows}) == 6
    assert sum(row["metrics"]["trades"] for row in rows) > 0
    for row in (rows[0], rows[3], rows[-1]):  # a sample through plain run_replay
        assert {k: row[k] for k in ("metrics", "provenance")} == _alone(row["params"], request_)
    pnls = [float(row["metrics"]["pnl"]) for row in rows]
    assert pnls == sorted(pnls, reverse=True)  # ranked by the default objective, pnl


def test_one_job_and_two_give_the_same_rows(request_: ReplayRequest, loaded: LoadedReplay) -> None:
    spec = _spec("volume_factor=1.2,2", "rsi_threshold=45,55", strategy=None)

    one = run_sweep(replace(spec, jobs=1), request_, loaded, _reproduce(request_.data))
    two = run_sweep(replace(spec, jobs=2), request_, loaded, _reproduce(request_.data))

    assert one == two
    assert len(one["rows"]) == 4


def test_a_strategy_of_its_own_with_its_settings_and_a_base_set(
    request_: ReplayRequest, loaded: LoadedReplay
) -> None:
    spec = _spec(
        "bb_period=10,20", strategy="mean_reversion", base_items=("circuit_breaker_pct=50",), jobs=2
    )

    rows = run_sweep(spec, request_, loaded, _reproduce(request_.data))["rows"]

    assert len(rows) == 2
    assert rows[0]["metrics"] != rows[1]["metrics"]
    for row in rows:
        alone = _alone(
            row["params"], request_, strategy="mean_reversion", base=["circuit_breaker_pct=50"]
        )
        assert row["metrics"] == alone["metrics"]
        assert row["provenance"] == alone["provenance"]


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        ("ema_fast=0,12", "ema_fast=0: Invalid settings: 1 problem(s)"),
        ("ema_fast=12,40", "ema_fast=40: Invalid settings"),  # fast must stay below slow (26)
        ("ema_fats=8,12", "unknown setting 'ema_fats'; did you mean ema_fast?"),
        ("bb_period=1,20", "bb_period=1: unknown setting 'bb_period'"),  # not ema_cross's
    ],
)
def test_a_bad_combination_stops_the_sweep_before_any_replay(
    request_: ReplayRequest, axis: str, message: str
) -> None:
    empty = LoadedReplay(BarSeries(SYMBOL, 60_000_000_000), "sha")  # nothing could run anyway

    with pytest.raises(SweepInvalid) as raised:
        run_sweep(_spec(axis, jobs=1), request_, empty, _reproduce(request_.data))

    assert message in raised.value.message
    assert "\n" not in raised.value.message


def test_a_bad_strategy_value_names_the_combination(
    request_: ReplayRequest, loaded: LoadedReplay
) -> None:
    spec = _spec("bb_period=1,20", strategy="mean_reversion", jobs=2)

    with pytest.raises(SweepInvalid, match=r"^bb_period=1: strategy 'mean_reversion': bb_period"):
        run_sweep(spec, request_, loaded, _reproduce(request_.data))


def test_random_search_is_reproducible(request_: ReplayRequest, loaded: LoadedReplay) -> None:
    spec = _spec("ema_fast=5..15", "volume_factor=1.2,1.5,2", sampler="random", trials=3, seed=7)

    first = run_sweep(spec, request_, loaded, _reproduce(request_.data))
    again = run_sweep(replace(spec, jobs=1), request_, loaded, _reproduce(request_.data))

    assert first["rows"] == again["rows"]
    assert first["seed"] == 7
    assert len(first["rows"]) == 3


def test_optuna_runs_its_trials_seeded(request_: ReplayRequest, loaded: LoadedReplay) -> None:
    pytest.importorskip("optuna")
    spec = _spec(
        "ema_fast=5..15", "volume_factor=1.2,1.5,2", sampler="optuna", trials=4, seed=1, jobs=2
    )

    first = run_sweep(spec, request_, loaded, _reproduce(request_.data))
    again = run_sweep(spec, request_, loaded, _reproduce(request_.data))

    params = [tuple(row["params"].values()) for row in first["rows"]]
    assert 2 <= len(params) <= 4  # a combination asked for twice is one row
    assert len(set(params)) == len(params) == first["configurations"]
    assert first["rows"] == again["rows"]
    best = first["rows"][0]
    assert best["metrics"] == _alone(best["params"], request_)["metrics"]


def test_csv_and_heatmap_files(
    request_: ReplayRequest, loaded: LoadedReplay, tmp_path: Path
) -> None:
    spec = _spec(
        "ema_fast=8,12", "volume_factor=1.2,1.5", constraints=(parse_constraint("trades>=50"),)
    )
    document = run_sweep(spec, request_, loaded, _reproduce(request_.data))

    write_csv(document, tmp_path / "out" / "sweep.csv")
    plot_sweep_heatmap(document, tmp_path / "heat.png")

    with (tmp_path / "out" / "sweep.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[0]["pnl"] == document["rows"][0]["metrics"]["pnl"]  # every digit kept
    assert rows[0]["command"] == document["rows"][0]["command"]
    failing = [row for row in rows if row["passes"] == "False"]
    assert all(row["violations"] == "trades>=50" for row in failing)
    assert (tmp_path / "heat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_counts_every_replay_once(request_: ReplayRequest, loaded: LoadedReplay) -> None:
    calls: list[tuple[int, int]] = []
    spec = _spec("ema_fast=8,10,12", jobs=2)

    run_sweep(
        spec, request_, loaded, _reproduce(request_.data), progress=lambda *c: calls.append(c)
    )

    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_optuna_missing_is_a_usage_error(
    request_: ReplayRequest, loaded: LoadedReplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` fails as when missing
    spec = _spec("ema_fast=8,12", sampler="optuna", trials=2)

    with pytest.raises(SweepInvalid, match=r"needs optuna: pip install 'cdb-cli\[sweep\]'"):
        run_sweep(spec, request_, loaded, _reproduce(request_.data))


def test_a_finished_run_is_freed_at_once(request_: ReplayRequest, loaded: LoadedReplay) -> None:
    """The replay loop freezes what it made (gc.freeze), so the cycles of a finished run are never
    collected; a sweep of a thousand runs in one worker must free each one itself."""
    import gc
    import weakref

    from cdb_cli.services.replay import run_loaded
    from cdb_cli.services.sweep import release_run
    from cdb_cli.settings import Settings

    result = run_loaded(Settings(), request_, loaded)
    pipeline = weakref.ref(result.pipeline)
    recorder = weakref.ref(result.recorder)
    assert gc.get_freeze_count() > 0  # why the collector cannot help here

    release_run(result)
    del result

    assert pipeline() is None
    assert recorder() is None
