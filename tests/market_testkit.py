"""The one test kit for events and waits: market events and fills built by hand (one symbol
unless told), a wait for a condition inside a running event loop (``eventually``) or in plain
code (``wait_until``), and a free TCP port on the loopback (``free_port``). ``pythonpath`` in
pyproject.toml makes this module importable from every test."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from cdb_cli.engine.events import Bar, QuoteTick, Side, TradeTick
from cdb_cli.engine.records import FillRecord

SYMBOL = "BTCUSDT"

Number = str | int | float | Decimal
"""A price or quantity as a test writes it; a float is taken by its shortest repr."""


def dec(value: Number) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def trade(
    ts: int,
    price: Number,
    *,
    quantity: Number = "0.5",
    aggressor: Side = Side.BUY,
    symbol: str = SYMBOL,
    trade_id: str = "",
    event_id: str | None = None,
) -> TradeTick:
    """A public trade at ``ts`` (ns) and ``price``."""
    ids = {} if event_id is None else {"event_id": event_id}
    return TradeTick(
        symbol=symbol,
        ts_event=ts,
        source="test",
        price=dec(price),
        quantity=dec(quantity),
        aggressor=aggressor,
        trade_id=trade_id,
        **ids,
    )


def tick(
    n: int = 1,
    *,
    price: Number = "100",
    quantity: Number = "1",
    aggressor: Side = Side.BUY,
    event_id: str | None = None,
) -> TradeTick:
    """Trade number ``n``: at ``ts_event`` n with trade id n (bus and inbox tests count them)."""
    return trade(
        n, price, quantity=quantity, aggressor=aggressor, trade_id=str(n), event_id=event_id
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


def closed_bar(
    open_ns: int, closed_at: int, close: str = "100", *, symbol: str = SYMBOL, volume: int = 3
) -> Bar:
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
        volume=Decimal(volume),
        closed_at=closed_at,
    )


def fill(
    side: Side = Side.BUY,
    quantity: Number = "1",
    price: Number = "100",
    *,
    fill_id: str = "f1",
    client_order_id: str = "o1",
    symbol: str = SYMBOL,
    fee: Number = "0",
    fee_asset: str = "USDT",
    ts: int = 1,
    liquidity: str = "taker",
) -> FillRecord:
    """One fill of an order, as the store keeps it."""
    assert liquidity in ("maker", "taker")
    return FillRecord(
        fill_id=fill_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        quantity=dec(quantity),
        price=dec(price),
        fee=dec(fee),
        fee_asset=fee_asset,
        ts_event=ts,
        liquidity="maker" if liquidity == "maker" else "taker",
    )


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    timeout_s: float = 10.0,
    what: str = "the condition",
) -> None:
    """Wait (in a running event loop) until ``check()`` holds (it may be a coroutine function);
    fail the test after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def wait_until(
    check: Callable[[], bool], timeout_s: float = 10.0, what: str = "the condition"
) -> None:
    """``eventually`` for plain (thread or process) code."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


FAST_STRATEGY: dict[str, object] = {
    "ema_fast": 2,
    "ema_slow": 4,
    "rsi_period": 2,
    "volume_period": 3,
    "volume_factor": 0.01,  # the simulator's volumes are its own: let the cross decide
    "stale_data_seconds": 5,
}
"""Settings that make the strategy buy and exit every few bars on the simulator's market."""
