"""The risk engine on exits: what still blocks them, an exit with nothing held (not a rejection),
decisions stored before that verdict existed (``normalize_decision``), and which rule reduced an
order (``is_reduction``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from risk_testkit import DEFAULTS, NS, ROOMY, D, by_rule, decide, failed_codes, healthy_inputs

from cdb_cli.engine.events import RiskDecision, SignalSide
from cdb_cli.engine.risk import (
    NOT_APPLICABLE_TO_EXITS,
    NOTHING_HELD,
    NOTHING_HELD_DETAIL,
    RULE_ORDER,
    RiskInputs,
    TradingState,
    is_reduction,
    normalize_decision,
)


@pytest.fixture
def inputs() -> RiskInputs:
    return healthy_inputs()


# --- exits --------------------------------------------------------------------------------------


def test_exit_allowed_under_daily_drawdown(inputs: RiskInputs) -> None:
    down = replace(
        inputs,
        equity=D(9400),
        position_quote_for_symbol=D(500),
        exposure_quote=D(5000),
        trading_state=TradingState.REDUCING,
    )
    assert decide(down, DEFAULTS).verdict == "rejected"  # entries are blocked
    assert failed_codes(decide(down, DEFAULTS)) == ["daily_drawdown", "exposure"]
    decision = decide(down, DEFAULTS, SignalSide.EXIT)
    assert (decision.verdict, decision.requested_quote, decision.final_quote) == (
        "approved",
        D(500),
        D(500),
    )
    checks = by_rule(decision)
    for rule in ("daily_drawdown", "position_size", "exposure"):
        assert checks[rule].passed
        assert checks[rule].detail == NOT_APPLICABLE_TO_EXITS
    assert checks["circuit_breaker"].observed == D(6)


def test_exit_blocked_when_halted(inputs: RiskInputs) -> None:
    halted = replace(inputs, position_quote_for_symbol=D(500), trading_state=TradingState.HALTED)
    decision = decide(halted, DEFAULTS, SignalSide.EXIT)
    assert (decision.verdict, decision.final_quote) == ("rejected", D(0))
    assert failed_codes(decision) == ["circuit_breaker"]
    assert [check.rule for check in decision.checks] == list(RULE_ORDER)


def test_exit_still_respects_spread_and_stale_data(inputs: RiskInputs) -> None:
    holding = replace(inputs, position_quote_for_symbol=D(500))
    wide = replace(holding, bid=D("99.94"), ask=D("100.06"), last_price_age_ns=31 * NS)
    decision = decide(wide, DEFAULTS, SignalSide.EXIT)
    assert decision.verdict == "rejected"
    assert failed_codes(decision) == ["stale_data", "spread"]


def test_exit_without_a_position_is_nothing_held_not_a_rejection(inputs: RiskInputs) -> None:
    decision = decide(inputs, DEFAULTS, SignalSide.EXIT)
    assert (decision.verdict, decision.requested_quote, decision.final_quote) == (
        "nothing_held",
        D(0),
        D(0),
    )
    assert failed_codes(decision) == []  # not a failure of any rule
    position = by_rule(decision)["position_size"]
    assert (position.passed, position.code, position.detail) == (
        True,
        NOTHING_HELD,
        NOTHING_HELD_DETAIL,
    )
    assert (position.observed, position.limit) == (D(0), D(0))
    assert tuple(check.rule for check in decision.checks) == RULE_ORDER  # every rule's fields


@pytest.mark.parametrize(
    ("changes", "failing"),
    [
        ({"trading_state": TradingState.HALTED}, ["circuit_breaker"]),
        (
            {"bid": D("99.94"), "ask": D("100.06"), "last_price_age_ns": 31 * NS},
            ["stale_data", "spread"],
        ),
        ({"position_quote_for_symbol": D("0.000000009")}, []),  # below the 1e-8 grid: dust
        ({"position_quote_for_symbol": D("-5")}, []),
    ],
)
def test_nothing_held_takes_precedence_over_failing_checks(
    inputs: RiskInputs, changes: dict[str, Any], failing: list[str]
) -> None:
    """An exit while flat during a halt (or on stale data, a wide spread) is still nothing held;
    the failing checks stay in the trace as they were."""
    decision = decide(replace(inputs, **changes), DEFAULTS, SignalSide.EXIT)
    assert (decision.verdict, decision.final_quote) == ("nothing_held", D(0))
    assert failed_codes(decision) == failing
    assert by_rule(decision)["position_size"].code == NOTHING_HELD


def test_an_exit_with_a_position_is_not_nothing_held(inputs: RiskInputs) -> None:
    smallest = replace(inputs, position_quote_for_symbol=D("0.00000001"))  # one grid unit
    decision = decide(smallest, DEFAULTS, SignalSide.EXIT)
    assert (decision.verdict, decision.final_quote) == ("approved", D("0.00000001"))
    assert by_rule(decision)["position_size"].detail == NOT_APPLICABLE_TO_EXITS


def legacy_decision(*checks: tuple[str, str, bool], verdict: str = "rejected") -> RiskDecision:
    """A decision as versions before ``nothing_held`` stored it."""
    return RiskDecision.model_validate(
        {
            "event_id": "d-legacy",
            "symbol": "BTCUSDT",
            "ts_event": 1,
            "source": "risk",
            "signal_id": "s-legacy",
            "verdict": verdict,
            "side": "exit",
            "requested_quote": "0",
            "final_quote": "0",
            "checks": [
                {
                    "rule": rule,
                    "code": code,
                    "passed": passed,
                    "observed": "0" if code == "no_position" else None,
                    "limit": "0" if code == "no_position" else None,
                    "detail": "nothing to exit" if code == "no_position" else "",
                }
                for rule, code, passed in checks
            ],
        }
    )


def test_normalize_reads_a_legacy_no_position_rejection_as_nothing_held() -> None:
    legacy = legacy_decision(
        ("circuit_breaker", "circuit_breaker", False),
        ("spread", "ok", True),
        ("position_size", "no_position", False),
    )
    now = normalize_decision(legacy)
    assert (now.verdict, now.final_quote, now.event_id) == ("nothing_held", D(0), "d-legacy")
    assert failed_codes(now) == ["circuit_breaker"]  # the other checks as they were stored
    position = by_rule(now)["position_size"]
    assert (position.passed, position.code, position.detail) == (
        True,
        NOTHING_HELD,
        NOTHING_HELD_DETAIL,
    )
    assert legacy.verdict == "rejected"  # the stored event is not changed


def test_normalize_leaves_other_decisions_as_they_are(inputs: RiskInputs) -> None:
    spread = legacy_decision(("spread", "spread", False))
    assert normalize_decision(spread) is spread
    for decision in (
        decide(inputs, DEFAULTS, SignalSide.EXIT),  # already nothing_held
        decide(inputs, DEFAULTS),  # reduced
        decide(replace(inputs, trading_state=TradingState.HALTED), DEFAULTS),  # rejected
    ):
        assert normalize_decision(decision) is decision


def test_is_reduction_names_the_rule_that_made_the_order_smaller(inputs: RiskInputs) -> None:
    reduced = decide(inputs, DEFAULTS)  # 4000 on 10000 equity, 30 % exposure: reduced to 3000
    assert reduced.verdict == "reduced"
    assert [c.rule for c in reduced.checks if is_reduction(c)] == ["exposure"]
    capped = decide(replace(inputs, equity=D(10_000_000)), ROOMY)
    assert capped.verdict == "reduced"
    assert [c.rule for c in capped.checks if is_reduction(c)] == ["position_size"]
    approved = decide(inputs, ROOMY)
    assert approved.verdict == "approved"
    assert not any(is_reduction(c) for c in approved.checks)
