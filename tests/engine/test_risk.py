"""The risk engine: each rule at, just below and just above its limit, the seed's spread scenario,
reduce-to-fit, the size bounds, exits, the trading states, the complete trace, and properties.

Boundary semantics under test: a value *equal* to its limit passes; only a value strictly beyond
it fails. Numbers are chosen so the expected values are exact decimals (no rounding anywhere).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cdb_cli.engine.events import (
    CheckResult,
    RiskDecision,
    SignalSide,
    TradingSignal,
    decode_event,
    encode_event,
)
from cdb_cli.engine.risk import (
    NOT_APPLICABLE_TO_EXITS,
    NOTHING_HELD,
    NOTHING_HELD_DETAIL,
    RULE_ORDER,
    RiskEngine,
    RiskInputs,
    RiskLimits,
    TradingState,
    allowed_exposure_quote,
    capped_position_quote,
    check_circuit_breaker,
    check_daily_drawdown,
    check_exit_position,
    check_exposure,
    check_position_size,
    check_spread,
    check_stale_data,
    is_reduction,
    next_state,
    normalize_decision,
    raw_position_quote,
)

D = Decimal
NS = 1_000_000_000
DEFAULTS = RiskLimits()
ROOMY = RiskLimits(max_exposure_pct=D(50))
"""Defaults except 50 % exposure, so the default 4000 entry on 10000 equity fits uncut."""


@pytest.fixture
def inputs() -> RiskInputs:
    """A healthy account: 10000 equity, flat, tight book (0.02 %), fresh price (1 s)."""
    return RiskInputs(
        equity=D(10000),
        day_start_equity=D(10000),
        peak_equity=D(10000),
        exposure_quote=D(0),
        position_quote_for_symbol=D(0),
        bid=D("99.99"),
        ask=D("100.01"),
        last_price_age_ns=1 * NS,
        trading_state=TradingState.ACTIVE,
    )


def signal(side: SignalSide = SignalSide.BUY) -> TradingSignal:
    return TradingSignal(
        symbol="BTCUSDT",
        ts_event=1_700_000_000 * NS,
        source="signals",
        side=side,
        strategy="ema_cross",
        price=D(100),
        strength=0.5,
    )


def decide(
    inputs: RiskInputs, limits: RiskLimits = ROOMY, side: SignalSide = SignalSide.BUY
) -> RiskDecision:
    return RiskEngine(limits).evaluate(signal(side), inputs, ts_event=1_700_000_001 * NS)


def by_rule(decision: RiskDecision) -> dict[str, CheckResult]:
    return {check.rule: check for check in decision.checks}


def failed_codes(decision: RiskDecision) -> list[str]:
    return [check.code for check in decision.checks if not check.passed]


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
    result = check_circuit_breaker(replace(inputs, equity=D(equity)), DEFAULTS)
    assert result.rule == "circuit_breaker"
    assert result.passed is passed
    assert result.code == ("ok" if passed else "circuit_breaker")
    assert result.observed == D(observed)
    assert result.limit == D(10)


def test_circuit_breaker_fails_while_halted_even_without_loss(inputs: RiskInputs) -> None:
    result = check_circuit_breaker(replace(inputs, trading_state=TradingState.HALTED), DEFAULTS)
    assert (result.passed, result.code, result.observed) == (False, "circuit_breaker", D(0))


@pytest.mark.parametrize(
    ("equity", "passed", "observed"),
    [("9501", True, "4.99"), ("9500", True, "5"), ("9499", False, "5.01")],
)
def test_daily_drawdown_boundary(
    inputs: RiskInputs, equity: str, passed: bool, observed: str
) -> None:
    result = check_daily_drawdown(replace(inputs, equity=D(equity)), DEFAULTS)
    assert result.passed is passed
    assert result.code == ("ok" if passed else "daily_drawdown")
    assert (result.observed, result.limit) == (D(observed), D(5))


def test_daily_drawdown_sticks_while_reducing(inputs: RiskInputs) -> None:
    result = check_daily_drawdown(replace(inputs, trading_state=TradingState.REDUCING), DEFAULTS)
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
    result = check_stale_data(replace(inputs, last_price_age_ns=age_ns), DEFAULTS)
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
    result = check_spread(replace(inputs, bid=D(bid), ask=D(ask)), DEFAULTS)
    assert result.passed is passed
    assert result.code == ("ok" if passed else "spread")
    assert (result.observed, result.limit) == (D(observed), D("0.1"))


@pytest.mark.parametrize(
    ("bid", "ask"), [("100", "100"), ("100.02", "100"), ("0", "100"), ("-1", "100")]
)
def test_crossed_or_non_positive_book_is_bad_quote(inputs: RiskInputs, bid: str, ask: str) -> None:
    result = check_spread(replace(inputs, bid=D(bid), ask=D(ask)), DEFAULTS)
    assert (result.passed, result.code, result.observed) == (False, "bad_quote", None)
    assert "received" in result.detail
    decision = decide(replace(inputs, bid=D(bid), ask=D(ask)))
    assert decision.verdict == "rejected"
    assert failed_codes(decision) == ["bad_quote"]


def test_position_size_formula(inputs: RiskInputs) -> None:
    # equity 10000, risk per trade 2 %, position risk 5 %: 10000 * 2 / 5 = 4000
    assert raw_position_quote(D(10000), DEFAULTS) == D(4000)
    result = check_position_size(inputs, DEFAULTS)
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
    result = check_position_size(snapshot, ROOMY)
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
    result = check_position_size(snapshot, ROOMY)
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
    result = check_exposure(D(4000), snapshot, DEFAULTS)
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
    "changes",
    [
        {"trading_state": TradingState.HALTED},
        {"bid": D("99.94"), "ask": D("100.06"), "last_price_age_ns": 31 * NS},
        {"position_quote_for_symbol": D("0.000000009")},  # below the 1e-8 size grid: dust
        {"position_quote_for_symbol": D("-5")},
    ],
)
def test_nothing_held_takes_precedence_over_failing_checks(
    inputs: RiskInputs, changes: dict[str, Any]
) -> None:
    """An exit while flat during a halt (or on stale data, a wide spread) is still nothing held;
    the failing checks stay in the trace as they were."""
    snapshot = replace(inputs, **changes)
    decision = decide(snapshot, DEFAULTS, SignalSide.EXIT)
    assert (decision.verdict, decision.final_quote) == ("nothing_held", D(0))
    expected = [
        c.code for c in RiskEngine(DEFAULTS).checks(SignalSide.EXIT, snapshot) if not c.passed
    ]
    assert failed_codes(decision) == expected
    assert "nothing_held" not in failed_codes(decision)
    if "trading_state" in changes:
        assert failed_codes(decision) == ["circuit_breaker"]


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


# --- the trace, the record, the states ----------------------------------------------------------


@pytest.mark.parametrize("side", list(SignalSide))
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"bid": D("99.94"), "ask": D("100.06")},
        {"equity": D(0)},
        {"trading_state": TradingState.HALTED},
        {"exposure_quote": D(9000), "position_quote_for_symbol": D(100)},
    ],
)
def test_every_decision_has_one_check_per_rule_in_order(
    inputs: RiskInputs, side: SignalSide, changes: dict[str, Any]
) -> None:
    decision = decide(replace(inputs, **changes), DEFAULTS, side)
    assert tuple(check.rule for check in decision.checks) == RULE_ORDER


def test_decision_records_signal_inputs_and_round_trips(inputs: RiskInputs) -> None:
    sig = signal()
    decision = RiskEngine(DEFAULTS).evaluate(sig, inputs, ts_event=42, source="risk-1")
    assert (decision.signal_id, decision.symbol, decision.side) == (sig.event_id, "BTCUSDT", "buy")
    assert (decision.ts_event, decision.source) == (42, "risk-1")
    assert decision.state == {
        "equity": "10000",
        "day_start_equity": "10000",
        "peak_equity": "10000",
        "exposure_quote": "0",
        "position_quote_for_symbol": "0",
        "bid": "99.99",
        "ask": "100.01",
        "last_price_age_ns": "1000000000",
        "trading_state": "active",
    }
    assert decode_event(encode_event(decision)) == decision


def test_decimal_exactness(inputs: RiskInputs) -> None:
    # 0.1 + 0.2 is exactly 0.3 in Decimal: 30 % of 10000 minus 2899.7 leaves exactly 100.3
    snapshot = replace(inputs, exposure_quote=D("2899.4") + D("0.1") + D("0.2"))
    decision = decide(snapshot, DEFAULTS)
    assert decision.final_quote == D("100.3")
    assert isinstance(decision.final_quote, Decimal)
    assert raw_position_quote(D("333.33"), DEFAULTS) == D("133.332")
    assert all(
        isinstance(value, Decimal)
        for check in decision.checks
        for value in (check.observed, check.limit)
    )


@pytest.mark.parametrize(
    ("state", "equity", "day_start", "expected"),
    [
        (TradingState.ACTIVE, "10000", "10000", TradingState.ACTIVE),
        (TradingState.ACTIVE, "9500", "10000", TradingState.ACTIVE),  # 5 % exactly
        (TradingState.ACTIVE, "9499", "10000", TradingState.REDUCING),
        (TradingState.ACTIVE, "9000", "9000", TradingState.ACTIVE),  # 10 % from peak exactly
        (TradingState.ACTIVE, "8999", "9000", TradingState.HALTED),
        (TradingState.REDUCING, "10000", "10000", TradingState.REDUCING),  # sticks for the day
        (TradingState.REDUCING, "8999", "9000", TradingState.HALTED),
        (TradingState.HALTED, "10000", "10000", TradingState.HALTED),  # sticks until reset
        (TradingState.ACTIVE, "0", "10000", TradingState.HALTED),
    ],
)
def test_next_state(
    inputs: RiskInputs, state: TradingState, equity: str, day_start: str, expected: TradingState
) -> None:
    snapshot = replace(inputs, trading_state=state, equity=D(equity), day_start_equity=D(day_start))
    assert next_state(snapshot, DEFAULTS) is expected


def test_state_from_next_state_blocks_entries_after_recovery(inputs: RiskInputs) -> None:
    hit = replace(inputs, equity=D(9400))
    state = next_state(hit, DEFAULTS)
    recovered = replace(inputs, trading_state=state)  # equity back to 10000 the same day
    assert failed_codes(decide(recovered, DEFAULTS)) == ["daily_drawdown"]


# --- properties ---------------------------------------------------------------------------------

money = st.decimals(min_value=-1000, max_value=300_000, places=2, allow_nan=False)
positive_money = st.decimals(min_value=0, max_value=300_000, places=2, allow_nan=False)
price = st.decimals(min_value=-1, max_value=200, places=4, allow_nan=False)
percent = st.decimals(min_value=D("0.01"), max_value=100, places=2, allow_nan=False)


@st.composite
def limits_strategy(draw: st.DrawFn) -> RiskLimits:
    low = draw(st.decimals(min_value=1, max_value=1000, places=2))
    high = draw(st.decimals(min_value=low, max_value=100_000, places=2))
    return RiskLimits(
        daily_drawdown_pct=draw(percent),
        max_exposure_pct=draw(percent),
        circuit_breaker_pct=draw(percent),
        min_position_quote=low,
        max_position_quote=high,
        max_spread_pct=draw(percent),
        stale_data_seconds=draw(st.integers(min_value=1, max_value=3600)),
        risk_per_trade_pct=draw(percent),
        position_risk_pct=draw(percent),
    )


inputs_strategy = st.builds(
    RiskInputs,
    equity=money,
    day_start_equity=money,
    peak_equity=money,
    exposure_quote=positive_money,
    position_quote_for_symbol=money,
    bid=price,
    ask=price,
    last_price_age_ns=st.integers(min_value=0, max_value=4000 * NS),
    trading_state=st.sampled_from(TradingState),
)


@settings(max_examples=400, deadline=None)
@given(limits=limits_strategy(), snapshot=inputs_strategy, side=st.sampled_from(SignalSide))
def test_property_bounds_and_verdict_consistency(
    limits: RiskLimits, snapshot: RiskInputs, side: SignalSide
) -> None:
    decision = RiskEngine(limits).evaluate(signal(side), snapshot, ts_event=1)
    assert tuple(check.rule for check in decision.checks) == RULE_ORDER
    held = decision.verdict == "nothing_held"
    assert held == (side is SignalSide.EXIT and snapshot.position_quote_for_symbol < D("1e-8"))
    if held:
        assert decision.requested_quote == decision.final_quote == 0
        return
    rejected = decision.verdict == "rejected"
    any_failed = not all(check.passed for check in decision.checks)
    assert rejected == (decision.final_quote == 0) == any_failed
    assert decision.final_quote <= decision.requested_quote
    if side is SignalSide.BUY:
        assert decision.final_quote <= limits.max_position_quote
        assert decision.final_quote <= max(D(0), allowed_exposure_quote(snapshot, limits))
        if not rejected:
            assert decision.final_quote >= limits.min_position_quote
    else:
        assert decision.final_quote <= max(D(0), snapshot.position_quote_for_symbol)
    if decision.verdict == "reduced":
        assert 0 < decision.final_quote < decision.requested_quote


@settings(max_examples=400, deadline=None)
@given(limits=limits_strategy(), snapshot=inputs_strategy, side=st.sampled_from(SignalSide))
def test_property_one_pass_verdict_matches_each_rule_and_sizes(
    limits: RiskLimits, snapshot: RiskInputs, side: SignalSide
) -> None:
    """verdict() computes each size once and hands it to the rules; its trace and sizes are the
    very ones (value and exponent) the public rule functions and sizes() give on their own."""
    engine = RiskEngine(limits)
    verdict, requested, final, fields = engine.verdict(side, snapshot)
    if side is SignalSide.BUY:
        expected = (
            check_circuit_breaker(snapshot, limits),
            check_daily_drawdown(snapshot, limits),
            check_stale_data(snapshot, limits),
            check_spread(snapshot, limits),
            check_position_size(snapshot, limits),
            check_exposure(capped_position_quote(snapshot.equity, limits), snapshot, limits),
        )
    else:
        expected = (
            check_circuit_breaker(snapshot, limits),
            CheckResult(
                rule="daily_drawdown", code="ok", passed=True, detail=NOT_APPLICABLE_TO_EXITS
            ),
            check_stale_data(snapshot, limits),
            check_spread(snapshot, limits),
            check_exit_position(snapshot),
            CheckResult(rule="exposure", code="ok", passed=True, detail=NOT_APPLICABLE_TO_EXITS),
        )
    got = tuple(CheckResult(**check) for check in fields)
    assert [c.model_dump_json() for c in got] == [c.model_dump_json() for c in expected]
    sized = engine.sizes(side, snapshot)
    assert str(requested) == str(sized[0])
    if verdict in ("rejected", "nothing_held"):
        assert final == 0
    else:
        assert str(final) == str(sized[1])
