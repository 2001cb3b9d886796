"""What :class:`MexcExecutionClient` remembers about each order, and which updates it publishes.

Pure: no I/O. The client feeds it what MEXC said (REST answers, user-data pushes); it decides what
is news and hands that to ``publish`` (the client's ``updates`` queue).

One filter for both sources. A fill is published once per venue trade id. A state is published only
when it is news: more filled, or a later status (``NEW`` < ``PARTIALLY_FILLED`` < terminal), so a
stale answer (MEXC's cancel reports the status *before* the cancel) never moves an order backwards,
and the same (client order id, status, filled quantity) is never published twice. An order stays
tracked until its last state is terminal and the fills published cover its filled quantity.

Updates of orders that are not tracked (placed by hand on the website) are not published. A push
that lacks the client order id is attributed through the venue order id; one that arrives before
the venue order id is known (the stream can beat the REST answer) is held until it is.

Memory is bounded: done states, venue ids and fill ids beyond ``remembered`` are forgotten oldest
first (never the state of an order still tracked), held pushes beyond ``held``.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Container
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final, TypeVar

from cdb_cli.adapters.mexc.models import Fill, Order
from cdb_cli.adapters.mexc.private import FillUpdate, OrderUpdate, PrivateUpdate
from cdb_cli.engine.events import Side
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState, VenueUpdate
from cdb_cli.engine.records import OrderStatus

__all__ = ["NEVER_REACHED", "OrderTracker", "Tracked", "order_status", "venue_fill"]

logger = logging.getLogger(__name__)

ZERO: Final = Decimal(0)
NEVER_REACHED: Final = "never reached the venue"
REMEMBERED: Final = 50_000  # done orders, venue ids and fill ids kept for de-duplication
HELD: Final = 1_000  # pushes held until their venue order id is known
_RANK: Final[dict[OrderStatus, int]] = {
    "PENDING_NEW": 0,
    "NEW": 1,
    "PARTIALLY_FILLED": 2,
    "FILLED": 3,
    "CANCELED": 3,
    "PARTIALLY_CANCELED": 3,
    "REJECTED": 3,
}
_TERMINAL: Final = frozenset({"FILLED", "CANCELED", "PARTIALLY_CANCELED", "REJECTED"})

_V = TypeVar("_V")


def order_status(mexc_status: str | None, executed: Decimal) -> OrderStatus | None:
    """The engine's status of a MEXC order status (None: one we do not know).

    MEXC's five (``NEW``, ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELED``, ``PARTIALLY_CANCELED``)
    map to themselves, a cancel after fills always to PARTIALLY_CANCELED; the ones other clients
    saw defensively (``PENDING``, ``PENDING_CANCEL``, ``EXPIRED``, ``REJECTED``) to their meaning.
    A missing status (the answer to ``POST /order``) is NEW.
    """
    status = (mexc_status or "NEW").upper()
    filled = executed > 0
    if status in {"NEW", "PENDING", "PENDING_CANCEL", "PARTIALLY_FILLED"}:
        return "PARTIALLY_FILLED" if filled else "NEW"
    if status == "FILLED":
        return "FILLED"
    if status in {"CANCELED", "PARTIALLY_CANCELED", "EXPIRED"}:
        return "PARTIALLY_CANCELED" if filled else "CANCELED"
    if status == "REJECTED":
        return "REJECTED"
    return None


def venue_fill(fill: Fill, client_id: str) -> VenueFill:
    """A ``myTrades`` row as the engine's fill of ``client_id``."""
    return VenueFill(
        fill_id=fill.trade_id,
        client_order_id=client_id,
        venue_order_id=fill.order_id,
        symbol=fill.symbol,
        side=Side.BUY if fill.is_buyer else Side.SELL,
        quantity=fill.qty,
        price=fill.price,
        fee=fill.commission,
        fee_asset=fill.commission_asset,
        ts_ns=fill.time_ms * 1_000_000,
        liquidity="maker" if fill.is_maker else "taker",
    )


def _pushed_fill(update: FillUpdate, client_id: str) -> VenueFill:
    return VenueFill(
        fill_id=update.trade_id,
        client_order_id=client_id,
        venue_order_id=update.order_id,
        symbol=update.symbol,
        side=Side(update.side),
        quantity=update.quantity,
        price=update.price,
        fee=update.fee,
        fee_asset=update.fee_asset,
        ts_ns=update.time_ms * 1_000_000,
        liquidity="maker" if update.is_maker else "taker",
    )


def _trim(mapping: OrderedDict[str, _V], limit: int, keep: Container[str] = ()) -> None:
    """Forget the oldest entries beyond ``limit``, except keys in ``keep``."""
    excess = len(mapping) - limit
    if excess <= 0:
        return
    for key in [k for k in mapping if k not in keep][:excess]:
        del mapping[key]


@dataclass
class Tracked:
    """An order kept current until it is done."""

    client_order_id: str
    symbol: str
    side: Side
    venue_order_id: str = ""
    filled_seen: Decimal = ZERO  # sum of the fills published
    misses: int = 0  # consecutive "unknown order" answers
    in_flight: bool = False  # place() is sending or resolving it: polling leaves it alone


class OrderTracker:
    """The tracked orders, the last state published of each, the fill ids seen; see the module."""

    def __init__(
        self,
        publish: Callable[[VenueUpdate], None],
        counters: Counter[str],
        clock_ns: Callable[[], int],
        *,
        remembered: int = REMEMBERED,
        held: int = HELD,
    ) -> None:
        self._publish = publish
        self.counters = counters
        self._clock_ns = clock_ns
        self._remembered = remembered
        self._held_limit = held
        self._tracked: dict[str, Tracked] = {}
        self._by_venue: OrderedDict[str, str] = OrderedDict()  # venue order id → client id
        self._best: OrderedDict[str, VenueOrderState] = OrderedDict()  # last published state
        self._fill_ids: OrderedDict[str, None] = OrderedDict()
        self._held: OrderedDict[str, list[PrivateUpdate]] = OrderedDict()

    # -- what is remembered ----------------------------------------------------------------------

    def ids(self) -> list[str]:
        """Client order ids being kept current."""
        return list(self._tracked)

    def tracked(self) -> list[Tracked]:
        """The orders being kept current (a copy: safe to iterate while they change)."""
        return list(self._tracked.values())

    def get(self, client_id: str) -> Tracked | None:
        return self._tracked.get(client_id)

    def knows(self, client_id: str) -> bool:
        """Tracked now or published before: a client order id never to be sent again."""
        return client_id in self._tracked or client_id in self._best

    def client_id_of(self, venue_id: str) -> str:
        """The client order id of a venue order id ("" when unknown)."""
        return self._by_venue.get(venue_id, "")

    def track(self, client_id: str, symbol: str, side: Side, venue_id: str = "") -> Tracked:
        tracked = self._tracked.get(client_id)
        if tracked is None:
            tracked = self._tracked[client_id] = Tracked(client_id, symbol, side)
        if venue_id:
            self.learn_venue_id(tracked, venue_id)
        return tracked

    def forget(self, client_id: str) -> None:
        """Stop keeping ``client_id`` current."""
        self._tracked.pop(client_id, None)

    def learn_venue_id(self, tracked: Tracked, venue_id: str) -> None:
        """Attribute ``venue_id`` to ``tracked``; the pushes held for it are applied now."""
        if tracked.venue_order_id == venue_id:
            return
        tracked.venue_order_id = venue_id
        self._by_venue[venue_id] = tracked.client_order_id
        _trim(self._by_venue, self._remembered)
        for update in self._held.pop(venue_id, []):
            self.on_private(update)

    # -- states and publishing -------------------------------------------------------------------

    def state(
        self,
        tracked: Tracked,
        status: OrderStatus,
        filled: Decimal = ZERO,
        filled_quote: Decimal = ZERO,
        reason: str = "",
    ) -> VenueOrderState:
        """A state of ``tracked`` stamped now (not published)."""
        return VenueOrderState(
            client_order_id=tracked.client_order_id,
            venue_order_id=tracked.venue_order_id,
            symbol=tracked.symbol,
            side=tracked.side,
            status=status,
            filled_quantity=filled,
            filled_quote=filled_quote,
            ts_ns=self._clock_ns(),
            reason=reason,
        )

    def current(self, tracked: Tracked) -> VenueOrderState:
        """The last state published, else PENDING_NEW (the outcome not known yet)."""
        return self._best.get(tracked.client_order_id) or self.state(tracked, "PENDING_NEW")

    def publish_state(self, state: VenueOrderState) -> VenueOrderState:
        """Publish ``state`` when it is news; the best state known."""
        before = self._best.get(state.client_order_id)
        if before is not None and (
            state.filled_quantity < before.filled_quantity
            or _RANK[state.status] < _RANK[before.status]
            or (
                state.filled_quantity == before.filled_quantity
                and (state.status == before.status or before.status in _TERMINAL)
            )
        ):
            self.counters["states_dropped"] += 1
            self._done_if_complete(state.client_order_id)
            return before
        if before is not None and not state.venue_order_id and before.venue_order_id:
            state = replace(state, venue_order_id=before.venue_order_id)
        self._best[state.client_order_id] = state
        self._best.move_to_end(state.client_order_id)
        _trim(self._best, self._remembered, keep=self._tracked)
        self._publish(state)
        self.counters["states"] += 1
        self._done_if_complete(state.client_order_id)
        return state

    def publish_fill(self, fill: VenueFill, tracked: Tracked, source: str) -> bool:
        """Publish ``fill`` unless its trade id was published before; whether it was."""
        if fill.fill_id in self._fill_ids:
            self.counters["fills_dropped"] += 1
            return False
        self._fill_ids[fill.fill_id] = None
        _trim(self._fill_ids, self._remembered)
        tracked.filled_seen += fill.quantity
        self._publish(fill)
        self.counters[f"fills_from_{source}"] += 1
        self._done_if_complete(tracked.client_order_id)
        return True

    def _done_if_complete(self, client_id: str) -> None:
        tracked, best = self._tracked.get(client_id), self._best.get(client_id)
        if tracked is None or best is None or best.status not in _TERMINAL:
            return
        if tracked.filled_seen >= best.filled_quantity and not tracked.in_flight:
            del self._tracked[client_id]

    # -- what MEXC said --------------------------------------------------------------------------

    def status_of(self, order: Order) -> OrderStatus | None:
        """The engine's status of a REST answer; None (counted, logged) for an unknown one."""
        status = order_status(order.status, order.executed_qty)
        if status is None:
            self.counters["unknown_status"] += 1
            logger.warning("MEXC order %s has an unknown status %r", order.order_id, order.status)
        return status

    def absorb(
        self,
        tracked: Tracked,
        order: Order,
        status: OrderStatus,
        trades: list[VenueFill],
        source: str,
    ) -> VenueOrderState:
        """Publish a REST answer about ``tracked``: the fills in ``trades``, then its state."""
        for fill in trades:
            fill = replace(fill, client_order_id=tracked.client_order_id)
            self.publish_fill(fill, tracked, source)
        state = self.state(tracked, status, order.executed_qty, order.cumulative_quote_qty)
        self.counters[f"states_from_{source}"] += 1
        return self.publish_state(state)

    def on_private(self, update: PrivateUpdate) -> None:
        """Apply a user-data push (balances are ignored: the caller asks when it needs them)."""
        if not isinstance(update, OrderUpdate | FillUpdate):
            return
        client_id = update.client_order_id or self._by_venue.get(update.order_id, "")
        tracked = self._tracked.get(client_id) if client_id else None
        if tracked is None:
            if not client_id and update.order_id and update.order_id not in self._by_venue:
                self._held.setdefault(update.order_id, []).append(update)  # may be ours: hold
                self.counters["stream_held"] += 1
                _trim(self._held, self._held_limit)
            return
        if update.order_id:
            self.learn_venue_id(tracked, update.order_id)
        if isinstance(update, FillUpdate):
            self.publish_fill(_pushed_fill(update, tracked.client_order_id), tracked, "stream")
            return
        status = order_status(update.status, update.cumulative_quantity)
        if status is not None:
            self.counters["states_from_stream"] += 1
            self.publish_state(
                self.state(tracked, status, update.cumulative_quantity, update.cumulative_amount)
            )

    def never_reached(self, tracked: Tracked) -> VenueOrderState:
        """MEXC does not know an order whose outcome was unknown: REJECTED, no longer tracked."""
        self.counters["never_reached"] += 1
        logger.warning("MEXC order %s %s; REJECTED", tracked.client_order_id, NEVER_REACHED)
        tracked.in_flight = False
        state = self.publish_state(self.state(tracked, "REJECTED", reason=NEVER_REACHED))
        self._tracked.pop(tracked.client_order_id, None)
        return state

    def poll_missed(self, tracked: Tracked, attempts: int) -> None:
        """A poll was answered "unknown order".

        Never acknowledged (no venue order id) and unknown ``attempts`` times in a row: it never
        reached the venue. Acknowledged and unknown ``10 * attempts`` times: no longer polled.
        """
        tracked.misses += 1
        if tracked.venue_order_id == "" and tracked.misses >= attempts:
            self.never_reached(tracked)
        elif tracked.venue_order_id and tracked.misses >= 10 * attempts:
            logger.error(
                "MEXC no longer knows order %s (%s); no longer polling it",
                tracked.client_order_id,
                tracked.venue_order_id,
            )
            del self._tracked[tracked.client_order_id]
