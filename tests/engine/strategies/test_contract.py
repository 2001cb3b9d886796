"""The contract every strategy keeps (cdb_cli.engine.strategies): the built-ins and the example
user strategy, over the real candles in tests/data."""

from __future__ import annotations

import pytest
from cdb_testkit import CANDLES, load_candles, require_data
from strategies_testkit import STRATEGIES, factory_for

from cdb_cli.engine.signals import SignalIntent, Strategy, StrategyView
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
