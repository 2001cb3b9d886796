"""Placing an order at MEXC exactly once, and finding out what happened when the answer is lost.

- A client order id the tracker already knows is never sent again: what is known of the order is
  returned instead (asked again from MEXC when no placing of it is under way).
- An order breaking a filter (:mod:`.orderparams`), or placed while the :class:`ClockGuard` says
  requests cannot be signed validly (re-checked first), is REJECTED with the reason; nothing is
  sent.
- MEXC refusing the order (``VenueRejected``) → REJECTED with MEXC's message; a MARKET order
  refused for its type (``CODE_MARKET_DISABLED``, e.g. 30051) gets a reason starting with the
  engine's ``MARKET_REFUSED``, which sends it again as LIMIT.
- The outcome unknown (a 5xx, a timeout or dropped connection after sending, an unreadable answer)
  → the order is looked up by its client order id, ``attempts`` times with doubling waits from
  ``backoff_s``; it is never sent again. Found → its state. MEXC answering "unknown order"
  (``-2011``/``-2013``) at least twice and on the last attempt → REJECTED "never reached the
  venue" (safe: MEXC would know an order it had accepted). Otherwise the state is PENDING_NEW and
  polling keeps asking; after ``attempts`` polls that all answer "unknown order" it becomes
  REJECTED "never reached the venue" too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from cdb_cli.adapters.mexc.clockguard import ClockGuard
from cdb_cli.adapters.mexc.errors import CODE_MARKET_DISABLED, CODE_UNKNOWN_ORDER
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.orderparams import OrderRequest, Refused, check_at_market, order_request
from cdb_cli.adapters.mexc.polling import OrderPoller
from cdb_cli.adapters.mexc.tracker import OrderTracker, Tracked, order_status
from cdb_cli.engine.errors import (
    CdbError,
    ConfigurationError,
    MalformedEvent,
    RateLimited,
    VenueRejected,
)
from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.live_execution import market_refused
from cdb_cli.engine.ports.execution import VenueOrderState
from cdb_cli.engine.records import OrderRecord

__all__ = ["OrderPlacer"]

logger = logging.getLogger(__name__)


class OrderPlacer:
    """Sends orders once; resolves lost answers by query (see the module docstring)."""

    def __init__(
        self,
        poller: OrderPoller,
        *,
        instruments: Mapping[str, Instrument],
        attempts: int,
        backoff_s: float,
    ) -> None:
        self.poller = poller
        self.http: MexcHttpClient = poller.http
        self.orders: OrderTracker = poller.orders
        self.guard: ClockGuard = poller.guard
        self.counters: Counter[str] = poller.counters
        self.instruments = dict(instruments)
        self.attempts = attempts
        self.backoff_s = backoff_s

    async def instrument(self, symbol: str) -> Instrument:
        """The symbol's filters and fees from exchangeInfo (cached)."""
        found = self.instruments.get(symbol)
        if found is None:
            self.instruments.update(await self.http.exchange_info([symbol]))
            found = self.instruments.get(symbol)
        if found is None:
            raise Refused(f"{symbol} is not tradable on MEXC (exchangeInfo)")
        return found

    def _no_market(self, symbol: str) -> None:
        """MEXC refused a MARKET order on ``symbol`` for its type: remember it takes none."""
        found = self.instruments.get(symbol)
        if found is not None and found.market_orders:
            self.instruments[symbol] = replace(found, market_orders=False)

    async def place(self, order: OrderRecord) -> VenueOrderState:
        """Send ``order`` once; its state (see the module docstring for every outcome)."""
        if self.orders.knows(order.client_order_id):
            return await self._placed_before(order)
        try:
            request = await self._request(order)
        except Refused as e:
            return self._refuse(order, f"not sent: {e}")
        except ConfigurationError:
            raise
        except CdbError as e:
            return self._refuse(order, f"not sent: {e.message}")
        if not self.guard.ok:
            with contextlib.suppress(RateLimited):
                await self.poller.check_clock()
            if not self.guard.ok:
                return self._refuse(order, f"not sent: cannot sign validly ({self.guard.problem})")
        return await self._send(request)

    async def _request(self, order: OrderRecord) -> OrderRequest:
        """What to send, rounded to the filters; Refused when a filter fails."""
        inst = await self.instrument(order.symbol)
        request = order_request(order, inst)
        if request.needs_market_price:
            check_at_market(request, inst, await self._best_price(order.symbol, order.side))
        return request

    async def _best_price(self, symbol: str, side: Side) -> Decimal | None:
        try:
            ticker = await self.http.book_ticker(symbol)
        except CdbError as e:
            logger.warning("MEXC best price of %s unavailable (%s)", symbol, e.message)
            return None
        return ticker.ask if side is Side.BUY else ticker.bid

    def _refuse(self, order: OrderRecord, reason: str) -> VenueOrderState:
        """REJECTED without anything sent."""
        self.counters["refused"] += 1
        logger.warning("MEXC order %s not sent: %s", order.client_order_id, reason)
        tracked = Tracked(order.client_order_id, order.symbol, order.side)
        return self.orders.publish_state(self.orders.state(tracked, "REJECTED", reason=reason))

    async def _placed_before(self, order: OrderRecord) -> VenueOrderState:
        """A client order id this client knows is never sent again: what is known of it."""
        self.counters["place_repeated"] += 1
        known = self.orders.get(order.client_order_id)
        if known is not None and not known.in_flight:
            return await self._resolve(known)
        return self.orders.current(
            known or Tracked(order.client_order_id, order.symbol, order.side)
        )

    async def _send(self, request: OrderRequest) -> VenueOrderState:
        client_id = request.client_order_id
        tracked = self.orders.track(client_id, request.symbol, request.side)
        tracked.in_flight = True
        try:
            placed = await self.http.new_order(
                request.symbol,
                request.side.value,
                request.order_type,
                quantity=request.quantity,
                quote_order_qty=request.quote_order_qty,
                price=request.price,
                client_order_id=client_id,
            )
            if placed is None:  # pragma: no cover - only test orders answer nothing
                raise MalformedEvent("MEXC answered a new order with nothing")
        except VenueRejected as e:
            self.guard.refused(e)
            self.orders.forget(client_id)
            self.counters["rejected"] += 1
            logger.warning("MEXC rejected order %s: %s", client_id, e.message)
            reason = e.message
            if request.order_type == "MARKET" and e.code in CODE_MARKET_DISABLED:
                reason = market_refused(e.message)  # the engine sends it again as LIMIT
                self._no_market(request.symbol)
            return self.orders.publish_state(self.orders.state(tracked, "REJECTED", reason=reason))
        except ConfigurationError:
            self.orders.forget(client_id)  # nothing was sent: no credentials
            raise
        except (CdbError, KeyError, TypeError, ValueError) as e:  # 5xx, timeout, odd answer
            self.counters["outcome_unknown"] += 1
            why = e.message if isinstance(e, CdbError) else f"{type(e).__name__}: {e}"
            logger.warning(
                "MEXC did not confirm order %s (%s); asking for it, never resending", client_id, why
            )
            state = await self._resolve(tracked)
            return replace(state, fault=f"MEXC did not confirm the order ({why}); asked for it: "
                           f"{state.status}")  # fmt: skip
        except BaseException:
            tracked.in_flight = False  # cancelled mid-send: polling finds out what happened
            raise
        self.counters["placed"] += 1
        self.guard.signed()
        tracked.in_flight = False
        self.orders.learn_venue_id(tracked, placed.order_id)
        status = order_status(placed.status, placed.executed_qty) or "NEW"
        return self.orders.publish_state(
            self.orders.state(tracked, status, placed.executed_qty, placed.cumulative_quote_qty)
        )

    async def _resolve(self, tracked: Tracked) -> VenueOrderState:
        """Find out by client order id whether MEXC has the order; never send it again."""
        tracked.in_flight = True
        misses, last_missed, wait = 0, False, self.backoff_s
        try:
            for attempt in range(self.attempts):
                if attempt:
                    await asyncio.sleep(wait)
                    wait *= 2
                try:
                    found = await self.http.query_order(
                        tracked.symbol, client_order_id=tracked.client_order_id
                    )
                except VenueRejected as e:
                    last_missed = e.code in CODE_UNKNOWN_ORDER
                    misses += last_missed
                    self.guard.refused(e)
                    continue
                except CdbError as e:
                    last_missed = False
                    logger.warning("MEXC lookup of %s failed: %s", tracked.client_order_id, e)
                    continue
                self.guard.signed()
                tracked.misses = 0
                tracked.in_flight = False
                self.counters["resolved_by_query"] += 1
                return await self.poller.absorb(found, tracked, "query")
        finally:
            tracked.in_flight = False
        if last_missed and misses >= min(2, self.attempts):
            return self.orders.never_reached(tracked)
        tracked.misses = misses
        self.counters["still_unknown"] += 1
        logger.error(
            "MEXC order %s: outcome still unknown; polling keeps asking", tracked.client_order_id
        )
        return self.orders.current(tracked)
