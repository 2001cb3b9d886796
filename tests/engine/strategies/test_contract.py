"""The contract every strategy keeps (cdb_cli.engine.strategies): the built-ins and the example
user strategy, over the real candles in tests/data."""

from __future__ import annotations

from array import array

import pytest
from cdb_testkit import CANDLES, load_candles, require_data
from strategies_testkit import STRATEGIES, factory_for

from cdb_cli.engine.signals import BarColumns, BatchStrategy, SignalIntent, Strategy, StrategyView
from cdb_cli.engine.strategies import check_intent

MINUTE = 60_000_000_000


@pytest.fixture(scope="module")
def bars() -> list[tuple[int, float, float]]:
    require_data(CANDLES)
    return [(int(r[0]) * 1_000_000 + MINUTE, float(r[4]), float(r[5])) for r in load_candles()]


def feed(strategy: Strategy, bars: list[tuple[int, float, float]]) -> list[SignalIntent | None]:
    return [strategy.on_bar(*bar) for bar in bars]


@pytest.fixture(params=sorted(STRATEGIES))
def case(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_it_signals_on_real_data_with_valid_intents(
    case: str, bars: list[tuple[int, float, float]]
) -> None:
    intents = [i for i in feed(factory_for(case)(), bars) if i is not None]
    assert intents, f"{case} never signalled on {len(bars)} real bars"
    for intent in intents:
        check_intent(intent)
    assert {str(i.side) for i in intents} == {"buy", "exit"}


def test_it_is_deterministic(case: str, bars: list[tuple[int, float, float]]) -> None:
    factory = factory_for(case)
    first, second = feed(factory(), bars), feed(factory(), bars)
    assert first == second
    assert any(first)


def test_no_intent_before_its_warm_up(case: str, bars: list[tuple[int, float, float]]) -> None:
    strategy = factory_for(case)()
    warmup = strategy.warmup
    assert warmup > 0
    # a rising then falling run: every rule has a reason to act as early as it can
    early = [(t, 100.0 + (i if i < warmup // 2 else warmup - i), 5.0) for i, (t, _, _) in
             enumerate(bars[:warmup])]  # fmt: skip
    assert feed(strategy, early) == [None] * warmup
    assert feed(factory_for(case)(), bars[:warmup]) == [None] * warmup
    view = factory_for(case)().explain(bars[0][1], bars[0][2])
    assert view.status == "warming_up"


def test_explain_agrees_with_on_bar(case: str, bars: list[tuple[int, float, float]]) -> None:
    strategy = factory_for(case)()
    checked = {"buy": 0, "exit": 0}
    for ts, close, volume in bars:
        intent = strategy.on_bar(ts, close, volume)
        view = strategy.explain(close, volume)
        assert isinstance(view, StrategyView)
        if intent is None:
            continue
        side = str(intent.side)
        assert view.status == "evaluated", (case, ts, side)
        gating = [c for c in view.conditions if c.side == side]
        assert gating, f"{case}: no {side} condition in its explanation"
        assert all(c.passed for c in gating), (case, ts, side, gating)
        checked[side] += 1
    assert checked["buy"]
    assert checked["exit"]


def test_symbols_do_not_share_state(case: str, bars: list[tuple[int, float, float]]) -> None:
    factory = factory_for(case)
    alone = feed(factory(), bars)
    other = [(t, c * 0.5 + 7.0, v * 3.0) for t, c, v in reversed(bars)]
    first, second = factory(), factory()
    together = []
    for mine, theirs in zip(bars, other, strict=True):
        together.append(first.on_bar(*mine))
        second.on_bar(*theirs)
    assert together == alone


BATCH = sorted(case for case in STRATEGIES if isinstance(factory_for(case)(), BatchStrategy))


def test_the_default_strategy_takes_bars_in_batches() -> None:
    assert "ema_cross" in BATCH


@pytest.mark.parametrize("batch_case", BATCH)
@pytest.mark.parametrize("chunks", [(None,), (1, 2, 30, 500, None), (97, None)])
def test_on_bars_gives_what_on_bar_gives(
    batch_case: str, bars: list[tuple[int, float, float]], chunks: tuple[int | None, ...]
) -> None:
    """A strategy that also takes bars in batches (BatchStrategy, a replay's fast path) gives
    the same intents at the same bars, and is left as on_bar leaves it, however the bars are
    cut (None: the rest)."""
    case = batch_case
    one = factory_for(case)()
    expected = [(i, x) for i, x in enumerate(feed(one, bars)) if x is not None]
    batched = factory_for(case)()
    assert isinstance(batched, BatchStrategy)
    ts = array("q", (bar[0] for bar in bars))
    close = array("d", (bar[1] for bar in bars))
    volume = array("d", (bar[2] for bar in bars))
    got: list[tuple[int, SignalIntent]] = []
    start = 0
    for size in chunks:
        end = len(bars) if size is None else start + size
        columns = BarColumns(ts[start:end], close[start:end], volume[start:end], cache={})
        got += [(start + i, intent) for i, intent in batched.on_bars(columns)]
        start = end
    assert expected
    assert got == expected
    last_ts, last_close, last_volume = bars[-1]
    assert batched.explain(last_close, last_volume) == one.explain(last_close, last_volume)
    # and both go on alike
    later = [(last_ts + k * MINUTE, last_close * (1 + 0.01 * (-1) ** k), last_volume) for k in
             range(1, 80)]  # fmt: skip
    assert feed(batched, later) == feed(one, later)
