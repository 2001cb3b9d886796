from __future__ import annotations

from decimal import Decimal as D

from market_testkit import fill as kit_fill

from cdb_cli.engine.events import Side
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.records import FillRecord
from cdb_cli.services.reconcile import compare_balances


def fill(n: int, symbol: str, side: Side, quantity: str, price: str, fee: str) -> FillRecord:
    return kit_fill(side, quantity, price, fill_id=f"f{n}", client_order_id=f"o{n}",
                    symbol=symbol, fee=fee, fee_asset="MX", ts=n)  # fmt: skip


def test_fees_paid_in_mx_come_off_the_mx_a_traded_symbol_holds() -> None:
    """MX deduction while trading BTCUSDT and MXUSDT: the BTC fills' fees were taken from the MX
    balance, which the ledger must then expect to be that much lower."""
    portfolio = Portfolio(D("1000"))
    for record in (
        fill(1, "MXUSDT", Side.BUY, "10", "2.5", "0.01"),  # MX's own fee: 9.99 MX received
        fill(2, "BTCUSDT", Side.BUY, "0.001", "100000", "0.02"),  # paid from the MX balance
    ):
        portfolio.apply_fill(record)
    venue = {"USDT": D("875"), "MX": D("14.97"), "BTC": D("0.001")}
    rows = compare_balances(
        portfolio,
        venue,
        {"MX": D("5")},  # held before the first live start
        ["MXUSDT", "BTCUSDT"],
        tolerance_pct=D("0"),
    )
    assert [(r.asset, r.ledger, r.ok) for r in rows] == [
        ("USDT", D("875"), True),
        ("MX", D("14.97"), True),  # 9.99 + 5 - 0.02
        ("BTC", D("0.001"), True),
    ]
