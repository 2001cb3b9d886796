"""The judgement of the ``mexc trading`` row (the row itself runs against the simulator in
tests/commands/test_systemcheck_mexc.py; the simulator's account may always trade)."""

from __future__ import annotations

from cdb_cli.services.systemcheck.mexc import _trading_problems


def test_an_account_that_may_trade_every_listed_symbol_has_no_problem() -> None:
    assert _trading_problems(True, ("SPOT",), ["BTCUSDT"], {"BTCUSDT": True}) == []


def test_every_reason_not_to_trade_is_named() -> None:
    problems = _trading_problems(
        False, ("MARGIN",), ["BTCUSDT", "ETHUSDT", "SOLUSDT"], {"BTCUSDT": True, "ETHUSDT": False}
    )
    assert problems == [
        "the account may not trade (canTrade false)",
        "no SPOT permission (has MARGIN)",
        "ETHUSDT is not tradable (status, spot or permission)",
        "SOLUSDT is not listed",
    ]
