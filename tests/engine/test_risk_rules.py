"""The risk rules: the limits model, each rule at, just below and just above its limit, the seed's
spread scenario and its what-if, reduce-to-fit, the size bounds, and zero or negative equity.

Every rule is exercised through the engine's one path (``RiskEngine.verdict``, then ``record``), the
code the pipeline and ``cdb risk explain --what-if`` run. Boundary semantics under test: a value
*equal* to its limit passes; only a value strictly beyond it fails. Numbers are chosen so the
expected values are exact decimals (no rounding anywhere).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError
from risk_testkit import (
    DEFAULTS,
    NS,
    ROOMY,
    D,
    by_rule,
    decide,
    failed_codes,
    healthy_inputs,
)

from cdb_cli.engine.events import CheckResult
from cdb_cli.engine.risk import (
    RULE_ORDER,
    RiskInputs,
    RiskLimits,
    TradingState,
    allowed_exposure_quote,
    raw_position_quote,
)


@pytest.fixture
def inputs() -> RiskInputs:
    return healthy_inputs()


def rule_result(inputs: RiskInputs, rule: str, limits: RiskLimits = DEFAULTS) -> CheckResult:
    """The check of ``rule`` in the decision the engine records for an entry on ``inputs``."""
    return by_rule(decide(inputs, limits))[rule]


# --- limits -------------------------------------------------------------------------------------


def test_limits_defaults_match_the_design() -> None:
    assert DEFAULTS.model_dump() == {
        "daily_drawdown_pct": D(5),
        "max_exposure_pct": D(30),
        "circuit_breaker_pct": D(10),
        "min_position_quote": D(100),
        "max_position_quote": D(50000),
        "max_spread_pct": D("0.1"),
        "stale_data_seconds": 30,
        "risk_per_trade_pct": D(2),
        "position_risk_pct": D(5),
    }
    assert all(field.description for field in RiskLimits.model_fields.values())


def test_limits_are_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        DEFAULTS.max_spread_pct = D(1)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        RiskLimits(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="greater than 0"):
        RiskLimits(max_spread_pct=D(0))
    with pytest.raises(ValidationError, match=r"min_position_quote \(600\) is above"):
        RiskLimits(min_position_quote=D(600), max_position_quote=D(500))


# --- each rule at, just below and just above its limit -----------------------------------------


@pytest.mark.parametrize(
    ("equity", "passed", "observed"),
    [("9001", True, "9.99"), ("9000", True, "10"), ("8999", False, "10.01")],
)
def test_circuit_breaker_boundary(
    inputs: RiskInputs, equity: str, passed: bool, observed: str
) -> None:
    result = rule_result(replace(inputs, equity=D(equity)), "circuit_breaker")
    assert result.rule == "circuit_breaker"
    assert result.passed is passed
    assert result.code == ("ok" if passed else "circuit_breaker")
    assert result.observed == D(observed)
    assert result.limit == D(10)


def test_circuit_breaker_fails_while_halted_even_without_loss(inputs: RiskInputs) -> None:
    result = rule_result(replace(inputs, trading_state=TradingState.HALTED), "circuit_breaker")
    assert (result.passed, result.code, result.observed) == (False, "circuit_breaker", D(0))


@pytest.mark.parametrize(
    ("equity", "passed", "observed"),
    [("9501", True, "4.99"), ("9500", True, "5"), ("9499", False, "5.01")],
)
def test_daily_drawdown_boundary(
    inputs: RiskInputs, equity: str, passed: bool, observed: str
) -> None:
    result = rule_result(replace(inputs, equity=D(equity)), "daily_drawdown")
    assert result.passed is passed
    assert result.code == ("ok" if passed else "daily_drawdown")
    assert (result.observed, result.limit) == (D(observed), D(5))


def test_daily_drawdown_sticks_while_reducing(inputs: RiskInputs) -> None:
    result = rule_result(replace(inputs, trading_state=TradingState.REDUCING), "daily_drawdown")
    assert (result.passed, result.code) == (False, "daily_drawdown")


@pytest.mark.parametrize(
    ("age_ns", "passed", "observed"),
    [
        (30 * NS - 1, True, "29.999999999"),
        (30 * NS, True, "30"),
        (30 * NS + 1, False, "30.000000001"),
    ],
)
def test_stale_data_boundary(inputs: RiskInputs, age_ns: int, passed: bool, observed: str) -> None:
    result = rule_result(replace(inputs, last_price_age_ns=age_ns), "stale_data")
    assert result.passed is passed
    assert result.code == ("ok" if passed else "stale_data")
    assert (result.observed, result.limit) == (D(observed), D(30))


@pytest.mark.parametrize(
    ("bid", "ask", "passed", "observed"),
    [
        ("99.96", "100.04", True, "0.08"),
        ("99.95", "100.05", True, "0.1"),
        ("99.9499", "100.0501", False, "0.1002"),
        ("99.94", "100.06", False, "0.12"),
    ],
)
def test_spread_boundary(
    inputs: RiskInputs, bid: str, ask: str, passed: bool, observed: str
) -> None:
    result = rule_result(replace(inputs, bid=D(bid), ask=D(ask)), "spread")
    assert result.passed is passed
    assert result.code == ("ok" if passed else "spread")
    assert (result.observed, result.limit) == (D(observed), D("0.1"))


@pytest.mark.parametrize(
    ("bid", "ask"), [("100", "100"), ("100.02", "100"), ("0", "100"), ("-1", "100")]
)
def test_crossed_or_non_positive_book_is_bad_quote(inputs: RiskInputs, bid: str, ask: str) -> None:
    result = rule_result(replace(inputs, bid=D(bid), ask=D(ask)), "spread")
    assert (result.passed, result.code, result.observed) == (False, "bad_quote", None)
    assert "received" in result.detail
    decision = decide(replace(inputs, bid=D(bid), ask=D(ask)))
    assert decision.verdict == "rejected"
    assert failed_codes(decision) == ["bad_quote"]


def test_position_size_formula(inputs: RiskInputs) -> None:
    # equity 10000, risk per trade 2 %, position risk 5 %: 10000 * 2 / 5 = 4000
    assert raw_position_quote(D(10000), DEFAULTS) == D(4000)
    result = rule_result(inputs, "position_size")
    assert (result.passed, result.code, result.observed, result.detail) == (True, "ok", D(4000), "")
    decision = decide(inputs, ROOMY)
    assert (decision.verdict, decision.requested_quote, decision.final_quote) == (
        "approved",
        D(4000),
        D(4000),
    )


@pytest.mark.parametrize(
    ("equity", "passed", "observed"),
    [("250.01", True, "100.004"), ("250", True, "100"), ("249.99", False, "99.996")],
)
def test_position_size_min_boundary(
    inputs: RiskInputs, equity: str, passed: bool, observed: str
) -> None:
    snapshot = replace(inputs, equity=D(equity), day_start_equity=D(equity), peak_equity=D(equity))
    result = rule_result(snapshot, "position_size", ROOMY)
    assert result.passed is passed
    assert result.observed == D(observed)
    if not passed:
        assert (result.code, result.limit) == ("position_size_min", D(100))
        decision = decide(snapshot, ROOMY)
        assert (decision.verdict, decision.final_quote) == ("rejected", D(0))
        assert failed_codes(decision) == ["position_size_min"]


@pytest.mark.parametrize(
    ("equity", "detail", "final"),
    [("124999", "", "49999.6"), ("125000", "", "50000"), ("125000.05", "capped", "50000")],
)
def test_position_size_cap_at_max(inputs: RiskInputs, equity: str, detail: str, final: str) -> None:
    snapshot = replace(inputs, equity=D(equity), day_start_equity=D(equity), peak_equity=D(equity))
    result = rule_result(snapshot, "position_size", ROOMY)
    assert (result.passed, result.code, result.detail, result.limit) == (
        True,
        "ok",
        detail,
        D(50000),
    )
    decision = decide(snapshot, ROOMY)
    assert decision.final_quote == D(final)
    assert decision.verdict == ("reduced" if detail == "capped" else "approved")
    assert decision.requested_quote == raw_position_quote(D(equity), ROOMY)


# --- exposure: reduce to fit --------------------------------------------------------------------


def test_exposure_reduces_to_fit_with_the_default_limits(inputs: RiskInputs) -> None:
    # 30 % of 10000 = 3000 of room; the 4000 entry is reduced to 3000
    decision = decide(inputs, DEFAULTS)
    assert (decision.verdict, decision.requested_quote, decision.final_quote) == (
        "reduced",
        D(4000),
        D(3000),
    )
    exposure = by_rule(decision)["exposure"]
    assert (exposure.passed, exposure.observed, exposure.limit) == (True, D(40), D(30))
    assert exposure.detail == "reduced to 3000"


@pytest.mark.parametrize(
    ("exposure", "passed", "final"),
    [("2899.99", True, "100.01"), ("2900", True, "100"), ("2900.01", False, "0")],
)
def test_exposure_room_at_the_minimum_order(
    inputs: RiskInputs, exposure: str, passed: bool, final: str
) -> None:
    snapshot = replace(inputs, exposure_quote=D(exposure))
    result = rule_result(snapshot, "exposure")
    assert result.passed is passed
    assert result.code == ("ok" if passed else "exposure")
    decision = decide(snapshot, DEFAULTS)
    assert decision.final_quote == D(final)
    assert decision.verdict == ("reduced" if passed else "rejected")


def test_exposure_already_over_the_limit_rejects(inputs: RiskInputs) -> None:
    decision = decide(replace(inputs, exposure_quote=D(3500)), DEFAULTS)
    assert decision.verdict == "rejected"
    assert failed_codes(decision) == ["exposure"]
    assert allowed_exposure_quote(replace(inputs, exposure_quote=D(3500)), DEFAULTS) == D(-500)


def test_exposure_that_fits_exactly_is_not_reduced(inputs: RiskInputs) -> None:
    limits = RiskLimits(max_exposure_pct=D(40))  # room 4000 == requested 4000
    decision = decide(inputs, limits)
    assert (decision.verdict, decision.final_quote) == ("approved", D(4000))
    assert by_rule(decision)["exposure"].detail == ""


# --- the seed's scenario and the what-if --------------------------------------------------------


def test_seed_spread_scenario_rejects_with_the_full_trace(inputs: RiskInputs) -> None:
    wide = replace(inputs, bid=D("99.94"), ask=D("100.06"))  # 0.12 % everywhere
    decision = decide(wide, DEFAULTS)
    assert (decision.verdict, decision.final_quote) == ("rejected", D(0))
    assert decision.requested_quote == D(4000)
    assert [check.rule for check in decision.checks] == list(RULE_ORDER)
    spread = by_rule(decision)["spread"]
    assert (spread.passed, spread.code, spread.observed, spread.limit) == (
        False,
        "spread",
        D("0.12"),
        D("0.1"),
    )
    others = [check for check in decision.checks if check.rule != "spread"]
    assert len(others) == len(RULE_ORDER) - 1
    assert all(check.passed and check.code == "ok" for check in others)
    assert all(check.observed is not None and check.limit is not None for check in others)


def test_what_if_a_wider_spread_limit_approves(inputs: RiskInputs) -> None:
    wide = replace(inputs, bid=D("99.94"), ask=D("100.06"))
    assert decide(wide, ROOMY).verdict == "rejected"
    what_if = ROOMY.model_copy(update={"max_spread_pct": D("0.15")})
    decision = decide(wide, RiskLimits.model_validate(what_if.model_dump()))
    assert (decision.verdict, decision.final_quote) == ("approved", D(4000))
    assert by_rule(decision)["spread"].limit == D("0.15")
    # with the default exposure limit the same what-if is accepted, reduced to fit
    relaxed = RiskLimits(max_spread_pct=D("0.15"))
    assert (decide(wide, relaxed).verdict, decide(wide, relaxed).final_quote) == (
        "reduced",
        D(3000),
    )


# --- zero or negative equity --------------------------------------------------------------------


@pytest.mark.parametrize("equity", ["0", "-50"])
def test_no_equity_rejects_without_crashing(inputs: RiskInputs, equity: str) -> None:
    broke = replace(inputs, equity=D(equity))
    decision = decide(broke, DEFAULTS)
    assert (decision.verdict, decision.final_quote, decision.requested_quote) == (
        "rejected",
        D(0),
        D(0),
    )
    assert failed_codes(decision) == ["no_equity"] * 4  # breaker, drawdown, size, exposure
    assert "received" in by_rule(decision)["circuit_breaker"].detail


@pytest.mark.parametrize("field", ["day_start_equity", "peak_equity"])
def test_non_positive_reference_equity_is_no_equity(inputs: RiskInputs, field: str) -> None:
    changes: dict[str, Any] = {field: D(0)}
    decision = decide(replace(inputs, **changes), DEFAULTS)
    assert decision.verdict == "rejected"
    assert failed_codes(decision) == ["no_equity"]
