"""The funnel of one symbol: each stage counted, the first stage that stopped trading named in one
sentence, exits while flat apart from rejections, and the near misses ranked."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from cdb_cli.engine.events import (
    CheckResult,
    Condition,
    RiskDecision,
    SignalSide,
    StrategyTrace,
    TradingSignal,
)
from cdb_cli.engine.funnel import (
    NOTHING_HELD,
    decision_outcome,
    distance,
    hhmm,
    near_misses,
    symbol_funnel,
    waits_for,
)

MINUTE = 60 * 1_000_000_000
T0 = 1_796_000_000 * 1_000_000_000 // MINUTE * MINUTE  # a minute boundary in 2026


def trace(
    i: int, gap: float, *, rsi: float = 60.0, volume: float = 0.9, **fields: Any
) -> StrategyTrace:
    conditions = (
        Condition(name="cross_up", value=gap, threshold=0.0, passed=fields.pop("up", False),
                  text=f"cross up: gap {gap:+.3f} %"),
        Condition(name="rsi", value=rsi, threshold=50.0, passed=rsi > 50, text=f"RSI {rsi:.1f}"),
        Condition(name="volume", value=volume, threshold=1.5, passed=volume > 1.5,
                  text=f"volume {volume:.2f}x of 1.5x average"),
        Condition(name="cross_down", side="exit", value=gap, threshold=0.0, passed=False),
    )  # fmt: skip
    return StrategyTrace(
        event_id=f"r1-t{i}",
        symbol="BTCUSDT",
        ts_event=T0 + i * MINUTE,
        source="signals",
        strategy="ema_cross",
        status="evaluated",
        close=100.0,
        volume=1.0,
        conditions=conditions,
        values={"gap_pct": gap},
        **fields,
    )


def funnel(traces: list[StrategyTrace], **stages: Any) -> Any:
    return symbol_funnel(
        "BTCUSDT",
        market_events=stages.pop("market_events", 100),
        bars=stages.pop("bars", []),
        traces=traces,
        signals=stages.pop("signals", []),
        decisions=stages.pop("decisions", []),
        orders=stages.pop("orders", []),
        fills=stages.pop("fills", []),
    )


def decision(verdict: str, *checks: tuple[str, bool], side: str = "buy") -> RiskDecision:
    return RiskDecision(
        symbol="BTCUSDT", ts_event=T0, source="risk", signal_id="s", verdict=verdict,  # type: ignore[arg-type]
        side=SignalSide(side), requested_quote=D(100), final_quote=D(0),
        checks=tuple(CheckResult(rule=code, code=code, passed=ok) for code, ok in checks),
    )  # fmt: skip


def test_no_cross_up_names_the_ema_gap_and_since_when() -> None:
    traces = [trace(i, gap) for i, gap in enumerate([-0.05, -0.01, 0.02, 0.05, 0.08])]
    traces[2] = trace(2, 0.02, up=True)  # it crossed at bar 2, confirmed by nothing
    result = funnel(traces[3:])

    assert result.stage == "strategy"
    assert result.sentence == (
        f"BTCUSDT: 2 bars evaluated, 0 crosses up; the fast EMA stayed above the slow one on "
        f"every bar from {hhmm(T0 + 3 * MINUTE)} (gap now +0.080 %)."
    )
    turned = funnel([*traces[:2], trace(2, 0.02), *traces[3:]])
    assert turned.sentence.endswith(f"stayed above the slow one since {hhmm(T0 + 2 * MINUTE)} "
                                    "(gap now +0.080 %).")  # fmt: skip


def test_crosses_that_were_not_confirmed_name_the_failing_condition() -> None:
    traces = [trace(0, 0.01, up=True, rsi=45.0), trace(1, 0.02, up=True, volume=1.2)]
    result = funnel(traces)

    assert result.sentence == (
        "BTCUSDT: 2 bars evaluated, 2 crosses up, none confirmed: volume on 2 "
        "(e.g. volume 1.20x of 1.5x average), rsi on 1 (e.g. RSI 45.0)."
    )
    assert result.conditions["volume"] == {
        "side": "buy", "judged": 2, "passed": 0, "threshold": 1.5, "pass_rate": 0.0
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stages", "stage", "start"),
    [
        ({"market_events": 0}, "market_data", "BTCUSDT: no market data in the window"),
        ({"market_events": 7}, "bars", "BTCUSDT: 7 market events but no closed bar yet"),
    ],
)
def test_the_stages_before_the_strategy(stages: dict[str, int], stage: str, start: str) -> None:
    result = funnel([], **stages)
    assert result.stage == stage
    assert result.sentence.startswith(start)


def test_warming_up_says_how_many_bars_are_still_needed() -> None:
    warm = StrategyTrace(
        symbol="BTCUSDT", ts_event=T0, source="signals", strategy="ema_cross",
        status="warming_up", close=1.0, volume=1.0, bars_needed=6,
    )  # fmt: skip
    result = funnel([warm])
    assert (
        result.sentence == "BTCUSDT: 1 bars, all while the strategy warmed up: 6 more bars needed."
    )
    assert waits_for(warm) == "warming up: 6 more bars"


def test_buys_all_rejected_name_the_top_blocker_and_exits_while_flat_are_apart() -> None:
    signal = TradingSignal(symbol="BTCUSDT", ts_event=T0, source="ema_cross", side=SignalSide.BUY,
                           strategy="ema_cross", price=D(100), strength=0.5)  # fmt: skip
    decisions = [
        decision("rejected", ("spread", False), ("stale_data", True)),
        decision("rejected", ("spread", False)),
        decision("rejected", ("no_position", False), side="exit"),  # stored before nothing_held
        decision(NOTHING_HELD, ("nothing_held", True), side="exit"),
    ]
    result = funnel([trace(0, 0.01, up=True, volume=2.0)], signals=[signal], decisions=decisions)

    assert [decision_outcome(d) for d in decisions] == [
        "rejected", "rejected", NOTHING_HELD, NOTHING_HELD
    ]  # fmt: skip
    assert result.stage == "risk"
    assert result.sentence == (
        "BTCUSDT: 1 buy signals, all rejected by risk; top blocker spread (2 of 2) — see cdb "
        "risk explain."
    )
    document = result.as_dict()
    assert document["exits_while_flat"] == 2
    assert document["risk"] == {"approved": 0, "reduced": 0, "rejected": 2}


def test_near_misses_rank_by_how_far_the_failing_conditions_were() -> None:
    close = trace(0, -0.01, volume=1.6)  # only the cross is missing, by 0.01 %
    far = trace(1, -0.5, rsi=40.0)  # the cross by 0.5 %, RSI by 20 %, volume by 40 %
    bought = trace(2, 0.01, up=True, volume=2.0, signal="buy", signal_id="s")

    assert distance(close) == pytest.approx(0.01)
    assert distance(far) == pytest.approx(0.5 + 0.2 + 0.4)
    ranked = near_misses([far, bought, close], limit=5)
    assert [miss["ts"] for miss in ranked] == [close.ts_event, far.ts_event]
    assert ranked[0]["failed"] == ["cross_up"]
    assert [c["name"] for c in ranked[0]["conditions"]] == ["cross_up", "rsi", "volume"]
