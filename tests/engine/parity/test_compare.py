"""Matching and attribution of ``cdb parity`` (engine/parity) on hand-made sides: every cause is
given only with its evidence, and the parts always sum to the difference exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdb_cli.engine.parity import (
    DecisionRow,
    Market,
    OrderFills,
    ParityInput,
    ParityReport,
    Side,
    Window,
    compare,
)
from cdb_cli.engine.records import FillRecord, OrderRecord, OrderStatus

SYMBOL = "BTCUSDT"
S = 1_000_000_000
BAR = 100 * S
START, END = 0, 1_000 * S
D = Decimal


def market(*, quotes: bool = True) -> Market:
    """Trades every second from 100 rising a cent a second; with ``quotes`` a touch 0.01 wide
    around each trade, quoted just before it."""
    m = Market(stale_ns=5 * S)
    for second in range(1, 1_000):
        price = D(100) + D(second) / 100
        if quotes:
            m.add_quote(SYMBOL, second * S, price - D("0.005"), price + D("0.005"))
        m.add_trade(SYMBOL, second * S, price)
    return m


def decision(decision_id: str, *, quote: str | None = "1000", verdict: str = "approved",
             side: str = "buy", bar: int = BAR, equity: str = "10000") -> DecisionRow:  # fmt: skip
    return DecisionRow(
        symbol=SYMBOL,
        bar_ns=bar,
        side=side,
        verdict=verdict,
        quote=None if quote is None else D(quote),
        ts_ns=bar + S // 10,
        decision_id=decision_id,
        equity=D(equity),
    )


def order(
    decision_id: str,
    fills: list[tuple[int, str, str, str]],
    *,
    side: str = "BUY",
    status: OrderStatus = "FILLED",
    note: str = "",
    fee_asset: str = "USDT",
) -> OrderFills:
    """An order with fills (time, quantity, price, fee)."""
    record = OrderRecord(
        client_order_id=f"o{decision_id}",
        decision_id=decision_id,
        symbol=SYMBOL,
        side=side,
        order_type="MARKET",
        quote_amount=D(1000),
        status=status,
        ts_created=BAR,
        ts_updated=BAR,
        mode="paper",
    )
    records = tuple(
        FillRecord(
            fill_id=f"f{decision_id}-{i}",
            client_order_id=record.client_order_id,
            symbol=SYMBOL,
            side=side,
            quantity=D(q),
            price=D(p),
            fee=D(fee),
            fee_asset=fee_asset,
            ts_event=ts,
            liquidity="taker",
        )
        for i, (ts, q, p, fee) in enumerate(fills)
    )
    return OrderFills(record, records, note)


def compared(
    run: Side, replay: Side, *, windows: list[Window] | None = None, paper: bool = True,
    m: Market | None = None,
) -> ParityReport:  # fmt: skip
    return compare(
        ParityInput(
            run=run,
            replay=replay,
            market=m or market(),
            windows=windows or [],
            segments=[(START, END)],
            run_positions={START: {}},
            replay_positions={START: {}},
            paper_venue=paper,
            slippage_band_pct=(D("0.1"), D("0.5")),
        )
    )


def sides(a: OrderFills | None, b: OrderFills | None, **rows: str) -> tuple[Side, Side]:
    run = Side([decision("a", **rows)], {"a": a} if a else {})
    replay = Side([decision("b", **rows)], {"b": b} if b else {})
    if b is not None:
        b.order.__dict__["decision_id"] = "b"
    return run, replay


def exact(report: ParityReport) -> None:
    assert report.difference == sum(report.by_cause.values(), D(0))


def near(value: Decimal) -> Decimal:
    """An attributed part without the VWAP division's rounding (28 digits)."""
    return value.quantize(D("1e-12"))


def test_the_same_fills_on_both_sides_differ_in_nothing() -> None:
    fill = [(101 * S, "9", "101.015", "0.45")]
    run, replay = sides(order("a", fill), order("b", fill))
    report = compared(run, replay)
    assert [d.outcome for d in report.decisions] == ["equal"]
    assert report.differences == []
    assert report.difference == 0
    assert report.pnl_run == report.pnl_replay != 0
    assert report.parity_pct(outside_windows=True) == 100


def test_a_later_fill_at_a_higher_touch_is_latency() -> None:
    # paper fills at the ask of the quote before each trade: 101.015 at 101 s, 101.035 at 103 s
    run, replay = sides(
        order("a", [(103 * S, "9", "101.035", "0.45")]),
        order("b", [(101 * S, "9", "101.015", "0.45")]),
    )
    report = compared(run, replay)
    assert report.by_cause["latency"] == D("-0.18")  # paid 2 cents more on 9 units
    assert "unexplained" not in report.by_cause
    assert report.fills[0].price_difference_bp is not None
    exact(report)


def test_a_paper_fill_where_no_trade_was_stored_is_unexplained() -> None:
    run, replay = sides(
        order("a", [(101 * S + 500_000_000, "9", "101.015", "0.45")]),
        order("b", [(102 * S, "9", "101.025", "0.45")]),
    )
    report = compared(run, replay)
    assert report.by_cause["unexplained"] == D("0.09")
    assert "shows no trade" in report.differences[0].detail
    assert report.fills[0].unexplained_bp > 0
    exact(report)


def test_a_paper_fill_off_the_touch_is_unexplained_slippage() -> None:
    run, replay = sides(
        order("a", [(101 * S, "9", "101.115", "0.45")]),  # 10 cents over the ask
        order("b", [(101 * S, "9", "101.015", "0.45")]),
    )
    report = compared(run, replay)
    assert report.by_cause["unexplained"] == D("-0.90")
    assert "slippage" not in report.by_cause
    exact(report)


def test_a_live_fill_beyond_the_touch_is_slippage_when_the_market_was_seen() -> None:
    run, replay = sides(
        order("a", [(101 * S, "9", "101.115", "0.45")]),
        order("b", [(101 * S, "9", "101.015", "0.45")]),
    )
    report = compared(run, replay, paper=False)
    assert report.by_cause["slippage"] == D("-0.90")
    assert "unexplained" not in report.by_cause
    exact(report)


def test_without_quotes_the_paper_slippage_band_is_allowed() -> None:
    # 0.2 % over the last trade (101.01) is in the 0.1-0.5 % band; 1 % is not
    inside, outside = D("101.01") * D("1.002"), D("101.01") * D("1.01")
    for price, explained in ((inside, True), (outside, False)):
        run, replay = sides(
            order("a", [(101 * S, "9", str(price), "0.45")]),
            order("b", [(101 * S, "9", "101.01", "0.45")]),
        )
        report = compared(run, replay, m=market(quotes=False))
        assert ("unexplained" in report.by_cause) is not explained
        exact(report)


def test_an_order_filled_in_parts_while_the_price_moved_is_partial_fill() -> None:
    run, replay = sides(
        order("a", [(101 * S, "4", "101.015", "0.2"), (104 * S, "5", "101.045", "0.25")]),
        order("b", [(101 * S, "9", "101.015", "0.45")]),
    )
    report = compared(run, replay, paper=False)
    assert near(report.by_cause["partial_fill"]) == D("-0.15")  # 5 units 3 cents higher
    assert "unexplained" not in report.by_cause
    exact(report)


def test_less_filled_in_parts_is_partial_fill_too() -> None:
    run, replay = sides(
        order("a", [(101 * S, "4", "101.015", "0.2"), (102 * S, "2", "101.025", "0.1")],
              status="PARTIALLY_CANCELED"),
        order("b", [(101 * S, "9", "101.015", "0.45")]),
    )  # fmt: skip
    report = compared(run, replay, paper=False)
    assert report.by_cause["partial_fill"] < 0  # 3 units fewer of a rising market
    exact(report)


def test_a_fee_in_another_asset_is_named() -> None:
    run, replay = sides(
        order("a", [(101 * S, "9", "101.015", "0.02")], fee_asset="MX"),
        order("b", [(101 * S, "9", "101.015", "0.45")]),
    )
    report = compared(run, replay, paper=False)
    assert report.by_cause["fees"] == D("0.45")  # the quote paid no fee in the run
    assert "0.02 MX" in report.differences[0].detail
    exact(report)


def test_a_fill_only_in_the_re_run_of_an_order_the_venue_rejected_is_venue_reject() -> None:
    rejected = order("a", [], status="REJECTED", note="rejected at the venue: 30004 balance")
    run, replay = sides(rejected, order("b", [(101 * S, "9", "101.015", "0.45")]))
    report = compared(run, replay, paper=False)
    assert set(report.by_cause) == {"venue_reject"}
    assert "30004" in report.differences[0].detail
    exact(report)


def test_a_decision_only_in_the_run_inside_an_operator_window_is_named() -> None:
    run = Side([decision("a")], {"a": order("a", [(101 * S, "9", "101.015", "0.45")])})
    replay = Side([decision("b", verdict="rejected", quote=None)], {})
    window = Window("operator", BAR - S, BAR + S, "halted by the operator, then reset")
    report = compared(run, replay, windows=[window])
    assert [(d.outcome, d.cause) for d in report.decisions] == [("different", "operator")]
    assert set(report.by_cause) == {"operator"}
    assert report.parity_pct(outside_windows=False) == 0
    assert report.parity_pct(outside_windows=True) == 100
    exact(report)


def test_a_size_that_differs_with_the_equity_seen_is_portfolio() -> None:
    run = Side([decision("a", quote="999", equity="9990")], {})
    replay = Side([decision("b", quote="1000")], {})
    report = compared(run, replay)
    assert [(d.outcome, d.cause) for d in report.decisions] == [("different", "portfolio")]
    assert "equity 9990" in report.decisions[0].detail


def test_the_same_equity_and_another_size_is_unexplained() -> None:
    run = Side([decision("a", quote="999")], {})
    replay = Side([decision("b", quote="1000")], {})
    report = compared(run, replay)
    assert report.decisions[0].cause == "unexplained"
    assert report.parity_pct(outside_windows=True) == 0


@given(
    delay=st.integers(0, 20),
    parts=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 9)), min_size=1, max_size=4),
    extra_cents=st.integers(-5, 5),
    paper=st.booleans(),
    sell=st.booleans(),
)
def test_the_parts_always_sum_to_the_difference(
    delay: int, parts: list[tuple[int, int]], extra_cents: int, paper: bool, sell: bool
) -> None:
    side = "SELL" if sell else "BUY"
    fills = []
    for after, quantity in parts:
        ts = (101 + delay + after) * S
        price = D(100) + D(101 + delay + after) / 100 + D(extra_cents) / 100
        fills.append((ts, str(quantity), str(price), str(D(quantity) / 10)))
    a = order("a", fills, side=side)
    b = order("b", [(101 * S, "9", "101.015", "0.45")], side=side)
    run, replay = sides(a, b, side="exit" if sell else "buy")
    exact(compared(run, replay, paper=paper))


@pytest.mark.parametrize("outcome", ["only_run", "only_replay"])
def test_a_decision_on_one_side_only_is_listed(outcome: str) -> None:
    rows = [decision("a")]
    run = Side(rows if outcome == "only_run" else [], {})
    replay = Side(rows if outcome == "only_replay" else [], {})
    report = compared(run, replay)
    assert [d.outcome for d in report.decisions] == [outcome]
    assert report.differences[0].cause == "unexplained"


def test_a_new_segment_knows_no_quote_until_one_comes() -> None:
    m = Market(stale_ns=5 * S)
    m.add_quote(SYMBOL, 1 * S, D("99.9"), D("100.1"))
    m.add_trade(SYMBOL, 2 * S, D(100))
    m.begin_segment(10 * S)  # a restart: the new pipeline has no quote
    m.add_trade(SYMBOL, 11 * S, D(101))
    m.add_quote(SYMBOL, 12 * S, D("101.9"), D("102.1"))
    m.add_trade(SYMBOL, 13 * S, D(102))
    assert m.has_quote(SYMBOL, 2 * S)
    assert m.reference(SYMBOL, True, 2 * S) == D("100.1")
    assert not m.has_quote(SYMBOL, 11 * S)
    assert m.reference(SYMBOL, True, 11 * S) == D(101)  # the trade's price: the band applies
    assert m.reference(SYMBOL, False, 13 * S) == D("101.9")
