"""The portfolio: hand-computed fills (buy, add, partial and full sell, fees in quote and base),
refusals (oversell, unknown fee asset), idempotence, the UTC day roll, peak and drawdown, the risk
view, and properties over random fill sequences: the Money invariants hold exactly after every
fill, and a restore from the store reproduces every observable value.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from market_testkit import fill as kit_fill

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import Side
from cdb_cli.engine.portfolio import NS_PER_DAY, Portfolio
from cdb_cli.engine.records import FillRecord, OrderRecord
from cdb_cli.engine.risk_inputs import RiskInputs, TradingState
from cdb_cli.engine.store_memory import InMemoryStore

D = Decimal
DAY0 = 20_000 * NS_PER_DAY  # some UTC midnight
_counter = iter(range(1, 10**9))


def fill(
    side: Side,
    quantity: str | Decimal,
    price: str | Decimal,
    *,
    symbol: str = "BTCUSDT",
    fee: str | Decimal = "0",
    fee_asset: str = "USDT",
    fill_id: str | None = None,
    ts: int = DAY0,
) -> FillRecord:
    n = next(_counter)
    return kit_fill(side, quantity, price, fill_id=fill_id or f"f{n}", client_order_id=f"o{n}",
                    symbol=symbol, fee=fee, fee_asset=fee_asset, ts=ts)  # fmt: skip


def observe(p: Portfolio) -> dict[str, Any]:
    """Every observable value (marks excluded: they are not persisted)."""
    per_symbol = {
        s: (
            p.quantity(s),
            p.positions[s].average_price,
            p.positions[s].realized_pnl,
            p.filled_quantity(s),
            p.position_value(s),
            p.unrealized_pnl(s),
        )
        for s in sorted(p.positions)
    }
    return {
        "cash": p.cash,
        "fees": p.fees_paid,
        "equity": p.equity(),
        "exposure": p.exposure(),
        "realized": p.realized_pnl(),
        "day": p.day,
        "day_start": p.day_start_equity,
        "peak": p.peak_equity,
        "symbols": per_symbol,
    }


def check_invariants(p: Portfolio, expected_net: dict[str, Decimal]) -> None:
    exposure = sum((p.position_value(s) for s in p.positions), D(0))
    unrealized = sum((p.unrealized_pnl(s) for s in p.positions), D(0))
    assert p.equity() == p.cash + exposure
    assert p.cash + exposure == p.starting_cash + p.realized_pnl() + unrealized - p.fees_paid
    for symbol, position in p.positions.items():
        assert position.quantity >= 0
        assert p.filled_quantity(symbol) == position.quantity
        assert expected_net.get(symbol, D(0)) == position.quantity
    assert p.peak_equity >= p.equity()


# --- hand-computed examples ----------------------------------------------------------------------


def test_buy_add_partial_sell_full_sell_with_quote_fees() -> None:
    p = Portfolio(D("50000"))
    assert p.apply_fill(fill(Side.BUY, "0.5", "20000", fee="10")) is True
    assert (p.cash, p.quantity("BTCUSDT"), p.fees_paid) == (D("39990"), D("0.5"), D("10"))
    assert p.positions["BTCUSDT"].average_price == D("20000")
    assert p.equity() == D("49990")  # unmarked: valued at its average entry
    assert p.unrealized_pnl("BTCUSDT") == 0

    p.apply_fill(fill(Side.BUY, "1.5", "24000"))
    assert p.cash == D("3990")
    assert p.quantity("BTCUSDT") == D("2")
    assert p.positions["BTCUSDT"].average_price == D("23000")  # (0.5*20000 + 1.5*24000) / 2

    p.mark("BTCUSDT", D("25000"))
    assert p.position_value("BTCUSDT") == D("50000")
    assert p.unrealized_pnl("BTCUSDT") == D("4000")
    assert p.equity() == D("53990")

    p.apply_fill(fill(Side.SELL, "0.5", "25000", fee="12.5"))
    assert p.cash == D("16477.5")  # 3990 + 12500 - 12.5
    assert p.positions["BTCUSDT"].realized_pnl == D("1000")  # (25000 - 23000) * 0.5
    assert p.quantity("BTCUSDT") == D("1.5")
    assert p.positions["BTCUSDT"].average_price == D("23000")
    assert p.fees_paid == D("22.5")

    p.apply_fill(fill(Side.SELL, "1.5", "22000"))
    assert p.cash == D("49477.5")
    assert p.positions["BTCUSDT"].realized_pnl == D("-500")  # 1000 + (22000 - 23000) * 1.5
    assert p.quantity("BTCUSDT") == 0
    assert p.positions["BTCUSDT"].average_price == 0
    assert p.exposure() == 0
    assert p.equity() == D("49477.5") == D("50000") - D("500") - D("22.5")


def test_fees_in_the_base_asset_move_quantity() -> None:
    p = Portfolio(D("10000"))
    p.apply_fill(fill(Side.BUY, "1", "2000", symbol="ETHUSDT", fee="0.001", fee_asset="ETH"))
    assert p.quantity("ETHUSDT") == D("0.999")
    assert p.cash == D("8000")
    assert p.fees_paid == D("2")  # 0.001 ETH at 2000
    assert p.positions["ETHUSDT"].average_price == D("2000")
    assert p.equity() == D("9998")

    p.apply_fill(fill(Side.SELL, "0.5", "2100", symbol="ETHUSDT", fee="0.0005", fee_asset="ETH"))
    assert p.quantity("ETHUSDT") == D("0.4985")  # 0.999 - 0.5 - 0.0005
    assert p.filled_quantity("ETHUSDT") == D("0.4985")
    assert p.cash == D("9050")
    assert p.positions["ETHUSDT"].realized_pnl == D("50.05")  # (2100 - 2000) * 0.5005
    assert p.fees_paid == D("3.05")
    assert p.equity() == D("10047") == D("10000") + D("50.05") - D("3.05")


def test_oversell_is_refused_and_changes_nothing() -> None:
    p = Portfolio(D("10000"))
    p.apply_fill(fill(Side.BUY, "1", "100"))
    before = observe(p)
    with pytest.raises(StateError, match=r"Cannot sell 1\.5 BTCUSDT .*holding 1"):
        p.apply_fill(fill(Side.SELL, "1.5", "100"))
    with pytest.raises(StateError, match=r"Cannot sell 1\.501 BTCUSDT"):
        p.apply_fill(fill(Side.SELL, "1.5", "100", fee="0.001", fee_asset="BTC"))
    with pytest.raises(StateError, match="ETHUSDT"):
        p.apply_fill(fill(Side.SELL, "1", "100", symbol="ETHUSDT"))
    assert observe(p) == before


def test_fees_in_a_third_asset_are_kept_apart() -> None:
    """MEXC's MX deduction: the fee comes out of the MX balance; cash and quantity are whole."""
    p = Portfolio(D("10000"))
    p.apply_fill(fill(Side.BUY, "1", "100", fee="0.04", fee_asset="MX"))
    p.apply_fill(fill(Side.SELL, "0.5", "110", fee="0.02", fee_asset="MX"))
    assert p.quantity("BTCUSDT") == D("0.5")
    assert p.cash == D("9955")  # -100 + 55, no fee taken
    assert p.fees_paid == 0
    assert p.other_fees == {"MX": D("0.06")}
    assert p.positions["BTCUSDT"].realized_pnl == D("5")
    assert p.equity() == D("10005") == D("10000") + D("5")  # the identity without them


def test_a_sell_fee_in_the_base_the_position_cannot_cover_is_kept_apart() -> None:
    """MX deduction on MXUSDT: selling the whole position, the venue takes the MX fee from the
    MX the account holds apart from it."""
    p = Portfolio(D("1000"))
    p.apply_fill(fill(Side.BUY, "100", "3", symbol="MXUSDT", fee="0.05", fee_asset="MX"))
    assert p.quantity("MXUSDT") == D("99.95")  # the buy's fee came out of what it bought
    p.apply_fill(fill(Side.SELL, "99.95", "3", symbol="MXUSDT", fee="0.04", fee_asset="MX"))
    assert p.quantity("MXUSDT") == 0
    assert p.other_fees == {"MX": D("0.04")}
    assert p.fees_paid == D("0.15")  # the buy's 0.05 MX at 3


def test_a_base_fee_eating_the_fill_is_refused() -> None:
    p = Portfolio(D("10000"))
    with pytest.raises(StateError, match="leaves nothing"):
        p.apply_fill(fill(Side.BUY, "1", "100", fee="1", fee_asset="BTC"))
    assert p.positions == {}
    assert p.cash == D("10000")


def test_duplicate_fill_id_is_ignored() -> None:
    p = Portfolio(D("1000"))
    first = fill(Side.BUY, "1", "100", fill_id="same")
    assert p.apply_fill(first) is True
    before = observe(p)
    assert p.apply_fill(first) is False
    assert p.apply_fill(fill(Side.BUY, "5", "1", fill_id="same")) is False
    assert observe(p) == before


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="received -1"):
        Portfolio(D("-1"))
    with pytest.raises(ValueError, match="received 0"):
        Portfolio(D("1")).mark("BTCUSDT", D("0"))


def test_day_rolls_at_utc_midnight() -> None:
    p = Portfolio(D("1000"))
    p.apply_fill(fill(Side.BUY, "1", "100"))
    assert p.roll_day(DAY0 - 1) is True  # first call starts a day
    assert p.day_start_equity == D("1000")
    p.mark("BTCUSDT", D("80"))
    assert p.roll_day(DAY0 - 1) is False
    assert p.roll_day(DAY0 - 2) is False  # an older timestamp never rolls back
    assert p.day_start_equity == D("1000")
    assert p.daily_drawdown_pct() == D("2")
    assert p.roll_day(DAY0) is True  # 00:00:00.000000000 UTC is the new day
    assert p.day == DAY0 // NS_PER_DAY
    assert p.day_start_equity == D("980")
    assert p.daily_drawdown_pct() == 0
    assert p.roll_day(DAY0 + NS_PER_DAY - 1) is False
    assert p.roll_day(DAY0 + 3 * NS_PER_DAY) is True


def test_peak_and_drawdowns() -> None:
    p = Portfolio(D("10000"))
    p.roll_day(DAY0)
    p.apply_fill(fill(Side.BUY, "1", "5000"))
    p.mark("BTCUSDT", D("7000"))
    assert p.peak_equity == D("12000")
    p.mark("BTCUSDT", D("4000"))
    assert p.equity() == D("9000")
    assert p.peak_equity == D("12000")
    assert p.drawdown_from_peak_pct() == D("25")
    assert p.daily_drawdown_pct() == D("10")
    p.mark("BTCUSDT", D("8000"))
    assert p.drawdown_from_peak_pct() == D("-0")
    assert p.peak_equity == D("13000")


def test_risk_inputs_combine_the_valuation_with_the_quote_and_the_state() -> None:
    p = Portfolio(D("10000"))
    p.roll_day(DAY0)
    p.apply_fill(fill(Side.BUY, "1", "1000"))
    p.apply_fill(fill(Side.BUY, "10", "100", symbol="ETHUSDT"))
    p.mark("BTCUSDT", D("1100"))
    inputs = p.risk_inputs(
        "BTCUSDT",
        bid=D("1099"),
        ask=D("1101"),
        last_price_age_ns=5,
        trading_state=TradingState.REDUCING,
        pending_quote=D("50"),
    )
    assert inputs == RiskInputs(
        equity=D("10100"),
        day_start_equity=D("10000"),
        peak_equity=D("10100"),
        exposure_quote=D("2150"),  # 1100 BTC + 1000 ETH at cost + 50 of working buys
        position_quote_for_symbol=D("1100"),
        bid=D("1099"),
        ask=D("1101"),
        last_price_age_ns=5,
        trading_state=TradingState.REDUCING,
    )
    flat = p.risk_inputs("SOLUSDT", bid=D(1), ask=D(2), last_price_age_ns=0)
    assert (flat.position_quote_for_symbol, flat.exposure_quote) == (0, D("2100"))
    assert flat.trading_state is TradingState.ACTIVE


def test_snapshot_and_position_records() -> None:
    p = Portfolio(D("1000"))
    p.roll_day(DAY0)
    p.apply_fill(fill(Side.BUY, "2", "100", fee="1"))
    p.mark("BTCUSDT", D("110"))
    snap = p.snapshot(DAY0 + 7)
    assert (snap.ts_event, snap.cash, snap.position_value, snap.equity) == (
        DAY0 + 7,
        D("799"),
        D("220"),
        D("1019"),
    )
    assert (snap.day_start_equity, snap.peak_equity, snap.currency) == (
        D("1000"),
        D("1019"),
        "USDT",
    )
    (record,) = p.positions_records(DAY0 + 7)
    assert (record.symbol, record.quantity, record.average_price, record.realized_pnl) == (
        "BTCUSDT",
        D("2"),
        D("100"),
        D("0"),
    )


# --- restore --------------------------------------------------------------------------------------


def save_all(store: InMemoryStore, p: Portfolio, fills: list[FillRecord], ts: int) -> None:
    for f in fills:
        store.save_order(
            OrderRecord(
                client_order_id=f.client_order_id,
                decision_id="d",
                symbol=f.symbol,
                side=f.side,
                order_type="MARKET",
                quantity=f.quantity,
                status="FILLED",
                ts_created=f.ts_event,
                ts_updated=f.ts_event,
                mode="paper",
            )
        )
        store.add_fill(f)
    for record in p.positions_records(ts):
        store.save_position(record)
    store.add_equity_snapshot(p.snapshot(ts))


def assert_restores(store: InMemoryStore, original: Portfolio, *, with_fills: bool = True) -> None:
    """Restore from ``store`` with the original's last prices; every observable value agrees."""
    (latest,) = store.equity_snapshots(descending=True, limit=1)
    copy = Portfolio.restore(
        original.starting_cash,
        store.positions(),
        latest,
        store.fills() if with_fills else None,
        marks=dict(original.marks),
    )
    assert observe(copy) == observe(original)
    assert copy.marks == original.marks
    if with_fills:  # fees in a third asset are only in the fills
        assert copy.other_fees == original.other_fees


def test_restore_round_trip_with_and_without_fills() -> None:
    p = Portfolio(D("10000"))
    p.roll_day(DAY0)
    fills = [
        fill(Side.BUY, "1", "2000", symbol="ETHUSDT", fee="0.001", fee_asset="ETH", ts=DAY0 + 1),
        fill(Side.BUY, "0.1", "30000", fee="3", ts=DAY0 + 2),
        fill(Side.SELL, "0.5", "2100", symbol="ETHUSDT", fee="1.05", ts=DAY0 + 3),
        fill(Side.BUY, "0.1", "2050", symbol="ETHUSDT", fee="0.01", fee_asset="MX", ts=DAY0 + 4),
    ]
    for f in fills:
        p.apply_fill(f)
    p.mark("BTCUSDT", D("31000"))
    p.mark("BTCUSDT", D("29000"))  # below the peak
    store = InMemoryStore()
    save_all(store, p, fills, DAY0 + 10)
    assert_restores(store, p)
    assert_restores(store, p, with_fills=False)
    (latest,) = store.equity_snapshots()
    unmarked = Portfolio.restore(D("10000"), store.positions(), latest, store.fills())
    assert unmarked.position_value("BTCUSDT") == D("3000")  # at cost until the next mark
    assert (unmarked.peak_equity, unmarked.day_start_equity) == (p.peak_equity, D("10000"))


def test_restore_refuses_disagreeing_records_and_missing_snapshot() -> None:
    p = Portfolio(D("1000"))
    f = fill(Side.BUY, "1", "100", ts=DAY0)
    p.apply_fill(f)
    (record,) = p.positions_records(DAY0 + 1)
    wrong = record.model_copy(update={"quantity": D("2")})
    with pytest.raises(StateError, match="BTCUSDT"):
        Portfolio.restore(D("1000"), [wrong], p.snapshot(DAY0 + 1), [f])
    stale = wrong.model_copy(update={"ts_updated": DAY0 - 1})  # older than the fill: superseded
    assert Portfolio.restore(D("1000"), [stale], None, [f]).quantity("BTCUSDT") == 1
    with pytest.raises(StateError, match="received none"):
        Portfolio.restore(D("1000"), [record], None)


# --- properties -----------------------------------------------------------------------------------

SYMBOLS = ("BTCUSDT", "ETHUSDT")
prices = st.integers(1, 10**7).map(lambda n: D(n) / 100)
quantities = st.integers(1, 10**6).map(lambda n: D(n) / 10**4)
ops = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from(SYMBOLS), quantities, prices, st.sampled_from("nqb")),
    st.tuples(
        st.just("sell"),
        st.sampled_from(SYMBOLS),
        st.integers(1, 100),
        prices,
        st.sampled_from("nqb"),
    ),
    st.tuples(st.just("mark"), st.sampled_from(SYMBOLS), prices),
    st.tuples(st.just("day"), st.integers(0, 3 * NS_PER_DAY)),
)


def make_fill(op: tuple[Any, ...], p: Portfolio, ts: int) -> FillRecord | None:
    kind, symbol, amount, price, fee_kind = op
    held = p.quantity(symbol)
    qty = amount if kind == "buy" else (held * amount / 100).quantize(D("1e-8"), "ROUND_DOWN")
    base_fee = (qty * D("0.001")).quantize(D("1e-10"), "ROUND_DOWN")
    if kind == "sell" and (qty == 0 or (fee_kind == "b" and qty + base_fee > held)):
        return None
    fee, asset = {
        "n": (D(0), ""),
        "q": ((qty * price * D("0.002")).quantize(D("1e-8")), "USDT"),
        "b": (base_fee, symbol.removesuffix("USDT")),
    }[fee_kind]
    side = Side.BUY if kind == "buy" else Side.SELL
    return fill(side, qty, price, symbol=symbol, fee=fee, fee_asset=asset, ts=ts)


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=40))
def test_invariants_hold_after_every_fill_and_restore_is_exact(sequence: list[Any]) -> None:
    start = D("1000000000")
    p = Portfolio(start)
    p.roll_day(DAY0)
    net: dict[str, Decimal] = {}
    applied: list[FillRecord] = []
    ts = DAY0
    for op in sequence:
        ts += 1
        if op[0] == "mark":
            p.mark(op[1], op[2])
        elif op[0] == "day":
            ts += op[1]
            p.roll_day(ts)
        else:
            f = make_fill(op, p, ts)
            if f is None:
                continue
            assert p.apply_fill(f) is True
            assert p.apply_fill(f) is False  # a replay changes nothing
            base_fee = f.fee if f.fee_asset and f.fee_asset != "USDT" else D(0)
            delta = f.quantity - base_fee if f.side is Side.BUY else -(f.quantity + base_fee)
            net[f.symbol] = net.get(f.symbol, D(0)) + delta
            applied.append(f)
        check_invariants(p, net)
    store = InMemoryStore()
    save_all(store, p, applied, ts + 1)
    assert_restores(store, p)


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=40))
def test_risk_inputs_value_the_ledger_exactly_as_equity_and_exposure_do(
    sequence: list[Any],
) -> None:
    """The signal path's one-pass valuation gives the very same Decimals (value and exponent)
    as equity(), exposure() and position_value(), with closed, unmarked and untraded symbols."""
    p = Portfolio(D("1000000000"))
    ts = DAY0
    for op in sequence:
        ts += 1
        if op[0] == "mark":
            p.mark(op[1], op[2])
        elif op[0] == "day":
            ts += op[1]
            p.roll_day(ts)
        else:
            f = make_fill(op, p, ts)
            if f is not None:
                p.apply_fill(f)
        for symbol in (*SYMBOLS, "SOLUSDT"):
            inputs = p.risk_inputs(symbol, bid=D(1), ask=D(2), last_price_age_ns=0)
            assert str(inputs.equity) == str(p.equity())
            assert str(inputs.exposure_quote) == str(p.exposure())
            assert str(inputs.position_quote_for_symbol) == str(p.position_value(symbol))
