"""``MexcExecutionClient``: the live MEXC side of the engine's ``ExecutionClient`` port.

It places, cancels and queries orders over :class:`MexcHttpClient`. What happens to them afterwards
arrives on :attr:`MexcExecutionClient.updates`, from two sources:

- the user-data stream (:class:`MexcUserStream`, when a WebSocket URL is given): ``privateOrders``
  become :class:`VenueOrderState`, ``privateDeals`` become :class:`VenueFill` with the real
  commission and its asset;
- REST polling (:mod:`.polling`), which always runs: a dead or silent stream only delays updates
  by one ``poll_interval_s``.

The client is I/O and composition; the decisions live beside it:

- :mod:`.tracker` — what is remembered of each order and what is published: one filter for both
  sources (a fill once per trade id, a state only when it is news, never backwards), attribution
  of pushes without a client order id. A fill is published before the state that counts it when
  both come from one poll. Every state this client learns, including the one :meth:`place`
  returns, is published, so a consumer may rely on the queue alone; applying a returned state
  again is harmless;
- :mod:`.orderparams` — the request sent for an order, rounded to the instrument's filters;
- :mod:`.placing` — sending each client order id once, resolving a lost answer by query;
- :mod:`.clockguard` — :attr:`signing_ok`: while the clock is off MEXC's by more than
  ``max_clock_skew_ms`` (default: the REST client's recvWindow) or signed requests are refused for
  their timestamp, :meth:`place` returns REJECTED without sending; polling, queries and cancels go
  on.

Other calls: :meth:`cancel` sends the cancel and confirms it by a query (MEXC answers a cancel
with the status before it); an order no longer open is answered with its final state.
:meth:`query` returns None when MEXC does not know the id; otherwise the order is tracked until
done and its fills not yet published are. :meth:`open_orders` lists ours and others' (the caller
tells them apart by the client id prefix); :meth:`fills` reads ``myTrades`` page by page;
:meth:`balances` is free + locked per asset. :meth:`track` takes back orders after a restart.
:attr:`counters` counts what happened (``placed``, ``outcome_unknown``, ``resolved_by_query``,
``never_reached``, ``refused``, ``fills_from_stream``, ``fills_from_poll``, ``polls`` …).

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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cdb_cli.adapters.mexc.clockguard import ClockGuard
from cdb_cli.adapters.mexc.errors import CODE_UNKNOWN_ORDER
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.placing import OrderPlacer
from cdb_cli.adapters.mexc.polling import OrderPoller
from cdb_cli.adapters.mexc.tracker import OrderTracker, order_status
from cdb_cli.adapters.mexc.userstream import MexcUserStream
from cdb_cli.engine.errors import RateLimited, TransientError, VenueRejected, VenueServerError
from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState, VenueUpdate
from cdb_cli.engine.records import OPEN_ORDER_STATUSES, OrderRecord

__all__ = ["MexcExecutionClient"]

logger = logging.getLogger(__name__)


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
        self.stream_options: dict[str, Any] = dict(stream_options or {})
        self._clock_ns = clock_ns
        self.updates: asyncio.Queue[VenueUpdate] = asyncio.Queue()
        self.counters: Counter[str] = Counter()
        self.stream: MexcUserStream | None = None
        self._orders = OrderTracker(self.updates.put_nowait, self.counters, clock_ns)
        skew = http.recv_window if max_clock_skew_ms is None else max_clock_skew_ms
        self._guard = ClockGuard(skew, self.counters)
        self._poller = OrderPoller(
            http, self._orders, self._guard, self.counters, attempts=self.resolve_attempts
        )
        self._placer = OrderPlacer(
            self._poller,
            instruments=instruments or {},
            attempts=self.resolve_attempts,
            backoff_s=resolve_backoff_s,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"MexcExecutionClient({self.http!r}, tracking={len(self._orders.tracked())})"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Sync the clock, open the user stream (when a URL was given), start polling."""
        if self._tasks:
            return
        with contextlib.suppress(RateLimited):  # polling measures again
            await self._poller.check_clock()
        if self.ws_url is not None:
            self.stream = MexcUserStream(self.http, self.ws_url, **self.stream_options)
            await self.stream.start()
            self._tasks.append(asyncio.create_task(self._consume_stream(self.stream)))
        self._tasks.append(asyncio.create_task(self._poller.run(self.poll_interval_s)))

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

    async def _consume_stream(self, stream: MexcUserStream) -> None:
        while True:
            update = await stream.updates.get()
            try:
                self._orders.on_private(update)
            except Exception:  # a bad push must not end the consumer
                self.counters["stream_errors"] += 1
                logger.exception("MEXC private update could not be applied")

    async def poll_once(self) -> None:
        """One polling round now (see :meth:`OrderPoller.poll_once`)."""
        await self._poller.poll_once()

    # -- signing ---------------------------------------------------------------------------------

    @property
    def signing_ok(self) -> bool:
        """False while our requests cannot be signed validly (see :mod:`.clockguard`)."""
        return self._guard.ok

    @property
    def signing_problem(self) -> str | None:
        """Why :attr:`signing_ok` is False, for the operator; None when it is True."""
        return self._guard.problem

    # -- orders ----------------------------------------------------------------------------------

    def track(self, order: OrderRecord) -> None:
        """Keep polling ``order`` until it is done (an order taken back after a restart).

        Its fills are published again from the venue: the consumer ignores fill ids it booked.
        Without a venue order id and unknown to MEXC for ``resolve_attempts`` polls, it becomes
        REJECTED "never reached the venue". Orders not open (by ``status``) are ignored.
        """
        if order.status not in OPEN_ORDER_STATUSES:
            return
        self._orders.track(order.client_order_id, order.symbol, order.side, order.venue_order_id)

    def tracked(self) -> list[str]:
        """Client order ids being kept current."""
        return self._orders.ids()

    async def instrument(self, symbol: str) -> Instrument:
        """The symbol's filters and fees from exchangeInfo (cached)."""
        return await self._placer.instrument(symbol)

    async def place(self, order: OrderRecord) -> VenueOrderState:
        """Send ``order`` once; its state (see :mod:`.placing` for every outcome)."""
        return await self._placer.place(order)

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState:
        """Cancel, then confirm by query (MEXC's cancel answer shows the status before it).

        Raises VenueRejected when MEXC does not know the id and this client never placed it.
        """
        try:
            await self.http.cancel_order(symbol, client_order_id=client_order_id)
            self.counters["canceled"] += 1
        except VenueRejected as e:
            if e.code not in CODE_UNKNOWN_ORDER:
                self._guard.refused(e)
                raise
            # Not open at MEXC: already done, or it never arrived. The query tells.
        except (VenueServerError, TransientError) as e:
            logger.warning("MEXC cancel of %s unconfirmed (%s); asking", client_order_id, e)
        state = await self.query(symbol, client_order_id)
        if state is not None:
            return state
        tracked = self._orders.get(client_order_id)
        if tracked is None:
            raise VenueRejected(f"MEXC does not know order {client_order_id}", code=-2011)
        if tracked.venue_order_id or tracked.in_flight:
            return self._orders.current(tracked)
        tracked.misses += 1  # sent, outcome unknown, and MEXC still does not know it
        if tracked.misses >= min(2, self.resolve_attempts):
            return self._orders.never_reached(tracked)
        return self._orders.state(tracked, "PENDING_NEW")

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        """The order's state at MEXC (None when MEXC does not know the id).

        The order is tracked from now on until it is done, and its fills not yet published are.
        """
        try:
            found = await self.http.query_order(symbol, client_order_id=client_order_id)
        except VenueRejected as e:
            if e.code in CODE_UNKNOWN_ORDER:
                return None
            self._guard.refused(e)
            raise
        self._guard.signed()
        tracked = self._orders.get(client_order_id)
        if tracked is None:
            tracked = self._orders.track(client_order_id, found.symbol, Side(found.side.upper()))
        return await self._poller.absorb(found, tracked, "query")

    # -- the account -----------------------------------------------------------------------------

    async def open_orders(self, symbols: Sequence[str]) -> list[VenueOrderState]:
        """Every open order on ``symbols``, ours and others (tell them apart by client id)."""
        now = self._clock_ns()
        states = []
        for symbol in symbols:
            for o in await self.http.open_orders(symbol):
                status = order_status(o.status, o.executed_qty)
                states.append(
                    VenueOrderState(
                        client_order_id=o.client_order_id or self._orders.client_id_of(o.order_id),
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
        return await self._poller.fills(symbol, venue_order_id=venue_order_id, since_ns=since_ns)

    async def balances(self) -> dict[str, Decimal]:
        """Free + locked of every asset MEXC reports."""
        account = await self.http.account()
        self._guard.signed()
        return {asset: b.free + b.locked for asset, b in account.items()}


if TYPE_CHECKING:
    from cdb_cli.engine.ports.execution import ExecutionClient

    def _implements_the_port(client: MexcExecutionClient) -> ExecutionClient:
        return client  # mypy proves the class satisfies the port, signature by signature
