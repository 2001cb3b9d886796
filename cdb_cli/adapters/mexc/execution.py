"""``MexcExecutionClient``: the live MEXC side of the engine's ``ExecutionClient`` port.

It places, cancels and queries orders over :class:`MexcHttpClient`. What happens to them afterwards
arrives on :attr:`MexcExecutionClient.updates`, from two sources:

- the user-data stream (:class:`MexcUserStream`, when a WebSocket URL is given): ``privateOrders``
  become :class:`VenueOrderState`, ``privateDeals`` become :class:`VenueFill` with the real
  commission and its asset;
- REST polling: every ``poll_interval_s`` each tracked order that is not done is queried
  (``GET /api/v3/order``) and, when the venue reports more filled than the fills delivered so far,
  its trades are read (``GET /api/v3/myTrades?orderId=…``). Polling always runs: a live stream
  never switches it off, so a dead or silent stream only delays updates by one interval.

Both sources go through one filter. A fill is published once per venue trade id. A state is
published only when it is news: more filled, or a later status (``NEW`` < ``PARTIALLY_FILLED`` <
terminal), so a stale answer (MEXC's cancel reports the status *before* the cancel) never moves an
order backwards, and the same (client order id, status, filled quantity) is never published twice.
A fill is published before the state that counts it when both come from one poll. Every state
this client learns, including the one :meth:`place` returns, is published, so a consumer may rely on
the queue alone; applying a returned state again is harmless. Updates of orders this client does not
track (placed by hand on the website) are not published. A push that lacks the client order id is
attributed through the venue order id; one that arrives before the venue order id is known (the
stream can beat the REST answer) is held until it is.

Placing (:meth:`place`):

- the client order id of the record is always sent as ``newClientOrderId``; a client order id this
  client already knows is never sent again (the venue's state is returned instead);
- LIMIT-style orders: quantity rounded down to the step (or derived from ``quote_amount`` at the
  rounded price), price rounded to the tick (buy up, sell down: the instrument's rule for a worst
  acceptable price). MARKET buys with a ``quote_amount`` go by ``quoteOrderQty``; other MARKET
  orders by ``quantity``. Minimum quantity, minimum and maximum notional come from exchangeInfo and
  are checked before sending (for a MARKET order by quantity against the current best price); a
  violation returns REJECTED with the reason and sends nothing;
- MEXC refusing the order (``VenueRejected``) → REJECTED with MEXC's message;
- the outcome unknown (a 5xx, a timeout or dropped connection after sending, an unreadable answer)
  → the order is looked up by its client order id, ``resolve_attempts`` times with doubling
  waits from ``resolve_backoff_s``; it is never sent again. Found → its state. MEXC answering
  "unknown order" (``-2011``/``-2013``) at least twice and on the last attempt → REJECTED "never
  reached the venue" (safe: MEXC would know an order it had accepted). Otherwise the state is
  PENDING_NEW and polling keeps asking; after ``resolve_attempts`` polls that all answer
  "unknown order" it becomes REJECTED "never reached the venue" too.

Other calls: :meth:`cancel` sends the cancel and confirms it by a query (MEXC answers a cancel
with the status before it); an order no longer open is answered with its final state.
:meth:`query` returns None when MEXC does not know the id; otherwise the order is tracked until
done and its fills not yet published are. :meth:`open_orders` lists ours and others' (the caller
tells them apart by the client id prefix); :meth:`fills` reads ``myTrades`` page by page;
:meth:`balances` is free + locked per asset. :meth:`track` takes back orders after a restart.
:attr:`counters` counts what happened (``placed``, ``outcome_unknown``, ``resolved_by_query``,
``never_reached``, ``refused``, ``fills_from_stream``, ``fills_from_poll``, ``polls`` …).

Signing and the clock (:attr:`signing_ok`): each poll re-measures the offset to MEXC's clock
(``/api/v3/time``). MEXC refuses a request whose timestamp is off by more than recvWindow, and the
REST client compensates a measured offset; but a local clock further off MEXC's than
``max_clock_skew_ms`` (default: the REST client's recvWindow) is taken as broken (it also stamps
every event and drives the stale-data and daily rules), and so is any signed request still refused
for its timestamp after the REST client's own re-sync. While either holds, ``signing_ok`` is False
and :meth:`place` returns REJECTED without sending; polling, queries and cancels go on. It turns
True again at the first poll (or place) that measures a sane offset and signs successfully.

Rate limits: :class:`MexcHttpClient` honours ``Retry-After`` by pausing every request of that
client; when a poll still ends rate limited, the next poll waits at least the Retry-After.

Lifecycle: ``start()`` syncs the clock, opens the user stream and starts polling; ``stop()`` ends
both and closes the listenKey. The REST client stays the caller's: stop this client before closing
it. ``place``, ``cancel``, ``query``, ``open_orders``, ``fills`` and ``balances`` work without
``start()`` (nothing is then published except what those calls learn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, Final

from cdb_cli.adapters.mexc.errors import CODE_TIMESTAMP, CODE_UNKNOWN_ORDER
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.models import Fill, Order
from cdb_cli.adapters.mexc.private import FillUpdate, OrderUpdate, PrivateUpdate
from cdb_cli.adapters.mexc.userstream import MexcUserStream
from cdb_cli.engine.errors import (
    CdbError,
    ConfigurationError,
    MalformedEvent,
    RateLimited,
    TransientError,
    VenueRejected,
    VenueServerError,
)
from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState, VenueUpdate
from cdb_cli.engine.records import OPEN_ORDER_STATUSES, OrderRecord, OrderStatus

__all__ = ["NEVER_REACHED", "MexcExecutionClient", "order_status"]

logger = logging.getLogger(__name__)

ZERO: Final = Decimal(0)
NEVER_REACHED: Final = "never reached the venue"
TRADES_PAGE: Final = 100  # myTrades' maximum limit
_REMEMBERED: Final = 50_000  # done orders and fill ids kept for de-duplication
_HELD: Final = 1_000  # pushes held until their venue order id is known
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


class _Refused(Exception):
    """The order breaks an exchangeInfo filter; it is not sent."""


@dataclass(frozen=True, slots=True)
class _Params:
    """What :meth:`MexcHttpClient.new_order` gets besides symbol, side and type."""

    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None


@dataclass
class _Tracked:
    """An order this client keeps current until it is done."""

    client_order_id: str
    symbol: str
    side: Side
    venue_order_id: str = ""
    filled_seen: Decimal = ZERO  # sum of the fills published
    misses: int = 0  # consecutive "unknown order" answers
    in_flight: bool = False  # place() is sending or resolving it: polling leaves it alone


class MexcExecutionClient:
    """Live MEXC execution behind the ``ExecutionClient`` port; see the module docstring."""

    def __init__(
        self,
        http: MexcHttpClient,
        ws_url: str | None = None,
        *,
        instruments: Mapping[str, Instrument] | None = None,
        poll_interval_s: float = 2.0,
        resolve_attempts: int = 4,
        resolve_backoff_s: float = 0.5,
        max_clock_skew_ms: int | None = None,
        stream_options: Mapping[str, Any] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.http = http
        self.ws_url = ws_url
        self.poll_interval_s = poll_interval_s
        self.resolve_attempts = max(1, resolve_attempts)
        self.resolve_backoff_s = resolve_backoff_s
        self.max_clock_skew_ms = (
            http.recv_window if max_clock_skew_ms is None else max_clock_skew_ms
        )
        self.stream_options: dict[str, Any] = dict(stream_options or {})
        self._clock_ns = clock_ns
        self.updates: asyncio.Queue[VenueUpdate] = asyncio.Queue()
        self.counters: Counter[str] = Counter()
        self.stream: MexcUserStream | None = None
        self._instruments: dict[str, Instrument] = dict(instruments or {})
        self._tracked: dict[str, _Tracked] = {}
        self._by_venue: OrderedDict[str, str] = OrderedDict()  # venue order id → client id
        self._best: OrderedDict[str, VenueOrderState] = OrderedDict()  # last published state
        self._fill_ids: OrderedDict[str, None] = OrderedDict()
        self._held: OrderedDict[str, list[PrivateUpdate]] = OrderedDict()
        self._clock_problem: str | None = None
        self._timestamp_problem: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"MexcExecutionClient({self.http!r}, tracking={len(self._tracked)})"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Sync the clock, open the user stream (when a URL was given), start polling."""
        if self._tasks:
            return
        with contextlib.suppress(RateLimited):  # polling measures again
            await self._check_clock()
        if self.ws_url is not None:
            self.stream = MexcUserStream(self.http, self.ws_url, **self.stream_options)
            await self.stream.start()
            self._tasks.append(asyncio.create_task(self._consume_stream(self.stream)))
        self._tasks.append(asyncio.create_task(self._poll_forever()))

    async def stop(self) -> None:
        """Stop polling and the stream; the stream closes its listenKey."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None

    async def __aenter__(self) -> MexcExecutionClient:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- signing ---------------------------------------------------------------------------------

    @property
    def signing_ok(self) -> bool:
        """False while our requests cannot be signed validly (see the module docstring)."""
        return self._clock_problem is None and self._timestamp_problem is None

    @property
    def signing_problem(self) -> str | None:
        """Why :attr:`signing_ok` is False, for the operator; None when it is True."""
        return self._clock_problem or self._timestamp_problem

    def _set_signing(self, *, clock: str | None = "", timestamp: str | None = "") -> None:
        """Change either problem ("" leaves it as is) and log when ``signing_ok`` flips."""
        before = self.signing_ok
        if clock != "":
            self._clock_problem = clock
        if timestamp != "":
            self._timestamp_problem = timestamp
        if before and not self.signing_ok:
            self.counters["signing_lost"] += 1
            logger.error(
                "MEXC: cannot sign requests validly (%s); placing nothing", self.signing_problem
            )
        elif not before and self.signing_ok:
            logger.warning("MEXC: requests are signed validly again; placing resumes")

    def _note_error(self, error: CdbError) -> None:
        if isinstance(error, VenueRejected) and error.code in CODE_TIMESTAMP:
            self._set_signing(timestamp=error.message)

    def _signed_fine(self) -> None:
        if self._timestamp_problem is not None:
            self._set_signing(timestamp=None)

    async def _check_clock(self) -> None:
        """Re-measure the offset to MEXC's clock; probe signing when it was refused before."""
        try:
            offset = await self.http.sync_time()
        except RateLimited:
            raise  # the poll round ends here and waits
        except CdbError as e:
            logger.warning("MEXC server time unavailable (%s); clock not re-checked", e.message)
            return
        bound = self.max_clock_skew_ms
        if bound is not None and abs(offset) > bound:
            ahead = "ahead of" if offset > 0 else "behind"
            self._set_signing(
                clock=f"MEXC's clock is {abs(offset)} ms {ahead} ours, more than {bound} ms "
                "(recvWindow): fix the host's time (NTP)"
            )
            return
        self._set_signing(clock=None)
        if self._timestamp_problem is not None:
            try:
                await self.http.account()
            except CdbError as e:
                self._note_error(e)
            else:
                self._signed_fine()

    # -- tracking and publishing -----------------------------------------------------------------

    def track(self, order: OrderRecord) -> None:
        """Keep polling ``order`` until it is done (an order taken back after a restart).

        Its fills are published again from the venue: the consumer ignores fill ids it booked.
        Without a venue order id and unknown to MEXC for ``resolve_attempts`` polls, it becomes
        REJECTED "never reached the venue". Orders not open (by ``status``) are ignored.
        """
        if order.status not in OPEN_ORDER_STATUSES:
            return
        self._track(order.client_order_id, order.symbol, order.side, order.venue_order_id)

    def tracked(self) -> list[str]:
        """Client order ids being kept current."""
        return list(self._tracked)

    def _track(self, client_id: str, symbol: str, side: Side, venue_id: str = "") -> _Tracked:
        tracked = self._tracked.get(client_id)
        if tracked is None:
            tracked = self._tracked[client_id] = _Tracked(client_id, symbol, side)
        if venue_id:
            self._learn_venue_id(tracked, venue_id)
        return tracked

    def _learn_venue_id(self, tracked: _Tracked, venue_id: str) -> None:
        if tracked.venue_order_id == venue_id:
            return
        tracked.venue_order_id = venue_id
        self._by_venue[venue_id] = tracked.client_order_id
        _trim(self._by_venue)
        for update in self._held.pop(venue_id, []):
            self._on_private(update)

    def _done_if_complete(self, client_id: str) -> None:
        tracked, best = self._tracked.get(client_id), self._best.get(client_id)
        if tracked is None or best is None or best.status not in _TERMINAL:
            return
        if tracked.filled_seen >= best.filled_quantity and not tracked.in_flight:
            del self._tracked[client_id]

    def _publish_state(self, state: VenueOrderState) -> VenueOrderState:
        """Publish ``state`` when it is news (see the module docstring); the best state known."""
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
        _trim(self._best, keep=self._tracked)
        self.updates.put_nowait(state)
        self.counters["states"] += 1
        self._done_if_complete(state.client_order_id)
        return state

    def _publish_fill(self, fill: VenueFill, tracked: _Tracked, source: str) -> bool:
        if fill.fill_id in self._fill_ids:
            self.counters["fills_dropped"] += 1
            return False
        self._fill_ids[fill.fill_id] = None
        _trim(self._fill_ids)
        tracked.filled_seen += fill.quantity
        self.updates.put_nowait(fill)
        self.counters[f"fills_from_{source}"] += 1
        self._done_if_complete(tracked.client_order_id)
        return True

    def _state(
        self,
        tracked: _Tracked,
        status: OrderStatus,
        filled: Decimal = ZERO,
        filled_quote: Decimal = ZERO,
        reason: str = "",
    ) -> VenueOrderState:
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

    def _venue_fill(self, fill: Fill, client_id: str) -> VenueFill:
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

    async def _absorb(self, order: Order, tracked: _Tracked, source: str) -> VenueOrderState:
        """Publish what a REST answer about ``tracked`` says: its missing fills, then its state."""
        self._learn_venue_id(tracked, order.order_id)
        status = order_status(order.status, order.executed_qty)
        if status is None:
            self.counters["unknown_status"] += 1
            logger.warning("MEXC order %s has an unknown status %r", order.order_id, order.status)
            return self._best.get(tracked.client_order_id) or self._state(tracked, "PENDING_NEW")
        if order.executed_qty > tracked.filled_seen:
            try:
                found = await self.fills(tracked.symbol, venue_order_id=order.order_id)
            except CdbError as e:  # the next poll asks again: fewer fills seen than filled
                self.counters["trades_unavailable"] += 1
                logger.warning("MEXC trades of %s unavailable: %s", tracked.client_order_id, e)
                found = []
            for fill in found:
                fill = replace(fill, client_order_id=tracked.client_order_id)
                self._publish_fill(fill, tracked, source)
        state = self._state(tracked, status, order.executed_qty, order.cumulative_quote_qty)
        self.counters[f"states_from_{source}"] += 1
        return self._publish_state(state)

    # -- the user-data stream --------------------------------------------------------------------

    async def _consume_stream(self, stream: MexcUserStream) -> None:
        while True:
            update = await stream.updates.get()
            try:
                self._on_private(update)
            except Exception:  # a bad push must not end the consumer
                self.counters["stream_errors"] += 1
                logger.exception("MEXC private update could not be applied")

    def _on_private(self, update: PrivateUpdate) -> None:
        if not isinstance(update, OrderUpdate | FillUpdate):
            return  # balances: the caller asks balances() when it needs them
        client_id = update.client_order_id or self._by_venue.get(update.order_id, "")
        tracked = self._tracked.get(client_id) if client_id else None
        if tracked is None:
            if not client_id and update.order_id and update.order_id not in self._by_venue:
                self._held.setdefault(update.order_id, []).append(update)  # may be ours: hold
                self.counters["stream_held"] += 1
                _trim(self._held, _HELD)
            return
        if update.order_id:
            self._learn_venue_id(tracked, update.order_id)
        if isinstance(update, FillUpdate):
            fill = VenueFill(
                fill_id=update.trade_id,
                client_order_id=tracked.client_order_id,
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
            self._publish_fill(fill, tracked, "stream")
            return
        status = order_status(update.status, update.cumulative_quantity)
        if status is not None:
            self.counters["states_from_stream"] += 1
            self._publish_state(
                self._state(tracked, status, update.cumulative_quantity, update.cumulative_amount)
            )

    # -- polling ---------------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            wait = self.poll_interval_s
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
        await self._check_clock()
        for tracked in list(self._tracked.values()):
            if self._tracked.get(tracked.client_order_id) is tracked and not tracked.in_flight:
                await self._refresh(tracked)

    async def _refresh(self, tracked: _Tracked) -> None:
        try:
            found = await self.http.query_order(
                tracked.symbol, client_order_id=tracked.client_order_id
            )
            tracked.misses = 0
            self._signed_fine()
            await self._absorb(found, tracked, "poll")
        except RateLimited:
            raise
        except VenueRejected as e:
            if e.code not in CODE_UNKNOWN_ORDER:
                self._note_error(e)
                logger.warning("MEXC refused polling %s: %s", tracked.client_order_id, e.message)
                return
            tracked.misses += 1
            if tracked.venue_order_id == "" and tracked.misses >= self.resolve_attempts:
                self._never_reached(tracked)
            elif tracked.venue_order_id and tracked.misses >= 10 * self.resolve_attempts:
                logger.error(
                    "MEXC no longer knows order %s (%s); no longer polling it",
                    tracked.client_order_id,
                    tracked.venue_order_id,
                )
                del self._tracked[tracked.client_order_id]
        except CdbError as e:
            logger.warning("MEXC poll of %s failed: %s", tracked.client_order_id, e.message)

    def _never_reached(self, tracked: _Tracked) -> VenueOrderState:
        self.counters["never_reached"] += 1
        logger.warning("MEXC order %s %s; REJECTED", tracked.client_order_id, NEVER_REACHED)
        tracked.in_flight = False
        state = self._publish_state(self._state(tracked, "REJECTED", reason=NEVER_REACHED))
        self._tracked.pop(tracked.client_order_id, None)
        return state

    # -- placing ---------------------------------------------------------------------------------

    async def instrument(self, symbol: str) -> Instrument:
        """The symbol's filters and fees from exchangeInfo (cached)."""
        found = self._instruments.get(symbol)
        if found is None:
            self._instruments.update(await self.http.exchange_info([symbol]))
            found = self._instruments.get(symbol)
        if found is None:
            raise _Refused(f"{symbol} is not tradable on MEXC (exchangeInfo)")
        return found

    async def _order_params(self, order: OrderRecord) -> _Params:
        """What to send, rounded to the filters; _Refused when a filter fails."""
        inst = await self.instrument(order.symbol)
        if order.order_type == "MARKET":
            return await self._market_params(order, inst)
        if order.price is None:  # pragma: no cover - OrderRecord refuses a priced type without
            raise _Refused(f"a {order.order_type} order needs a price")
        price = inst.round_price(order.price, up=order.side is Side.BUY)
        if order.quantity is not None:
            quantity = inst.round_quantity(order.quantity)
        else:
            quantity = inst.round_quantity((order.quote_amount or ZERO) / price)
        problem = inst.check_order(quantity, price)
        if problem is not None:
            raise _Refused(problem)
        return _Params(quantity=quantity, price=price)

    async def _market_params(self, order: OrderRecord, inst: Instrument) -> _Params:
        buy = order.side is Side.BUY
        if buy and order.quote_amount is not None:
            quote = _floor(order.quote_amount, inst.tick_size)
            if quote <= 0 or quote < inst.min_notional:
                raise _Refused(f"quote amount {quote} is below the minimum {inst.min_notional}")
            if inst.max_notional is not None and quote > inst.max_notional:
                raise _Refused(f"quote amount {quote} is above the maximum {inst.max_notional}")
            return _Params(quote_order_qty=quote)
        if order.quantity is None:
            raise _Refused("a MARKET sell needs a quantity (MEXC sells by base quantity)")
        quantity = inst.round_quantity(order.quantity)
        if quantity <= 0 or quantity < inst.min_quantity:
            raise _Refused(f"quantity {quantity} is below the minimum {inst.min_quantity}")
        reference = await self._best_price(order.symbol, buy)
        problem = None if reference is None else inst.check_order(quantity, reference)
        if problem is not None:
            raise _Refused(problem)
        return _Params(quantity=quantity)

    async def _best_price(self, symbol: str, buy: bool) -> Decimal | None:
        try:
            ticker = await self.http.book_ticker(symbol)
        except CdbError as e:
            logger.warning("MEXC best price of %s unavailable (%s)", symbol, e.message)
            return None
        return ticker.ask if buy else ticker.bid

    def _refuse(self, order: OrderRecord, reason: str) -> VenueOrderState:
        """REJECTED without anything sent."""
        self.counters["refused"] += 1
        logger.warning("MEXC order %s not sent: %s", order.client_order_id, reason)
        tracked = _Tracked(order.client_order_id, order.symbol, order.side)
        return self._publish_state(self._state(tracked, "REJECTED", reason=reason))

    async def place(self, order: OrderRecord) -> VenueOrderState:
        """Send ``order`` once; its state (see the module docstring for every outcome)."""
        client_id = order.client_order_id
        if client_id in self._tracked or client_id in self._best:
            return await self._placed_before(order)
        try:
            params = await self._order_params(order)
        except _Refused as e:
            return self._refuse(order, f"not sent: {e}")
        except ConfigurationError:
            raise
        except CdbError as e:
            return self._refuse(order, f"not sent: {e.message}")
        if not self.signing_ok:
            with contextlib.suppress(RateLimited):
                await self._check_clock()
            if not self.signing_ok:
                return self._refuse(
                    order, f"not sent: cannot sign validly ({self.signing_problem})"
                )
        return await self._send(order, params)

    async def _placed_before(self, order: OrderRecord) -> VenueOrderState:
        """A client order id this client knows is never sent again: what is known of it."""
        self.counters["place_repeated"] += 1
        known = self._tracked.get(order.client_order_id)
        if known is not None and not known.in_flight:
            return await self._resolve(known)
        best = self._best.get(order.client_order_id)
        if best is not None:
            return best
        return self._state(
            known or _Tracked(order.client_order_id, order.symbol, order.side), "PENDING_NEW"
        )

    async def _send(self, order: OrderRecord, params: _Params) -> VenueOrderState:
        client_id = order.client_order_id
        tracked = self._track(client_id, order.symbol, order.side)
        tracked.in_flight = True
        try:
            placed = await self.http.new_order(
                order.symbol,
                order.side.value,
                order.order_type,
                quantity=params.quantity,
                quote_order_qty=params.quote_order_qty,
                price=params.price,
                client_order_id=client_id,
            )
            if placed is None:  # pragma: no cover - only test orders answer nothing
                raise MalformedEvent("MEXC answered a new order with nothing")
        except VenueRejected as e:
            self._note_error(e)
            self._tracked.pop(client_id, None)
            self.counters["rejected"] += 1
            logger.warning("MEXC rejected order %s: %s", client_id, e.message)
            return self._publish_state(self._state(tracked, "REJECTED", reason=e.message))
        except ConfigurationError:
            self._tracked.pop(client_id, None)  # nothing was sent: no credentials
            raise
        except (CdbError, KeyError, TypeError, ValueError) as e:  # 5xx, timeout, odd answer
            self.counters["outcome_unknown"] += 1
            logger.warning(
                "MEXC did not confirm order %s (%s); asking for it, never resending",
                client_id,
                e.message if isinstance(e, CdbError) else f"{type(e).__name__}: {e}",
            )
            return await self._resolve(tracked)
        except BaseException:
            tracked.in_flight = False  # cancelled mid-send: polling finds out what happened
            raise
        self.counters["placed"] += 1
        self._signed_fine()
        tracked.in_flight = False
        self._learn_venue_id(tracked, placed.order_id)
        status = order_status(placed.status, placed.executed_qty) or "NEW"
        return self._publish_state(
            self._state(tracked, status, placed.executed_qty, placed.cumulative_quote_qty)
        )

    async def _resolve(self, tracked: _Tracked) -> VenueOrderState:
        """Find out by client order id whether MEXC has the order; never send it again."""
        tracked.in_flight = True
        misses, last_missed, wait = 0, False, self.resolve_backoff_s
        try:
            for attempt in range(self.resolve_attempts):
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
                    self._note_error(e)
                    continue
                except CdbError as e:
                    last_missed = False
                    logger.warning("MEXC lookup of %s failed: %s", tracked.client_order_id, e)
                    continue
                self._signed_fine()
                tracked.misses = 0
                tracked.in_flight = False
                self.counters["resolved_by_query"] += 1
                return await self._absorb(found, tracked, "query")
        finally:
            tracked.in_flight = False
        if last_missed and misses >= min(2, self.resolve_attempts):
            return self._never_reached(tracked)
        tracked.misses = misses
        self.counters["still_unknown"] += 1
        logger.error(
            "MEXC order %s: outcome still unknown; polling keeps asking", tracked.client_order_id
        )
        return self._best.get(tracked.client_order_id) or self._state(tracked, "PENDING_NEW")

    # -- cancel, query, open orders, fills, balances --------------------------------------------

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState:
        """Cancel, then confirm by query (MEXC's cancel answer shows the status before it).

        Raises VenueRejected when MEXC does not know the id and this client never placed it.
        """
        try:
            await self.http.cancel_order(symbol, client_order_id=client_order_id)
            self.counters["canceled"] += 1
        except VenueRejected as e:
            if e.code not in CODE_UNKNOWN_ORDER:
                self._note_error(e)
                raise
            # Not open at MEXC: already done, or it never arrived. The query tells.
        except (VenueServerError, TransientError) as e:
            logger.warning("MEXC cancel of %s unconfirmed (%s); asking", client_order_id, e)
        state = await self.query(symbol, client_order_id)
        if state is not None:
            return state
        tracked = self._tracked.get(client_order_id)
        if tracked is None:
            raise VenueRejected(f"MEXC does not know order {client_order_id}", code=-2011)
        if tracked.venue_order_id or tracked.in_flight:
            return self._best.get(client_order_id) or self._state(tracked, "PENDING_NEW")
        tracked.misses += 1  # sent, outcome unknown, and MEXC still does not know it
        if tracked.misses >= min(2, self.resolve_attempts):
            return self._never_reached(tracked)
        return self._state(tracked, "PENDING_NEW")

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        """The order's state at MEXC (None when MEXC does not know the id).

        The order is tracked from now on until it is done, and its fills not yet published are.
        """
        try:
            found = await self.http.query_order(symbol, client_order_id=client_order_id)
        except VenueRejected as e:
            if e.code in CODE_UNKNOWN_ORDER:
                return None
            self._note_error(e)
            raise
        self._signed_fine()
        tracked = self._tracked.get(client_order_id)
        if tracked is None:
            tracked = self._track(client_order_id, found.symbol, Side(found.side.upper()))
        return await self._absorb(found, tracked, "query")

    async def open_orders(self, symbols: Sequence[str]) -> list[VenueOrderState]:
        """Every open order on ``symbols``, ours and others (tell them apart by client id)."""
        now = self._clock_ns()
        states = []
        for symbol in symbols:
            for o in await self.http.open_orders(symbol):
                status = order_status(o.status, o.executed_qty)
                client_id = o.client_order_id or self._by_venue.get(o.order_id, "")
                states.append(
                    VenueOrderState(
                        client_order_id=client_id,
                        venue_order_id=o.order_id,
                        symbol=o.symbol,
                        side=Side(o.side.upper()),
                        status=status or "NEW",
                        filled_quantity=o.executed_qty,
                        filled_quote=o.cumulative_quote_qty,
                        ts_ns=now,
                    )
                )
        return states

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
            self._venue_fill(f, self._by_venue.get(f.order_id) or f.client_order_id or "")
            for f in rows
        ]

    async def balances(self) -> dict[str, Decimal]:
        """Free + locked of every asset MEXC reports."""
        account = await self.http.account()
        self._signed_fine()
        return {asset: b.free + b.locked for asset, b in account.items()}


if TYPE_CHECKING:
    from cdb_cli.engine.ports.execution import ExecutionClient

    def _implements_the_port(client: MexcExecutionClient) -> ExecutionClient:
        return client  # mypy proves the class satisfies the port, signature by signature


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def _trim(mapping: OrderedDict[str, Any], limit: int = _REMEMBERED, keep: Any = ()) -> None:
    """Forget the oldest entries beyond ``limit``, except keys in ``keep``."""
    excess = len(mapping) - limit
    if excess <= 0:
        return
    for key in [k for k in mapping if k not in keep][:excess]:
        del mapping[key]
