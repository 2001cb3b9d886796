"""The venue, the one collaborator in which a paper and a live run differ.

The :class:`~cdb_cli.runtime.loop.TradingLoop` is the same for both; it asks its venue how the
account opens and how orders leave. :class:`~cdb_cli.runtime.paper.PaperVenue` rebuilds the
account from the stored fills and lets the pipeline's simulated venue fill the orders;
:class:`~cdb_cli.runtime.live.LiveVenue` reconciles with MEXC first, and its sender saves, then
sends each order while its update task books the venue's reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio

    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.records import Mode, OrderRecord
    from cdb_cli.runtime.loop import TradingLoop

__all__ = ["Venue"]


class Venue(Protocol):
    """What differs between a paper and a live run."""

    mode: Mode
    failure: BaseException | None
    """Set when the venue's own work failed: the loop stops and raises it."""

    async def open(self, loop: TradingLoop, orders: list[OrderRecord]) -> Portfolio:
        """The account before trading: the ledger from the stored fills (live: reconciled with
        the venue first). ``orders`` are the stored orders, all of this mode."""
        ...

    async def resume(
        self, loop: TradingLoop, pipeline: TradingPipeline, orders: list[OrderRecord]
    ) -> dict[str, str]:
        """Take the still-working orders back into ``pipeline``; returns what the start's audit
        record adds."""
        ...

    async def start(self, pipeline: TradingPipeline, stop: asyncio.Event) -> None:
        """The feed runs: start what sends orders and takes reports (it sets ``stop`` when it
        fails)."""
        ...

    def nudge(self, pipeline: TradingPipeline) -> None:
        """Orders may have been decided (after an event, a closed bar): send them."""
        ...

    def flushed(self, pipeline: TradingPipeline, now_ns: int) -> None:
        """After each flush: time out what is due, send what waits."""
        ...

    async def stop(self, pipeline: TradingPipeline) -> None:
        """Intake has stopped: finish the sends in flight and book what has arrived."""
        ...

    def readiness(self) -> list[str]:
        """Why the venue cannot trade now (empty: it can)."""
        ...
