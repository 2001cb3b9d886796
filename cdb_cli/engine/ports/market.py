"""The market-data port: live events for a loop, and history to warm its indicators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from cdb_cli.engine.events import Event

__all__ = ["MarketFeed", "WarmUp"]

WarmUp = Callable[[str], Awaitable[Sequence[tuple[int, float, float]]]]
"""History of a symbol for the indicators: (ts_close ns, close, volume) of closed bars."""


class MarketFeed(Protocol):
    """Live market data as engine events (``MexcDataClient`` is one)."""

    events: asyncio.Queue[Event]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
