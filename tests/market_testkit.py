"""Market events for the component tests, built by hand (one symbol unless told), and a wait
for a condition inside a running event loop. ``pythonpath`` in pyproject.toml makes this module
importable from every test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from cdb_cli.engine.events import Bar, QuoteTick, Side, TradeTick

SYMBOL = "BTCUSDT"


def trade(
    ts: int,
    price: str,
    *,
    quantity: str = "0.5",
    aggressor: Side = Side.BUY,
    symbol: str = SYMBOL,
) -> TradeTick:
    return TradeTick(
        symbol=symbol,
        ts_event=ts,
        source="test",
        price=Decimal(price),
        quantity=Decimal(quantity),
        aggressor=aggressor,
    )


def quote(
    ts: int, bid: str = "99.99", ask: str = "100.01", *, size: str = "1", symbol: str = SYMBOL
) -> QuoteTick:
    return QuoteTick(
        symbol=symbol,
        ts_event=ts,
        source="test",
        bid=Decimal(bid),
        ask=Decimal(ask),
        bid_size=Decimal(size),
        ask_size=Decimal(size),
    )


def closed_bar(open_ns: int, closed_at: int, close: str = "100", *, symbol: str = SYMBOL) -> Bar:
    """A 1-s bar opened at ``open_ns``, closed by the trade at ``closed_at``, flat at ``close``."""
    price = Decimal(close)
    return Bar(
        event_id=f"bar-{symbol}-{open_ns}",
        symbol=symbol,
        ts_event=open_ns,
        source="test",
        interval="1s",
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(3),
        closed_at=closed_at,
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until ``check()`` holds; fail the test after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
