"""Explaining risk decisions from their stored traces, and re-deciding them under other limits."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from cdb_cli.engine.events import RiskDecision, SignalSide, TradingSignal
from cdb_cli.engine.explain import apply_what_if, percentile, summarize, trace, what_if
from cdb_cli.engine.risk import RiskEngine, RiskInputs, RiskLimits, TradingState

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
    engine = RiskEngine(limits)
    outcome = engine.verdict(side, state)
    return engine.record(signal, state, outcome, ts_event=n, event_id=f"d{n}")


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


def legacy(decision: RiskDecision) -> RiskDecision:
    """``decision`` as versions before the nothing_held verdict stored it."""
    if decision.verdict != "nothing_held":
        return decision
    checks = tuple(
        check.model_copy(
            update={"code": "no_position", "passed": False, "detail": "nothing to exit"}
        )
        if check.code == "nothing_held"
        else check
        for check in decision.checks
    )
    return decision.model_copy(update={"verdict": "rejected", "checks": checks})


def test_summary_counts_and_top_blocker(decisions: list[RiskDecision]) -> None:
    summary = summarize(decisions, LIMITS)
    counts = summary["decisions"]
    assert (counts["total"], counts["buy"], counts["exit"]) == (7, 5, 2)
    assert counts["rejected"] == 4  # four wide spreads
    assert counts["nothing_held"] == 1  # the exit with nothing to sell: not a rejection
    assert counts["reduced"] == 1  # the 0.05 % buy: 40 % of equity reduced to the 30 % cap
    assert counts["approved"] == 1  # the exit with a position
    assert summary["by_reason"] == {"spread": 4}
    assert summary["top_blocker"] == {
        "rule": "spread",
        "count": 4,
        "share": 1.0,
        "example_decision_id": "d4",  # the latest one
    }
    assert summary["nothing_held"] == {
        "count": 1,
        "detail": "exit signal, nothing held",
        "example_decision_id": "d5",
    }


def test_latest_blocked_or_reduced_decisions_come_with_their_ids(
    decisions: list[RiskDecision],
) -> None:
    latest = summarize(decisions, LIMITS, latest=3)["latest_blocked"]
    assert [item["decision_id"] for item in latest] == ["d4", "d3", "d2"]  # newest first
    assert latest[0]["why"] == ["spread"]
    everything = summarize(decisions, LIMITS)["latest_blocked"]
    assert [item["decision_id"] for item in everything] == ["d4", "d3", "d2", "d1", "d0"]
    reduced = everything[-1]
    assert (reduced["verdict"], reduced["final_quote"]) == ("reduced", "3000.00000000")
    assert reduced["why"] == ["exposure reduced to 3000"]


def test_legacy_no_position_rejections_read_as_nothing_held(
    decisions: list[RiskDecision],
) -> None:
    stored = [legacy(d) for d in decisions]
    assert [d.verdict for d in stored].count("rejected") == 5  # as the old version stored them
    assert summarize(stored, LIMITS) == summarize(decisions, LIMITS)
    assert what_if(stored, LIMITS, {"max_spread_pct": "0.15"}) == what_if(
        decisions, LIMITS, {"max_spread_pct": "0.15"}
    )
    old = trace(stored[5])
    assert (old["verdict"], old["stored_verdict"], old["order"]) == (
        "nothing_held",
        "rejected",
        False,
    )
    assert {k: v for k, v in old.items() if k != "stored_verdict"} == trace(decisions[5])


def test_nothing_held_on_a_halt_is_no_blocker_and_not_in_the_other_rules() -> None:
    halted = replace(inputs(), trading_state=TradingState.HALTED)
    made = [decide(SignalSide.EXIT, halted, 0), legacy(decide(SignalSide.EXIT, halted, 1))]
    assert [d.verdict for d in made] == ["nothing_held", "rejected"]
    summary = summarize(made, LIMITS)
    assert summary["decisions"]["nothing_held"] == 2
    assert (summary["by_reason"], summary["top_blocker"]) == ({}, None)
    assert summary["latest_blocked"] == []
    assert set(summary["rules"]) == {"exit_position"}  # the breaker's failure counts nowhere
    row = summary["rules"]["exit_position"]
    assert (row["ran"], row["failed"], row["nothing_held"]) == (2, 0, 2)
    assert row["failed_by_code"] == {}


def test_rule_rows_and_hints(decisions: list[RiskDecision]) -> None:
    rules = summarize(decisions, LIMITS)["rules"]
    spread = rules["spread"]
    # the exit with nothing held is not in the other rules' statistics
    assert (spread["ran"], spread["failed"], spread["limit"]) == (6, 4, "0.1")
    failed = spread["failed_by_code"]["spread"]
    assert failed["count"] == 4
    assert failed["median_observed"] == "0.12"
    assert failed["hint"] == {
        "setting": "max_spread_pct",
        "current": "0.1",
        "half_pass_at": "0.12",  # nearest-rank median of 0.11, 0.12, 0.14, 0.16
        "most_pass_at": "0.16",
    }
    assert failed["example_decision_id"] == "d4"
    exit_position = rules["exit_position"]  # only the exit with nothing held: a fact, no failure
    assert (exit_position["ran"], exit_position["failed"], exit_position["nothing_held"]) == (
        1,
        0,
        1,
    )
    assert exit_position["failed_by_code"] == {}
    assert rules["position_size"]["ran"] == 5
    assert "daily_drawdown" in rules  # entries ran it; exits did not count


def test_what_if_uses_the_engines_verdicts(decisions: list[RiskDecision]) -> None:
    result = what_if(decisions, LIMITS, {"max_spread_pct": "0.15"})
    flipped = {flip["decision_id"] for flip in result.flips}
    assert flipped == {"d1", "d2", "d4"}  # 0.12, 0.14 and 0.11 now pass; 0.16 does not
    assert result.before == {"rejected": 4, "nothing_held": 1, "reduced": 1, "approved": 1}
    assert result.after == {"rejected": 1, "nothing_held": 1, "reduced": 4, "approved": 1}
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


def test_rule_rows_count_the_reductions(decisions: list[RiskDecision]) -> None:
    """Observed 40 % against a 30 % limit with no failure: the row says it reduced the order."""
    exposure = summarize(decisions, LIMITS)["rules"]["exposure"]
    assert (exposure["ran"], exposure["failed"], exposure["reduced"]) == (5, 0, 1)
    assert exposure["observed"]["p90"] == "40"
    assert exposure["limit"] == "30"
    assert exposure["reduced_example_decision_id"] == "d0"
    spread = summarize(decisions, LIMITS)["rules"]["spread"]
    assert (spread["reduced"], spread["reduced_example_decision_id"]) == (0, None)


def test_trace_shows_a_reduction_as_reduced_to_the_final_size(
    decisions: list[RiskDecision],
) -> None:
    reduced = trace(decisions[0])
    assert (reduced["verdict"], reduced["order"], reduced["final_quote"]) == (
        "reduced",
        True,
        "3000.00000000",
    )
    outcomes = {c["rule"]: (c["outcome"], c["reduced_to"]) for c in reduced["checks"]}
    assert outcomes["exposure"] == ("reduced", "3000.00000000")
    assert outcomes["spread"] == ("pass", None)
    assert "stored_verdict" not in reduced


def test_trace_of_an_exit_with_nothing_held(decisions: list[RiskDecision]) -> None:
    held = trace(decisions[5])
    assert (held["verdict"], held["order"], held["final_quote"]) == ("nothing_held", False, "0")
    position = next(c for c in held["checks"] if c["rule"] == "position_size")
    assert (position["outcome"], position["passed"], position["detail"]) == (
        "nothing_held",
        True,
        "exit signal, nothing held",
    )


def test_trace_of_one_decision(decisions: list[RiskDecision]) -> None:
    one = trace(decisions[1])
    assert one["verdict"] == "rejected"
    assert [c["rule"] for c in one["checks"]][3] == "spread"
    assert one["checks"][3]["passed"] is False
    assert one["checks"][3]["outcome"] == "fail"
    assert one["state"]["equity"] == "10000"
