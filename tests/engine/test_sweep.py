"""The sweep's pure parts: the search space, the metrics, ranking and walk-forward windows."""

from __future__ import annotations

import itertools
import math
import re

import pytest

from cdb_cli.engine.sweep import (
    METRICS,
    Axis,
    Constraint,
    Reproduce,
    WalkForward,
    Window,
    daily_returns,
    grid,
    parse_axis,
    parse_constraint,
    parse_walk_forward,
    rank,
    sample,
    sharpe,
    size,
    sortino,
    windows,
)

DAY = 86_400 * 1_000_000_000
MINUTE = 60 * 1_000_000_000


@pytest.mark.parametrize(
    ("text", "name", "values"),
    [
        ("ema_fast=8..16:2", "ema_fast", ("8", "10", "12", "14", "16")),
        ("ema_fast=8..11", "ema_fast", ("8", "9", "10", "11")),
        ("ema_fast=8..15:4", "ema_fast", ("8", "12")),  # the end is kept only when on the step
        ("volume_factor=1.2..2:0.4", "volume_factor", ("1.2", "1.6", "2.0")),
        ("volume_factor=1.2,1.5,2", "volume_factor", ("1.2", "1.5", "2")),
        ("EMA_FAST = 5, 7 ,5", "ema_fast", ("5", "7")),  # names lower case, values once
        ("strategy=ema_cross,mean_reversion", "strategy", ("ema_cross", "mean_reversion")),
    ],
)
def test_an_axis_is_a_range_or_a_list(text: str, name: str, values: tuple[str, ...]) -> None:
    assert parse_axis(text) == Axis(name, values)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ema_fast", "is not NAME=START..END:STEP"),
        ("=1,2", "is not NAME=START..END:STEP"),
        ("ema_fast=", "is not NAME=START..END:STEP"),
        ("ema_fast=16..8:2", "the range ends (8) before it starts (16)"),
        ("ema_fast=8..16:0", "the step must be above 0"),
        ("ema_fast=8..16:-1", "the step must be above 0"),
        ("volume_factor=1.2..2", "a range of decimals needs a step"),
        ("ema_fast=a..16:2", "start 'a' is not a number"),
        ("ema_fast=1..nan:1", "not a finite number"),
        ("ema_fast=1,,2", "an empty value"),
        ("ema_fast=1..1000000:1", "1,000,000 values; at most 100,000"),
    ],
)
def test_a_bad_axis_is_one_line(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_axis(text)


def test_the_grid_is_every_combination_first_axis_slowest() -> None:
    axes = [Axis("a", ("1", "2")), Axis("b", ("x", "y", "z"))]

    combos = grid(axes)

    assert size(axes) == 6
    assert combos == [
        {"a": "1", "b": "x"},
        {"a": "1", "b": "y"},
        {"a": "1", "b": "z"},
        {"a": "2", "b": "x"},
        {"a": "2", "b": "y"},
        {"a": "2", "b": "z"},
    ]


def test_random_search_is_seeded_distinct_and_from_the_grid() -> None:
    axes = [parse_axis("a=1..20"), parse_axis("b=1..20"), parse_axis("c=0.1..1:0.1")]
    everything = grid(axes)

    first = sample(axes, 25, seed=3)

    assert first == sample(axes, 25, seed=3)
    assert first != sample(axes, 25, seed=4)
    assert len(first) == 25
    assert len({tuple(combo.values()) for combo in first}) == 25
    assert all(combo in everything for combo in first)
    assert sample(axes[:1], 50, seed=3) == grid(axes[:1])  # no larger than the grid: all of it


def test_constraints_read_metric_operator_limit() -> None:
    assert parse_constraint("max_drawdown<=10") == Constraint("max_drawdown", "<=", 10.0)
    assert parse_constraint(" trades >= 20 ") == Constraint("trades", ">=", 20.0)
    assert str(parse_constraint("sharpe>0.5")) == "sharpe>0.5"
    assert parse_constraint("pnl>-5").holds({"pnl": "-4.9"})
    assert not parse_constraint("sharpe>0").holds({"sharpe": None})  # undefined fails
    with pytest.raises(ValueError, match="unknown metric 'drawdown'; valid: pnl, "):
        parse_constraint("drawdown<=10")
    with pytest.raises(ValueError, match="is not METRIC<=NUMBER"):
        parse_constraint("max_drawdown=10")
    with pytest.raises(ValueError, match="limit 'ten' is not a number"):
        parse_constraint("max_drawdown<=ten")


def _row(name: str, **metrics: object) -> dict[str, object]:
    return {"params": {"name": name}, "metrics": metrics}


def test_rank_puts_every_row_passing_first_and_drops_none() -> None:
    rows = [
        _row("big drawdown", pnl="900", max_drawdown=25.0),
        _row("small", pnl="100", max_drawdown=5.0),
        _row("undefined", pnl=None, max_drawdown=1.0),
        _row("best passing", pnl="300", max_drawdown=9.0),
        _row("tie with small", pnl="100", max_drawdown=2.0),
    ]

    ranked = rank(rows, "pnl", [parse_constraint("max_drawdown<=10")])

    assert [row["params"]["name"] for row in ranked] == [
        "best passing",
        "small",
        "tie with small",  # ties keep the rows' order
        "undefined",  # passes, but no objective: last of the passing
        "big drawdown",  # the best PnL, yet it breaks the constraint: after all that pass
    ]
    assert [row["rank"] for row in ranked] == [1, 2, 3, 4, 5]
    assert [row["passes"] for row in ranked] == [True, True, True, True, False]
    assert ranked[-1]["violations"] == ["max_drawdown<=10"]


def test_a_lower_is_better_objective_ranks_ascending() -> None:
    rows = [_row("a", max_drawdown=7.0), _row("b", max_drawdown=3.0)]

    assert [row["params"]["name"] for row in rank(rows, "max_drawdown")] == ["b", "a"]
    assert not METRICS["max_drawdown"].higher_is_better
    with pytest.raises(ValueError, match="unknown objective 'profit'"):
        rank(rows, "profit")


def test_sharpe_and_sortino_of_daily_returns() -> None:
    returns = daily_returns([100.0, 101.0, 100.0, 102.0, 101.0])
    mean = sum(returns) / 4
    deviation = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / 4)

    assert returns == pytest.approx([0.01, -1 / 101, 0.02, -1 / 102])
    assert sharpe(returns) == pytest.approx(mean / deviation * math.sqrt(365), abs=1e-6)
    assert sortino(returns) == pytest.approx(mean / downside * math.sqrt(365), abs=1e-6)
    assert sharpe([0.01]) is None  # one return: no deviation
    assert sharpe([0.01, 0.01]) is None  # no variation
    assert sortino([0.01, 0.02]) is None  # no losing day
    assert daily_returns([100.0, 0.0, 50.0]) == [-1.0]  # a wiped-out equity ends the series


def test_walk_forward_lengths_are_durations_or_bar_counts() -> None:
    assert parse_walk_forward("train=30d,test=7d") == WalkForward(
        30 * DAY, 7 * DAY, False, "train=30d,test=7d"
    )
    assert parse_walk_forward("test=10080, train=43200") == WalkForward(
        43200, 10080, True, "train=43200,test=10080"
    )
    assert parse_walk_forward("train=12h,test=90m").test == 90 * MINUTE
    for text, reason in [
        ("train=30d", "needs both train= and test="),
        ("train=30d,test=100", "must both be durations or both bar counts"),
        ("train=30x,test=7d", "'30x' is neither a duration"),
        ("train=0,test=5", "must be above 0"),
        ("window=3", "is not train=LENGTH,test=LENGTH"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_walk_forward(text)


def test_windows_by_bars_roll_one_test_length_at_a_time() -> None:
    ts = [i * MINUTE for i in range(10)]

    found = windows(ts, parse_walk_forward("train=4,test=3"))

    assert found == [Window((0, 4), (4, 7)), Window((3, 7), (7, 10))]
    # the test windows follow each other without gap or overlap
    assert [w.test for w in windows(ts, parse_walk_forward("train=4,test=2"))] == [
        (4, 6),
        (6, 8),
        (8, 10),
    ]
    assert windows(ts, parse_walk_forward("train=10,test=2")) == []  # no bar left to test


def test_windows_by_time_follow_the_clock_across_gaps() -> None:
    # 1-minute bars over 3 days, with the second day's first 6 hours missing
    ts = [i * MINUTE for i in range(3 * 1440) if not 1440 <= i < 1440 + 360]

    found = windows(ts, parse_walk_forward("train=1d,test=12h"))

    assert len(found) == 4
    first = found[0]
    assert (first.train[0], first.train[1]) == (0, 1440)
    assert ts[first.test[0]] == 1440 * MINUTE + 360 * MINUTE  # the gap: no bar before 06:00
    assert ts[first.test[1]] == 1440 * MINUTE + 720 * MINUTE
    assert ts[found[-1].test[1] - 1] == ts[-1]  # the last window reaches the data's end
    for before, after in itertools.pairwise(found):
        assert before.test[1] == after.test[0]


def test_the_reproducing_command_quotes_and_bounds_the_window() -> None:
    reproduce = Reproduce(("cdb", "replay", "my data.json"), since_ms=1_509_840_000_000)

    plain = reproduce.command({"ema_fast": "8"})
    window = reproduce.command({"a": "1", "b": "x y"}, until_ms=1_509_926_400_123)

    assert plain == "cdb replay 'my data.json' --since 2017-11-05T00:00:00Z --set ema_fast=8"
    assert window == (
        "cdb replay 'my data.json' --since 2017-11-05T00:00:00Z "
        "--until 2017-11-06T00:00:00.123Z --set a=1 --set 'b=x y'"
    )
