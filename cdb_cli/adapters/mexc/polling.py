"""Keeping tracked orders current over REST: the poll loop, and reading what MEXC answers.

Every ``poll_interval_s`` (:meth:`OrderPoller.run`) each tracked order that is not done and not
being placed is queried (``GET /api/v3/order``) and, when the venue reports more filled than the
fills delivered so far, its trades are read (``GET /api/v3/myTrades?orderId=…``). Polling always
runs, a live user stream never switches it off, so a dead or silent stream only delays updates by
one interval. Each round first re-measures the offset to MEXC's clock (``/api/v3/time``) for the
:class:`ClockGuard` and, while a timestamp refusal stands, probes with a signed ``/api/v3/account``.

Rate limits: :class:`MexcHttpClient` honours ``Retry-After`` by pausing every request of that
client; when a round still ends rate limited, the next one waits at least the Retry-After.

What the answers mean is the :class:`OrderTracker`'s to decide; this module only asks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Final

from cdb_cli.adapters.mexc.clockguard import ClockGuard
from cdb_cli.adapters.mexc.errors import CODE_UNKNOWN_ORDER
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.models import Fill, Order
from cdb_cli.adapters.mexc.tracker import OrderTracker, Tracked, venue_fill
from cdb_cli.engine.errors import CdbError, RateLimited, VenueRejected
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState

__all__ = ["OrderPoller"]

logger = logging.getLogger(__name__)

TRADES_PAGE: Final = 100  # myTrades' maximum limit


class OrderPoller:
    """Asks MEXC about tracked orders and its clock; hands the answers to the tracker and guard."""

    def __init__(
        self,
        http: MexcHttpClient,
        orders: OrderTracker,
        guard: ClockGuard,
        counters: Counter[str],
        *,
        attempts: int,
    ) -> None:
        self.http = http
        self.orders = orders
        self.guard = guard
        self.counters = counters
        self.attempts = attempts  # "unknown order" answers before giving up on an order

    async def check_clock(self) -> None:
        """Re-measure the offset to MEXC's clock; probe signing when it was refused before."""
        try:
            offset = await self.http.sync_time()
        except RateLimited:
            raise  # the poll round ends here and waits
        except CdbError as e:
            logger.warning("MEXC server time unavailable (%s); clock not re-checked", e.message)
            return
        if not self.guard.offset_measured(offset):
            return
        try:
            await self.http.account()
        except CdbError as e:
            self.guard.refused(e)
        else:
            self.guard.signed()

    async def fills(
        self, symbol: str, *, venue_order_id: str | None = None, since_ns: int | None = None
    ) -> list[VenueFill]:
        """Our fills (``myTrades``), oldest first, all pages; ``since_ns`` at ms precision."""
        start_ms = None if since_ns is None else since_ns // 1_000_000
        found: dict[str, Fill] = {}
        cursor_start, cursor_end = start_ms, None
        while True:
            page = await self.http.my_trades(
                symbol,
                order_id=venue_order_id,
                start_ms=cursor_start,
                end_ms=cursor_end,
                limit=TRADES_PAGE,
            )
            fresh = [f for f in page if f.trade_id not in found]
            found.update((f.trade_id, f) for f in fresh)
            if len(page) < TRADES_PAGE or not fresh:
                break
            if start_ms is not None:  # forwards from since
                cursor_start = max(f.time_ms for f in page)
            else:  # backwards from now
                cursor_end = min(f.time_ms for f in page)
        rows = sorted(
            (f for f in found.values() if start_ms is None or f.time_ms >= start_ms),
            key=lambda f: (f.time_ms, f.trade_id),
        )
        return [
            venue_fill(f, self.orders.client_id_of(f.order_id) or f.client_order_id or "")
            for f in rows
        ]

    async def absorb(self, order: Order, tracked: Tracked, source: str) -> VenueOrderState:
        """Publish what a REST answer about ``tracked`` says: its missing fills, then its state."""
        self.orders.learn_venue_id(tracked, order.order_id)
        status = self.orders.status_of(order)
        if status is None:
            return self.orders.current(tracked)
        found: list[VenueFill] = []
        if order.executed_qty > tracked.filled_seen:
            try:
                found = await self.fills(tracked.symbol, venue_order_id=order.order_id)
            except CdbError as e:  # the next poll asks again: fewer fills seen than filled
                self.counters["trades_unavailable"] += 1
                logger.warning("MEXC trades of %s unavailable: %s", tracked.client_order_id, e)
        return self.orders.absorb(tracked, order, status, found, source)

    async def run(self, interval_s: float) -> None:
        """Poll every ``interval_s`` until cancelled; survives anything else."""
        while True:
            wait = interval_s
            try:
                await self.poll_once()
            except RateLimited as e:
                wait = max(wait, e.retry_after or 0.0)
                self.counters["polls_rate_limited"] += 1
                logger.warning("MEXC polling rate limited (%s); next poll in %.1f s", e, wait)
            except CdbError as e:
                self.counters["poll_errors"] += 1
                logger.warning("MEXC order polling failed: %s", e.message)
            except Exception:  # the poller must survive anything
                self.counters["poll_errors"] += 1
                logger.exception("MEXC order polling failed unexpectedly")
            await asyncio.sleep(wait)

    async def poll_once(self) -> None:
        """One round: re-check the clock, then bring every tracked order up to date.

        Raises RateLimited when MEXC still limits us after the REST client's own waiting.
        """
        self.counters["polls"] += 1
        await self.check_clock()
        for tracked in self.orders.tracked():
            if self.orders.get(tracked.client_order_id) is tracked and not tracked.in_flight:
                await self._refresh(tracked)

    async def _refresh(self, tracked: Tracked) -> None:
        try:
            found = await self.http.query_order(
                tracked.symbol, client_order_id=tracked.client_order_id
            )
            tracked.misses = 0
            self.guard.signed()
            await self.absorb(found, tracked, "poll")
        except RateLimited:
            raise
        except VenueRejected as e:
            if e.code in CODE_UNKNOWN_ORDER:
                self.orders.poll_missed(tracked, self.attempts)
                return
            self.guard.refused(e)
            logger.warning("MEXC refused polling %s: %s", tracked.client_order_id, e.message)
        except CdbError as e:
            logger.warning("MEXC poll of %s failed: %s", tracked.client_order_id, e.message)
