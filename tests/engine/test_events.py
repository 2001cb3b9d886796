"""The events' wire form: every type reads back as written, the envelope is the documented one
(whoever wrote it), and a bad envelope is refused with a message that says what is wrong."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from cdb_cli.engine.errors import MalformedEvent
from cdb_cli.engine.events import (
    EVENT_TYPES,
    Bar,
    CheckResult,
    Condition,
    Event,
    ExecutionReport,
    HealthReport,
    OrderApproved,
    QuoteTick,
    RiskDecision,
    Side,
    SignalSide,
    StrategyTrace,
    TradeTick,
    TradingSignal,
    decode_event,
    encode_event,
)

T0 = 1_767_225_600_000_000_000
BASE = {"symbol": "BTCUSDT", "ts_event": T0}

EVENTS: list[Event] = [
    TradeTick(
        **BASE, source="mexc", price=Decimal("87123.45"), quantity=Decimal("0.00012"),
        aggressor=Side.SELL, trade_id="t-1",
    ),
    QuoteTick(
        **BASE, source="mexc", bid=Decimal("87123.4"), ask=Decimal("87123.5"),
        bid_size=Decimal("1.5"), ask_size=Decimal(0),
    ),
    Bar(
        **BASE, source="marketdata", interval="1s", open=Decimal(1), high=Decimal("2.5"),
        low=Decimal("0.5"), close=Decimal(2), volume=Decimal("10.000"), closed_at=T0 + 1,
    ),
    TradingSignal(
        **BASE, source="ema_cross", side=SignalSide.BUY, strategy="ema_cross",
        price=Decimal("87123.45"), strength=0.75,
        indicators={"ema_fast": 87100.5, "rsi": 61.25, "volume_ratio": 1e-9},
        bar_id="bar-1", trace_id="r1-t1-BTCUSDT",
    ),
    StrategyTrace(
        **BASE, source="signals", strategy="ema_cross", status="evaluated", close=87123.45,
        volume=0.5, gap_bars=2,
        conditions=(
            Condition(name="cross_up", value=-0.12, threshold=0.0, passed=False, text="no"),
            Condition(name="trend", value=-math.inf, threshold=None, passed=None),
        ),
        values={"rsi": 61.25, "volume_sma": math.inf}, signal="buy", signal_id="sig-1",
    ),
    RiskDecision(
        **BASE, source="risk", signal_id="sig-1", verdict="reduced", side=SignalSide.BUY,
        requested_quote=Decimal("500"), final_quote=Decimal("312.5"),
        checks=(
            CheckResult(rule="spread", code="ok", passed=True, observed=Decimal("0.01")),
            CheckResult(
                rule="exposure", code="exposure_reduced", passed=True,
                observed=Decimal("40.0"), limit=Decimal(30), detail="réduit: 30 % max",
            ),
        ),
        state={"equity": "10000.5", "trading_state": "running"},
    ),
    OrderApproved(
        **BASE, source="risk", decision_id="dec-1", side=Side.BUY,
        quote_amount=Decimal("312.5"), reference_price=Decimal("87123.45"),
    ),
    ExecutionReport(
        **BASE, source="paper", client_order_id="o-1", side=Side.BUY, status="FILLED",
        last_quantity=Decimal("0.003587"), last_price=Decimal("87123.45"),
        fee=Decimal("0.3125"), fee_asset="USDT",
    ),
    HealthReport(**BASE, source="risk", component="risk", status="ok", detail="progress b 1"),
]  # fmt: skip


def test_every_type_is_covered() -> None:
    assert {type(event) for event in EVENTS} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_an_event_reads_back_as_written(event: Event) -> None:
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_the_envelope_is_the_documented_one(event: Event) -> None:
    """Type, version and the data as JSON (money as strings): what any reader can parse."""
    assert json.loads(encode_event(event)) == {
        "type": event.TYPE,
        "v": event.VERSION,
        "data": event.model_dump(mode="json"),
    }


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_an_envelope_from_another_writer_reads_the_same(event: Event) -> None:
    """Other key order, whitespace, an extra envelope key, non-ASCII escaped: as Python's json
    writes it by default."""
    data = event.model_dump(mode="json")
    envelope = {"x-origin": "a script", "data": data, "v": event.VERSION, "type": event.TYPE}
    written = json.dumps(envelope)
    assert decode_event(written) == event
    assert decode_event(written.encode()) == event


def test_non_finite_indicators_read_back() -> None:
    """An indicator can be NaN or infinite: written as JSON's NaN/Infinity, not as null."""
    signal = TradingSignal(
        **BASE, source="s", side=SignalSide.EXIT, strategy="s", price=Decimal(1), strength=0.0,
        indicators={"rsi": math.nan, "ratio": math.inf, "low": -math.inf},
    )  # fmt: skip
    raw = encode_event(signal)
    assert b'"rsi":NaN' in raw
    assert b'"ratio":Infinity' in raw
    read = decode_event(raw)
    assert isinstance(read, TradingSignal)
    assert math.isnan(read.indicators["rsi"])
    assert read.indicators["ratio"] == math.inf
    assert read.indicators["low"] == -math.inf


def _trade_envelope(**changes: object) -> dict[str, object]:
    envelope: dict[str, object] = {
        "type": "market.trade",
        "v": 1,
        "data": EVENTS[0].model_dump(mode="json"),
    }
    envelope.update(changes)
    return envelope


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{nope", "Event is not valid JSON"),
        (b"\xff\xfe", "Event is not valid JSON"),
        (b"[1, 2]", "must be an object with 'type', 'v' and 'data'"),
        (json.dumps({"type": "market.trade", "v": 1}), "must be an object with 'type'"),
        (json.dumps(_trade_envelope(type="market.candle")), "Unknown event type 'market.candle'"),
        (json.dumps(_trade_envelope(v=2)), "has version 2; this cdb reads up to 1"),
        (json.dumps(_trade_envelope(v=0)), "has version 0"),
        (json.dumps(_trade_envelope(v="1")), "has version '1'"),
        (
            json.dumps(_trade_envelope(data={**EVENTS[0].model_dump(mode="json"), "ts_event": -1})),
            "'market.trade' is invalid at ts_event",
        ),
        (
            json.dumps(_trade_envelope(data={**EVENTS[0].model_dump(mode="json"), "x": 1})),
            "'market.trade' is invalid at x: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_envelope_is_refused_saying_why(raw: bytes | str, message: str) -> None:
    with pytest.raises(MalformedEvent, match=message) as caught:
        decode_event(raw)
    assert "\n" not in str(caught.value)
