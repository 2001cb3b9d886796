"""Incremental indicators agree with independent batch computations over real candles.

The references below recompute each indicator over the whole series with plain loops, in a
different form from the incremental code (window sums recomputed from scratch, ``alpha * x +
(1 - alpha) * prev``, Wilder's relative strength ``RS``), so a shared mistake is unlikely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from cdb_testkit import load_candles, ref_ema, ref_rsi, ref_sma

from cdb_cli.engine.indicators import EMA, RSI, SMA, VolumeSMA

TOLERANCE = 1e-9

Indicator = SMA | EMA | RSI


@pytest.fixture(scope="module")
def candles() -> list[list[float]]:
    return load_candles()


# --- independent batch references --------------------------------------------------------------


def run(indicator: Indicator, values: Sequence[float]) -> list[float | None]:
    return [indicator.update(v) for v in values]


def first_ready(series: Sequence[float | None]) -> int:
    return next(i for i, v in enumerate(series) if v is not None)


def max_relative_error(got: Sequence[float | None], want: Sequence[float | None]) -> float:
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is None or w is None or g == w:
            continue
        worst = max(worst, abs(g - w) / max(abs(g), abs(w)))
    return worst


CASES: list[tuple[str, Callable[[], Indicator], int, Callable[..., list[float | None]], int]] = [
    ("EMA(12) close", lambda: EMA(12), 4, ref_ema, 11),
    ("EMA(26) close", lambda: EMA(26), 4, ref_ema, 25),
    ("SMA(20) volume", lambda: VolumeSMA(20), 5, ref_sma, 19),
    ("RSI(14) close", lambda: RSI(14), 4, ref_rsi, 14),
]


@pytest.mark.parametrize(
    ("name", "make", "column", "reference", "warmup"), CASES, ids=[c[0] for c in CASES]
)
def test_incremental_matches_batch_reference_on_real_candles(
    candles: list[list[float]],
    name: str,
    make: Callable[[], Indicator],
    column: int,
    reference: Callable[[Sequence[float], int], list[float | None]],
    warmup: int,
) -> None:
    values = [row[column] for row in candles]
    indicator = make()
    got = run(indicator, values)
    want = reference(values, indicator.period)

    assert first_ready(got) == warmup
    assert first_ready(want) == warmup
    assert all(v is not None for v in got[warmup:])
    error = max_relative_error(got, want)
    print(f"{name}: max relative error {error:.3e} over {len(values) - warmup} values")
    assert error <= TOLERANCE
    assert indicator.ready
    assert indicator.value == got[-1]


def test_real_rsi_stays_in_range_and_moves(candles: list[list[float]]) -> None:
    got = [v for v in run(RSI(14), [row[4] for row in candles]) if v is not None]
    assert len(got) == len(candles) - 14
    assert all(0.0 <= v <= 100.0 for v in got)
    assert min(got) < 30.0 < 70.0 < max(got)


@pytest.mark.parametrize(
    ("make", "warmup"),
    [(lambda: SMA(3), 2), (lambda: EMA(3), 2), (lambda: RSI(3), 3), (lambda: SMA(1), 0)],
)
def test_not_ready_until_warm(make: Callable[[], Indicator], warmup: int) -> None:
    indicator = make()
    for i in range(warmup):
        assert indicator.update(float(i + 1)) is None
        assert not indicator.ready
        assert indicator.value is None
    result = indicator.update(float(warmup + 1))
    assert result is not None
    assert indicator.ready
    assert indicator.value == result


def test_small_hand_checked_values() -> None:
    assert run(SMA(3), [1, 2, 3, 4, 5]) == [None, None, 2.0, 3.0, 4.0]
    # Seed = mean(1, 2, 3) = 2; alpha = 0.5: 2 + 0.5 * (4 - 2) = 3, then 3 + 0.5 * (5 - 3) = 4.
    assert run(EMA(3), [1, 2, 3, 4, 5]) == [None, None, 2.0, 3.0, 4.0]
    assert run(EMA(1), [7, 3, 9]) == [7.0, 3.0, 9.0]
    # Changes +2, -1: avg gain 1, avg loss 0.5 -> 100 * 1 / 1.5; next change +0 -> Wilder decay.
    rsi = run(RSI(2), [10, 12, 11, 11])
    assert rsi[:2] == [None, None]
    assert rsi[2] == pytest.approx(200 / 3)
    assert rsi[3] == pytest.approx(100 * 0.5 / (0.5 + 0.25))


def test_constant_series() -> None:
    flat = [0.0016] * 50
    assert run(SMA(20), flat)[-1] == pytest.approx(0.0016, rel=1e-12)
    assert run(EMA(12), flat)[-1] == pytest.approx(0.0016, rel=1e-12)
    # Both averages 0: neutral 50 by our convention (TA-Lib would give 0).
    assert set(run(RSI(14), flat)[14:]) == {50.0}


def test_rsi_extremes() -> None:
    rising = [float(i) for i in range(30)]
    assert set(run(RSI(14), rising)[14:]) == {100.0}
    assert set(run(RSI(14), rising[::-1])[14:]) == {0.0}


@pytest.mark.parametrize("cls", [SMA, EMA, RSI, VolumeSMA])
@pytest.mark.parametrize("period", [0, -1, -100])
def test_period_below_one_is_refused(cls: type[Indicator], period: int) -> None:
    with pytest.raises(ValueError, match="period must be >= 1"):
        cls(period)


@pytest.mark.parametrize("cls", [SMA, EMA, RSI])
@pytest.mark.parametrize("period", [2.0, True, "3"])
def test_period_must_be_an_int(cls: type[Indicator], period: object) -> None:
    with pytest.raises(TypeError, match="period must be an int"):
        cls(period)  # type: ignore[arg-type]


def test_sma_rolling_sum_does_not_drift() -> None:
    # Huge values leaving the window must not leave rounding residue behind for the tiny ones.
    sma = SMA(3)
    for v in [1e16, 1.0, -1e16, 1e-3, 2e-3, 3e-3]:
        sma.update(v)
    assert sma.value == pytest.approx(2e-3, rel=1e-12)
