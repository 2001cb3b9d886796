"""The EMA-cross signal engine: exact agreement with a batch recomputation on real candles, and
hand-made series for each rule (volume gate, exits, warm-up, trend filter, strength, config).

The batch references below are written independently of ``cdb_cli.engine.indicators`` (window sums
recomputed from scratch, ``alpha * x + (1 - alpha) * prev``, Wilder's ``RS``), and the buy / exit
rule is re-derived from those whole series, so the test does not share the strategy's code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from cdb_testkit import load_candles, ref_signals
from pydantic import ValidationError

from cdb_cli.engine.events import SignalSide, TradingSignal, decode_event, encode_event
from cdb_cli.engine.signals import (
    EmaCrossStrategy,
    SignalConfig,
    SignalIntent,
    Strategy,
    signal_event,
)

NS_PER_MS = 1_000_000


@pytest.fixture(scope="module")
def candles() -> list[list[float]]:
    return load_candles()


# --- independent batch references --------------------------------------------------------------


# --- helpers ------------------------------------------------------------------------------------


def run(
    strategy: Strategy, closes: Sequence[float], volumes: Sequence[float]
) -> list[SignalIntent | None]:
    return [
        strategy.on_bar(i * 60_000 * NS_PER_MS, c, v)
        for i, (c, v) in enumerate(zip(closes, volumes, strict=True))
    ]


def indices(intents: Sequence[SignalIntent | None], side: SignalSide) -> list[int]:
    return [i for i, x in enumerate(intents) if x is not None and x.side is side]


# Hand-made: falls 10 -> 4, rises 4 -> 10, falls 10 -> 5. With EMA(2) / EMA(4) the fast EMA crosses
# above the slow one at index 8 (diff -0.47 -> +0.03, RSI(2) = 75) and below it at index 14
# (diff +0.38 -> -0.08, RSI(2) = 24.6).
SMALL = SignalConfig(ema_fast=2, ema_slow=4, rsi_period=2, volume_period=3, volume_factor=1.5)
CLOSES = [10.0, 9, 8, 7, 6, 5, 4, 5, 6, 7, 8, 9, 10, 9, 8, 7, 6, 5]
CROSS_UP, CROSS_DOWN = 8, 14


def small(**changes: object) -> SignalConfig:
    """SMALL with some fields changed, validated (``model_copy`` would not validate)."""
    return SignalConfig.model_validate({**SMALL.model_dump(), **changes})


QUIET = [1.0] * len(CLOSES)
SPIKE = [10.0 if i == CROSS_UP else 1.0 for i in range(len(CLOSES))]


# --- real candles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [SignalConfig(), SignalConfig(trend_filter=True)],
    ids=["default", "trend_filter"],
)
def test_real_candles_match_batch_reference(candles: list[list[float]], cfg: SignalConfig) -> None:
    closes = [row[4] for row in candles]
    volumes = [row[5] for row in candles]
    intents = run(EmaCrossStrategy(cfg), closes, volumes)

    want_buys, want_exits = ref_signals(closes, volumes, cfg)
    got_buys = indices(intents, SignalSide.BUY)
    got_exits = indices(intents, SignalSide.EXIT)
    print(f"{len(closes)} bars: {len(got_buys)} buys, {len(got_exits)} exits")

    assert got_buys == want_buys
    assert got_exits == want_exits
    assert len(got_buys) >= 1
    assert len(got_exits) >= 1
    # No signal before both EMAs are ready and a previous diff exists.
    assert min(got_buys + got_exits) >= cfg.ema_slow
    assert all(0.0 <= x.strength <= 1.0 for x in intents if x is not None)


def test_real_candles_trend_filter_only_removes_buys(candles: list[list[float]]) -> None:
    closes = [row[4] for row in candles]
    volumes = [row[5] for row in candles]
    plain = run(EmaCrossStrategy(SignalConfig()), closes, volumes)
    trend = run(EmaCrossStrategy(SignalConfig(trend_filter=True)), closes, volumes)
    plain_buys = set(indices(plain, SignalSide.BUY))
    trend_buys = set(indices(trend, SignalSide.BUY))
    assert trend_buys < plain_buys  # a strict subset: the filter bites on this data
    assert indices(trend, SignalSide.EXIT) == indices(plain, SignalSide.EXIT)


# --- synthetic series ---------------------------------------------------------------------------


def test_cross_up_with_high_volume_buys_exactly_once() -> None:
    intents = run(EmaCrossStrategy(SMALL), CLOSES, SPIKE)
    assert indices(intents, SignalSide.BUY) == [CROSS_UP]
    buy = intents[CROSS_UP]
    assert buy is not None
    # SMA(3) of volume includes the spike: (1 + 1 + 10) / 3 = 4; 10 > 1.5 * 4.
    assert buy.indicators["volume_sma"] == pytest.approx(4.0)
    assert buy.indicators["volume_ratio"] == pytest.approx(2.5)
    assert buy.indicators["rsi"] == pytest.approx(75.0)
    assert buy.indicators["close"] == 6.0
    assert buy.indicators["ema_fast"] > buy.indicators["ema_slow"]
    assert "trend_sma" not in buy.indicators


def test_same_cross_with_low_volume_does_not_buy() -> None:
    intents = run(EmaCrossStrategy(SMALL), CLOSES, QUIET)
    assert indices(intents, SignalSide.BUY) == []
    # The exit does not depend on volume.
    assert indices(intents, SignalSide.EXIT) == [CROSS_DOWN]


def test_volume_must_be_strictly_above_the_factor() -> None:
    # Spike 4 over 1, 1: SMA = 2, ratio 2 -> passes factor 1.5, fails factor 2 (not strictly above).
    volumes = [4.0 if i == CROSS_UP else 1.0 for i in range(len(CLOSES))]
    assert indices(run(EmaCrossStrategy(SMALL), CLOSES, volumes), SignalSide.BUY) == [CROSS_UP]
    at_factor = small(volume_factor=2.0)
    assert indices(run(EmaCrossStrategy(at_factor), CLOSES, volumes), SignalSide.BUY) == []


def test_rsi_threshold_blocks_the_buy() -> None:
    strict = small(rsi_threshold=75.0)  # RSI is exactly 75 at the cross
    assert indices(run(EmaCrossStrategy(strict), CLOSES, SPIKE), SignalSide.BUY) == []


def test_cross_down_exits() -> None:
    intents = run(EmaCrossStrategy(SMALL), CLOSES, SPIKE)
    assert indices(intents, SignalSide.EXIT) == [CROSS_DOWN]
    exit_ = intents[CROSS_DOWN]
    assert exit_ is not None
    assert exit_.indicators["ema_fast"] < exit_.indicators["ema_slow"]
    diff = exit_.indicators["ema_fast"] - exit_.indicators["ema_slow"]
    assert exit_.strength == pytest.approx(min(1.0, abs(diff) / 8.0 * 1000))
    assert sum(x is not None for x in intents) == 2


def test_nothing_before_warm_up() -> None:
    # RSI(10) is first ready at index 10, after the cross at 8: the cross is not signalled late.
    late_rsi = small(rsi_period=10)
    intents = run(EmaCrossStrategy(late_rsi), CLOSES, SPIKE)
    assert indices(intents, SignalSide.BUY) == []
    assert indices(intents, SignalSide.EXIT) == [CROSS_DOWN]
    # A volume SMA that is not ready yet blocks too.
    late_volume = small(volume_period=10)
    assert all(x is None for x in run(EmaCrossStrategy(late_volume), CLOSES, SPIKE)[:10])


def test_first_ready_diff_is_not_a_cross() -> None:
    # Rising from the start: diff is > 0 from the first ready bar (3) but there is no previous diff.
    closes = [float(i) for i in range(1, 20)]
    volumes = [100.0 if i == 3 else 1.0 for i in range(len(closes))]
    cfg = small(rsi_period=1, volume_period=1, volume_factor=0.5)
    assert all(x is None for x in run(EmaCrossStrategy(cfg), closes, volumes))


@pytest.mark.parametrize(("period", "buys"), [(9, []), (5, [CROSS_UP])])
def test_trend_filter(period: int, buys: list[int]) -> None:
    # At the cross, close 6: SMA(9) of 10..4..6 = 60 / 9 = 6.67 blocks it; SMA(5) = 26 / 5 = 5.2
    # lets it through.
    cfg = small(trend_filter=True, trend_period=period)
    intents = run(EmaCrossStrategy(cfg), CLOSES, SPIKE)
    assert indices(intents, SignalSide.BUY) == buys
    assert indices(intents, SignalSide.EXIT) == [CROSS_DOWN]
    for x in intents:
        if x is not None and x.side is SignalSide.BUY:
            assert x.indicators["trend_sma"] == pytest.approx(5.2)


def test_trend_filter_not_ready_blocks_the_buy() -> None:
    cfg = small(trend_filter=True, trend_period=50)
    assert indices(run(EmaCrossStrategy(cfg), CLOSES, SPIKE), SignalSide.BUY) == []


def test_strength_formula_and_range() -> None:
    intents = run(EmaCrossStrategy(SMALL), CLOSES, SPIKE)
    buy = intents[CROSS_UP]
    assert buy is not None
    ind = buy.indicators
    diff = ind["ema_fast"] - ind["ema_slow"]
    want = (
        (75.0 - 50.0) / 50.0  # RSI margin 0.5
        + (2.5 - 1.5) / 1.5  # volume margin 0.667
        + min(1.0, diff / 6.0 * 1000)  # cross magnitude, clipped to 1
    ) / 3
    assert buy.strength == pytest.approx(want)
    # Extreme inputs are clipped: the volume and cross components saturate at 1.
    huge = [1e9 if i == CROSS_UP else 1.0 for i in range(len(CLOSES))]
    extreme = run(EmaCrossStrategy(small(rsi_threshold=0.0)), CLOSES, huge)[CROSS_UP]
    assert extreme is not None
    assert extreme.strength == pytest.approx((0.75 + 1.0 + 1.0) / 3)
    for x in [*intents, extreme]:
        if x is not None:
            assert 0.0 <= x.strength <= 1.0


def test_strategies_are_independent_per_symbol() -> None:
    a, b = EmaCrossStrategy(SMALL), EmaCrossStrategy(SMALL)
    got_a = run(a, CLOSES, SPIKE)
    run(b, [c * 2 for c in CLOSES[::-1]], QUIET)
    assert run(EmaCrossStrategy(SMALL), CLOSES, SPIKE) == got_a
    assert a.name == "ema_cross"
    assert EmaCrossStrategy(name="ema_cross_fast").name == "ema_cross_fast"
    assert EmaCrossStrategy().config == SignalConfig()


# --- config -------------------------------------------------------------------------------------


def test_config_defaults() -> None:
    cfg = SignalConfig()
    assert (cfg.ema_fast, cfg.ema_slow, cfg.rsi_period, cfg.rsi_threshold) == (12, 26, 14, 50.0)
    assert (cfg.volume_period, cfg.volume_factor) == (20, 1.5)
    assert (cfg.trend_filter, cfg.trend_period) == (False, 200)
    assert all(field.description for field in SignalConfig.model_fields.values())
    with pytest.raises(ValidationError):
        cfg.ema_fast = 5  # type: ignore[misc]


@pytest.mark.parametrize(("fast", "slow"), [(26, 26), (30, 26)])
def test_config_rejects_fast_not_below_slow(fast: int, slow: int) -> None:
    with pytest.raises(ValidationError, match=r"ema_fast \(\d+\) must be below ema_slow"):
        SignalConfig(ema_fast=fast, ema_slow=slow)


@pytest.mark.parametrize(
    "bad",
    [
        {"ema_fast": 0},
        {"rsi_period": 0},
        {"volume_period": 0},
        {"trend_period": 0},
        {"volume_factor": 0.0},
        {"rsi_threshold": 100.0},
        {"rsi_threshold": -1.0},
    ],
)
def test_config_rejects_out_of_range(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SignalConfig.model_validate(bad)


def test_config_rejects_extra_field() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SignalConfig.model_validate({"ema_fast": 5, "ema_slwo": 30})


# --- event --------------------------------------------------------------------------------------


def test_signal_event_builds_a_valid_trading_signal() -> None:
    intent = run(EmaCrossStrategy(SMALL), CLOSES, SPIKE)[CROSS_UP]
    assert intent is not None
    event = signal_event(
        intent,
        symbol="BTCUSDT",
        ts_event=1_700_000_000 * 10**9,
        source="signals",
        strategy="ema_cross",
        price=Decimal("6.00"),
    )
    assert isinstance(event, TradingSignal)
    assert event.side is SignalSide.BUY
    assert event.symbol == "BTCUSDT"
    assert event.strategy == "ema_cross"
    assert event.price == Decimal("6.00")
    assert isinstance(event.price, Decimal)
    assert event.strength == intent.strength
    assert event.indicators == intent.indicators
    assert event.event_id
    assert decode_event(encode_event(event)) == event


# --- explain: the conditions of the latest bar ---------------------------------------------------


def test_explain_names_every_signal_and_no_other_on_real_candles(
    candles: list[list[float]],
) -> None:
    """A bar's buy conditions all pass exactly when it buys, its exit condition exactly when it
    exits: a trace can never disagree with the signal it explains."""
    strategy = EmaCrossStrategy(SignalConfig())
    sides: list[str] = []
    evaluated = 0
    for ts, _, _, _, close, volume in candles:
        intent = strategy.on_bar(int(ts) * NS_PER_MS, close, volume)
        view = strategy.explain(close, volume)
        if view.status == "warming_up":
            assert intent is None
            continue
        evaluated += 1
        buy = [c.passed for c in view.conditions if c.side == "buy"]
        exit_ = [c.passed for c in view.conditions if c.side == "exit"]
        assert len(buy) == 3
        assert len(exit_) == 1
        expected = SignalSide.BUY if all(buy) else SignalSide.EXIT if all(exit_) else None
        assert (intent.side if intent else None) == expected
        if intent is not None:
            sides.append(intent.side)
    assert evaluated == len(candles) - 26
    assert sides.count(SignalSide.BUY) == 58  # the real candles' buys (issue 21)
    assert sides.count(SignalSide.EXIT) == 298


def test_explain_counts_down_the_warm_up_then_reports_values() -> None:
    strategy = EmaCrossStrategy(SignalConfig())  # ready at bar 27: EMA 26 and a previous gap
    needed = []
    for i in range(27):
        strategy.on_bar(i, 100.0 + i, 10.0)
        view = strategy.explain(100.0 + i, 10.0)
        needed.append(view.bars_needed if view.status == "warming_up" else 0)
    assert needed == [*range(26, 0, -1), 0]
    view = strategy.explain(126.0, 10.0)
    conditions = {c.name: c for c in view.conditions}
    assert conditions["cross_up"].passed is False  # a steady rise: above since the start
    assert conditions["cross_up"].value == pytest.approx(view.values["gap_pct"])
    assert conditions["cross_up"].value > 0
    assert conditions["rsi"].value == 100.0
    assert conditions["rsi"].passed is True
    assert conditions["volume"].value == pytest.approx(1.0)  # flat volume: 1x its average
    assert conditions["volume"].threshold == 1.5
    assert conditions["volume"].passed is False
    assert conditions["volume"].text == "volume 1.00x of 1.5x average"


def test_explain_includes_the_trend_filter_when_on() -> None:
    strategy = EmaCrossStrategy(SignalConfig(trend_filter=True, trend_period=30))
    for i in range(28):
        strategy.on_bar(i, 100.0 + i, 10.0)
    trend = {c.name: c for c in strategy.explain(127.0, 10.0).conditions}["trend"]
    assert trend.passed is False
    assert trend.text == "SMA30 not ready"
    for i in range(28, 31):
        strategy.on_bar(i, 100.0 + i, 10.0)
    trend = {c.name: c for c in strategy.explain(130.0, 10.0).conditions}["trend"]
    assert trend.passed is True
    assert trend.threshold == pytest.approx(115.5)
