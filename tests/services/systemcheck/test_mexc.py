"""The judgement of the ``mexc trading`` row (the row itself runs against the simulator in
tests/commands/test_systemcheck_mexc.py; the simulator's account may always trade)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from cdb_cli.adapters.mexc.models import MexcSymbol
from cdb_cli.engine.instruments import Instrument
from cdb_cli.services.systemcheck.mexc import _trading_problems


def symbol(name: str, *, tradable: bool = True, trade_side: str = "1") -> MexcSymbol:
    instrument = Instrument.from_precisions(
        name, base_asset_precision=6, quote_precision=2, min_notional=Decimal(1)
    )
    return MexcSymbol(instrument, tradable, ("LIMIT", "MARKET"), trade_side)


def test_an_account_that_may_trade_every_listed_symbol_has_no_problem() -> None:
    listed = {"BTCUSDT": symbol("BTCUSDT")}
    assert _trading_problems(True, ("SPOT",), ["BTCUSDT"], listed, frozenset({"BTCUSDT"})) == []


def test_a_symbol_without_market_orders_is_no_problem() -> None:
    found = symbol("BTCUSDT")
    found = replace(found, instrument=replace(found.instrument, market_orders=False))
    assert _trading_problems(True, ("SPOT",), ["BTCUSDT"], {"BTCUSDT": found}, {"BTCUSDT"}) == []


def test_every_reason_not_to_trade_is_named() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "MXUSDT", "XRPUSDT", "ADAUSDT", "DOTUSDT"]
    listed = {
        "BTCUSDT": symbol("BTCUSDT"),
        "ETHUSDT": symbol("ETHUSDT", tradable=False),
        "MXUSDT": symbol("MXUSDT"),
        "XRPUSDT": symbol("XRPUSDT", trade_side="2"),
        "ADAUSDT": symbol("ADAUSDT", trade_side="3"),
        "DOTUSDT": symbol("DOTUSDT", trade_side="4"),
    }
    api = frozenset({"BTCUSDT", "ETHUSDT", "XRPUSDT", "ADAUSDT", "DOTUSDT"})
    problems = _trading_problems(False, ("MARGIN",), symbols, listed, api)
    assert problems == [
        "the account may not trade (canTrade false)",
        "no SPOT permission (has MARGIN)",
        "ETHUSDT is not tradable (status, spot or permission)",
        "SOLUSDT is not listed",
        "MXUSDT is not tradable over the API (not in /api/v3/defaultSymbols; "
        "MEXC answers its orders with 10007)",
        "XRPUSDT takes buy orders only (tradeSideType 2): an exit could not sell",
        "ADAUSDT takes sell orders only (tradeSideType 3): no entry could buy",
        "DOTUSDT is closed to orders (tradeSideType 4)",
    ]
