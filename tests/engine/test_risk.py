"""The risk engine's decisions: one check per rule in order, the record and its round trip, exact
decimals, the trading states, and properties of the verdict (bounds, consistency, and a stored
decision re-decided from its stored inputs being the same decision).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from risk_testkit import DEFAULTS, NS, D, decide, failed_codes, healthy_inputs, signal

from cdb_cli.engine.events import (
    CheckResult,
    RiskDecision,
    SignalSide,
    decode_event,
    encode_event,
)
from cdb_cli.engine.risk import (
    ORDER_VERDICTS,
    RULE_ORDER,
    RiskEngine,
    RiskInputs,
    RiskLimits,
    TradingState,
    allowed_exposure_quote,
    next_state,
    raw_position_quote,
)


@pytest.fixture
def inputs() -> RiskInputs:
    return healthy_inputs()


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
    sig, engine = signal(), RiskEngine(DEFAULTS)
    outcome = engine.verdict(sig.side, inputs)
    decision = engine.record(sig, inputs, outcome, ts_event=42, source="risk-1")
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


def test_a_store_outage_refuses_entries_and_lets_exits_go(inputs: RiskInputs) -> None:
    """With the store down an entry gets one more check, ``store``, that fails (and only then:
    every other decision has one check per rule); an exit is decided as ever, and the stored
    inputs say the store was down, so a re-decision from them is the same decision."""
    down = replace(inputs, store_down=True, position_quote_for_symbol=D(500))
    entry = decide(down, DEFAULTS, SignalSide.BUY)
    assert entry.verdict == "rejected"
    assert failed_codes(entry) == ["store_down"]
    assert tuple(check.rule for check in entry.checks) == (*RULE_ORDER, "store")
    assert entry.state["store_down"] == "true"
    assert RiskInputs.from_strings(entry.state) == down
    exit_ = decide(down, DEFAULTS, SignalSide.EXIT)
    assert exit_.verdict == "approved"
    assert tuple(check.rule for check in exit_.checks) == RULE_ORDER
    assert "store_down" not in decide(inputs, DEFAULTS, SignalSide.BUY).state


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
    decision = decide(snapshot, limits, side, ts_event=1)
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
def test_property_a_stored_decision_re_decided_from_its_inputs_is_the_same_decision(
    limits: RiskLimits, snapshot: RiskInputs, side: SignalSide
) -> None:
    """What ``cdb risk explain --what-if`` relies on: the inputs a decision stores, read back and
    decided again under the same limits, give the same verdict, sizes and trace (value and
    exponent), and an operator's exit is sized as a strategy's exit would be."""
    engine = RiskEngine(limits)
    stored = decode_event(encode_event(decide(snapshot, limits, side)))
    assert isinstance(stored, RiskDecision)
    verdict, requested, final, checks = engine.verdict(
        stored.side, RiskInputs.from_strings(stored.state)
    )
    assert (verdict, str(requested), str(final)) == (
        stored.verdict,
        str(stored.requested_quote),
        str(stored.final_quote),
    )
    again = [CheckResult(**fields).model_dump_json() for fields in checks]
    assert again == [check.model_dump_json() for check in stored.checks]
    sized = engine.sizes(side, snapshot)
    assert str(sized[0]) == str(requested)
    if verdict in ORDER_VERDICTS:
        assert str(sized[1]) == str(final)
