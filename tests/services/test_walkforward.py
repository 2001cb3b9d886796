"""Walk-forward: each test window traded with the winner of the training window before it; the
training windows are exactly ``cdb replay --since --until`` of them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import CANDLES, require_data

from cdb_cli.engine.sweep import parse_axis, parse_walk_forward
from cdb_cli.services.replay import LoadedReplay, ReplayRequest, load_replay, run_replay
from cdb_cli.services.strategy import command_settings
from cdb_cli.services.sweep import Reproduce, SweepInvalid, SweepSpec, row_metrics
from cdb_cli.services.walkforward import run_walk_forward


@pytest.fixture(scope="module")
def request_() -> ReplayRequest:
    return ReplayRequest(data=require_data(CANDLES), symbol="UNITTESTBTC", trace=False)


@pytest.fixture(scope="module")
def loaded(request_: ReplayRequest) -> LoadedReplay:
    return load_replay(request_)


def _reproduce(data: Path) -> Reproduce:
    return Reproduce(("cdb", "replay", str(data)))


def _spec(*axes: str, **options: Any) -> SweepSpec:
    return SweepSpec(axes=tuple(parse_axis(axis) for axis in axes), **options)


def _alone(params: dict[str, str], request: ReplayRequest) -> dict[str, Any]:
    settings = command_settings(None, [f"{k}={v}" for k, v in params.items()])
    result = run_replay(settings, request)
    provenance = result.report["provenance"]
    return {
        "metrics": row_metrics(result)[0],
        "provenance": {
            key: provenance[key] for key in ("run_id", "settings_sha256", "data_sha256")
        },
    }


def test_walk_forward_trades_each_test_window_with_the_training_winner(
    request_: ReplayRequest, loaded: LoadedReplay
) -> None:
    spec = _spec("ema_fast=8,12", "volume_factor=1.2,1.5", jobs=2)
    walk = parse_walk_forward("train=3d,test=2d")

    document = run_walk_forward(spec, walk, request_, loaded, _reproduce(request_.data))

    result = document["walk_forward"]
    assert len(result["windows"]) == 4
    for window in result["windows"]:
        assert window["in_sample"]["bars"] == window["train"]["bars"] > 0
        assert window["out_of_sample"]["bars"] == window["test"]["bars"] > 0
        assert window["test"]["start"] == window["train"]["end"]
    assert [w["test"]["end"] for w in result["windows"][:-1]] == [
        w["test"]["start"] for w in result["windows"][1:]
    ]
    for side in ("in_sample", "out_of_sample"):
        assert result[side]["windows"] == 4
        assert result[side]["trades"] == sum(w[side]["trades"] for w in result["windows"])
    assert "starts flat with the starting cash" in result["state_between_windows"]


def test_the_winner_of_a_training_window_is_the_best_there(
    request_: ReplayRequest, loaded: LoadedReplay
) -> None:
    spec = _spec("ema_fast=8,12", jobs=1)
    walk = parse_walk_forward("train=4d,test=3d")

    window = run_walk_forward(spec, walk, request_, loaded, _reproduce(request_.data))[
        "walk_forward"
    ]["windows"][0]

    bounded = replace(request_, since_ms=1509836520000, until_ms=1509836520000 + 4 * 86_400_000)
    assert window["train"]["start"] == "2017-11-04T23:02:00Z"
    alone = {fast: _alone({"ema_fast": fast}, bounded) for fast in ("8", "12")}
    best = max(alone, key=lambda fast: float(alone[fast]["metrics"]["pnl"]))
    assert window["params"] == {"ema_fast": best}
    # the training window is exactly `cdb replay --since --until` of it: same numbers, same run
    assert window["in_sample"] == alone[best]["metrics"]
    assert window["provenance"]["train"] == alone[best]["provenance"]
    assert "--since 2017-11-04T23:02:00Z --until 2017-11-08T23:02:00Z" in window["command"]


def test_walk_forward_without_room_for_a_window_is_a_usage_error(
    request_: ReplayRequest, loaded: LoadedReplay
) -> None:
    with pytest.raises(SweepInvalid, match="13681 bars hold no training window"):
        run_walk_forward(
            _spec("ema_fast=8,12", jobs=1),
            parse_walk_forward("train=30d,test=7d"),
            request_,
            loaded,
            _reproduce(request_.data),
        )
