"""The execution ports: how the pipeline hands orders to a venue, and how a live venue answers.

Two sides, because a real venue is asynchronous and the pipeline is not:

- :class:`ExecutionVenue` is what :class:`~cdb_cli.engine.pipeline.TradingPipeline` calls,
  synchronously, on its hot path. ``SimulatedExecution`` (replay, paper) fills by itself at the
  next price; ``LiveExecution`` only queues the order for sending and books what the venue
  reports later; ``RemoteExecution`` (component mode) publishes the approval for another process.
  What comes back later is handed to ``TradingPipeline.apply_execution``.
- :class:`ExecutionClient` is the asynchronous edge of a live venue (``MexcExecutionClient``):
  place, cancel, query by client order id, open orders, fills, balances, and a queue of
  :class:`VenueOrderState` / :class:`VenueFill` updates from the user-data stream and from REST
  polling. The runtime drives it; the engine never awaits it.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol

from cdb_cli.engine.events import OrderApproved, Side
from cdb_cli.engine.records import FillRecord, OrderRecord, OrderStatus

if TYPE_CHECKING:
    from cdb_cli.engine.execution import ExecutionResult

__all__ = [
    "ExecutionClient",
    "ExecutionVenue",
    "VenueFill",
    "VenueOrderState",
    "VenueUpdate",
]


class ExecutionVenue(Protocol):
    """The pipeline's side of execution: synchronous, no I/O."""

    @property
    def id_prefix(self) -> str:
        """What every client order id of this venue starts with."""
        ...

    def has_working(self, symbol: str) -> bool:
        """True while an order of ``symbol`` may still fill."""
        ...

    def working_orders(self) -> list[OrderRecord]: ...

    def pending_buy_quote(self, symbol: str) -> Decimal:
        """Quote amount working buys of ``symbol`` may still spend (counts as exposure)."""
        ...

    def submit(self, order: OrderApproved, *, ts_ns: int, position: Decimal) -> ExecutionResult:
        """Take an approved order: the order record(s) it created, and anything already known."""
        ...

    def on_price(
        self,
        symbol: str,
        ts_ns: int,
        price: Decimal,
        *,
        volume: Decimal | None = None,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        cash: Decimal,
        position: Decimal,
        until_ns: int | None = None,
    ) -> ExecutionResult:
        """A price event: a simulated venue fills here; a real one returns nothing."""
        ...

    def restore(self, order: OrderRecord, fills: Sequence[FillRecord]) -> None:
        """Take back an order that was still open when the process stopped."""
        ...


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """An order's state as the venue reports it (REST answer, query, user-data stream)."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    filled_quantity: Decimal
    filled_quote: Decimal
    ts_ns: int
    reason: str = ""
    """Why the venue rejected or canceled it, when it said."""
    fault: str = ""
    """What went wrong on the way, when the venue's answer was lost: e.g. MEXC took the order
    but answered 503, and the order was found by asking for it (``cdb parity`` names it)."""


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One fill (a MEXC deal) of one of our orders, with the real commission and its asset."""

    fill_id: str
    """The venue's trade id: fills are deduplicated by it."""
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    ts_ns: int
    liquidity: Literal["maker", "taker"]


VenueUpdate = VenueOrderState | VenueFill


class ExecutionClient(Protocol):
    """The asynchronous edge of a real venue; see the module docstring.

    ``place`` never sends an order twice: when the outcome of a send is unknown (a 5xx, a
    timeout after sending) it resolves it by querying the client order id. ``query`` returns
    None when the venue does not know the id (the order never arrived).
    """

    updates: asyncio.Queue[VenueUpdate]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def track(self, order: OrderRecord) -> None:
        """Keep polling ``order`` until it is done (an order taken back after a restart)."""
        ...

    @property
    def signing_ok(self) -> bool:
        """False while signed requests fail on the clock (skew beyond recvWindow after a
        re-sync): the runtime places nothing until it is True again."""
        ...

    async def place(self, order: OrderRecord) -> VenueOrderState: ...

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState: ...

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None: ...

    async def open_orders(self, symbols: Sequence[str]) -> list[VenueOrderState]: ...

    async def fills(
        self, symbol: str, *, venue_order_id: str | None = None, since_ns: int | None = None
    ) -> list[VenueFill]: ...

    async def balances(self) -> dict[str, Decimal]:
        """Free + locked of every asset held."""
        ...
