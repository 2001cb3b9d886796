"""BarBuilder: trades into closed bars; on time or by a later trade; late trades ignored."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cdb_cli.engine.bars import BarBuilder, ClosedBar

MINUTE = 60 * 1_000_000_000


def test_a_later_trade_closes_the_bar_with_ohlcv() -> None:
    bars = BarBuilder(MINUTE)
    assert bars.on_trade("X", 1, 100.0, 1.0) is None
    assert bars.on_trade("X", 2, 105.0, 2.0) is None
    assert bars.on_trade("X", 3, 99.0, 1.0) is None
    closed = bars.on_trade("X", MINUTE + 5, 101.0, 1.0)
    assert closed is not None
    assert (closed.open, closed.high, closed.low, closed.close, closed.volume) == (
        100.0,
        105.0,
        99.0,
        99.0,
        4.0,
    )
    assert (closed.ts_open, closed.ts_close) == (0, MINUTE)


def test_the_clock_closes_a_quiet_bar_and_a_late_trade_cannot_reopen_it() -> None:
    bars = BarBuilder(MINUTE)
    bars.on_trade("X", 10, 100.0, 1.0)
    assert bars.close_due(MINUTE - 1) == []
    (closed,) = bars.close_due(MINUTE)
    assert closed.ts_open == 0
    assert bars.on_trade("X", 20, 101.0, 1.0) is None  # late: its minute is closed
    assert bars.flush() == []
    assert bars.on_trade("X", MINUTE + 1, 102.0, 1.0) is None  # the next minute opens
    (next_bar,) = bars.flush()
    assert next_bar.ts_open == MINUTE


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_ns"):
        BarBuilder(0)


def test_a_bar_event_keeps_within_the_stores_18_places() -> None:
    """A sum of float quantities can need 19 places; the store would refuse the whole batch."""
    volume = 0.0011030000000000002 + 0.0011030000000000003  # 0.0022060000000000005
    bar = ClosedBar("BTCUSDT", 0, 60 * 10**9, 100.5, 101.0, 100.0, 100.25, volume)

    event = bar.to_event("marketdata")

    assert repr(volume) == "0.0022060000000000005"
    assert event.volume == Decimal("0.002206000000000000")  # rounded at the 18th place
    assert event.close == Decimal("100.25")  # the short repr as it was
    assert all(-value.as_tuple().exponent <= 18 for value in (event.open, event.volume))
