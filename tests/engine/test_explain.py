"""Explaining risk decisions from their stored traces, and re-deciding them under other limits."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cdb_cli.engine.events import RiskDecision, SignalSide, TradingSignal
from cdb_cli.engine.explain import apply_what_if, percentile, summarize, trace, what_if
from cdb_cli.engine.risk import RiskEngine, RiskInputs, RiskLimits

LIMITS = RiskLimits()


def inputs(spread_pct: str = "0.05", position: str = "0", exposure: str = "0") -> RiskInputs:
    mid = D(100)
    half = D(spread_pct) / 200 * mid
    return RiskInputs(
        equity=D(10_000),
        day_start_equity=D(10_000),
        peak_equity=D(10_000),
        exposure_quote=D(exposure),
        position_quote_for_symbol=D(position),
        bid=mid - half,
        ask=mid + half,
        last_price_age_ns=0,
    )


def decide(
    side: SignalSide, state: RiskInputs, n: int, limits: RiskLimits = LIMITS
) -> RiskDecision:
    signal = TradingSignal(
        event_id=f"s{n}",
        symbol="BTCUSDT",
        ts_event=n,
        source="test",
        side=side,
        strategy="test",
        price=D(100),
        strength=0.5,
    )
    return RiskEngine(limits).evaluate(signal, state, ts_event=n, event_id=f"d{n}")


@pytest.fixture
def decisions() -> list[RiskDecision]:
    made = [
        decide(SignalSide.BUY, inputs(spread), i)
        for i, spread in enumerate(["0.05", "0.12", "0.14", "0.16", "0.11"])
    ]
    made.append(decide(SignalSide.EXIT, inputs("0.05"), 5))  # nothing to sell
    made.append(decide(SignalSide.EXIT, inputs("0.05", position="500"), 6))
    return made


def test_percentile_nearest_rank() -> None:
    values = [D(v) for v in (5, 1, 4, 2, 3)]
    assert percentile(values, 0.5) == 3
    assert percentile(values, 0.9) == 5
    assert percentile(values, 0.1) == 1
    assert percentile([], 0.5) is None


def test_summary_counts_and_top_blocker(decisions: list[RiskDecision]) -> None:
    summary = summarize(decisions, LIMITS)
    counts = summary["decisions"]
    assert (counts["total"], counts["buy"], counts["exit"]) == (7, 5, 2)
    assert counts["rejected"] == 5  # four wide spreads, one exit with nothing to sell
    assert counts["reduced"] == 1  # the 0.05 % buy: 40 % of equity reduced to the 30 % cap
    assert counts["approved"] == 1  # the exit with a position
    assert summary["by_reason"] == {"spread": 4, "no_position": 1}
    assert summary["top_blocker"] == {"rule": "spread", "count": 4, "share": 0.8}


def test_rule_rows_and_hints(decisions: list[RiskDecision]) -> None:
    rules = summarize(decisions, LIMITS)["rules"]
    spread = rules["spread"]
    assert (spread["ran"], spread["failed"], spread["limit"]) == (7, 4, "0.1")
    failed = spread["failed_by_code"]["spread"]
    assert failed["count"] == 4
    assert failed["median_observed"] == "0.12"
    assert failed["hint"] == {
        "setting": "max_spread_pct",
        "current": "0.1",
        "half_pass_at": "0.12",  # nearest-rank median of 0.11, 0.12, 0.14, 0.16
        "most_pass_at": "0.16",
    }
    assert rules["exit_position"]["failed_by_code"]["no_position"]["hint"] is None
    assert rules["position_size"]["ran"] == 5
    assert "daily_drawdown" in rules  # entries ran it; exits did not count


def test_what_if_uses_the_engines_verdicts(decisions: list[RiskDecision]) -> None:
    result = what_if(decisions, LIMITS, {"max_spread_pct": "0.15"})
    flipped = {flip["decision_id"] for flip in result.flips}
    assert flipped == {"d1", "d2", "d4"}  # 0.12, 0.14 and 0.11 now pass; 0.16 does not
    assert result.before == {"rejected": 5, "reduced": 1, "approved": 1}
    assert result.after == {"rejected": 2, "reduced": 4, "approved": 1}
    # the same verdicts as deciding afresh with the changed limits
    fresh = RiskLimits(max_spread_pct=D("0.15"))
    for decision in decisions:
        again = decide(decision.side, RiskInputs.from_strings(decision.state), 0, fresh)
        became = next(
            (f["after"] for f in result.flips if f["decision_id"] == decision.event_id),
            decision.verdict,
        )
        assert again.verdict == became


def test_what_if_refuses_unknown_names_and_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown risk limit 'max_spred_pct'"):
        apply_what_if(LIMITS, {"max_spred_pct": "1"})
    with pytest.raises(ValueError, match="max_spread_pct"):
        apply_what_if(LIMITS, {"max_spread_pct": "-1"})
    with pytest.raises(ValueError, match="min_position_quote"):
        apply_what_if(LIMITS, {"min_position_quote": "99999999"})


def test_trace_of_one_decision(decisions: list[RiskDecision]) -> None:
    one = trace(decisions[1])
    assert one["verdict"] == "rejected"
    assert [c["rule"] for c in one["checks"]][3] == "spread"
    assert one["checks"][3]["passed"] is False
    assert one["state"]["equity"] == "10000"
