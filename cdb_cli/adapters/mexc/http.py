"""``MexcHttpClient``: MEXC spot REST v3 on httpx (async), signed exactly as mexc_api.md §1.

Every signed parameter goes in the query string with ``Content-Type: application/json`` and an empty
body (what every mainstream client does, §1.5). The server-time offset comes from ``/api/v3/time``
and is re-synced once when MEXC answers 700003. Retries use bounded exponential backoff with jitter
and happen only when retrying is safe: rate limits, connection failures, and 5xx / dead connections
on GET. A POST or DELETE whose outcome is unknown is never resent; it raises VenueServerError and
the caller must query the order.

Rate limits (:mod:`.ratelimit`): MEXC's weight per endpoint against 500 per 10 s, 20 requests
and 10 orders a second. A 429 (418, WAF 403) is waited out and the request resent (any method:
MEXC did not take it) while its waits stay within ``max_rate_limit_wait`` and each Retry-After
within ``max_retry_after``; then ``RateLimited``. Not counted in ``max_attempts``, except that
``max_attempts=1`` (a probe) retries nothing.

Every answer is read by its endpoint's reader (:data:`READERS`), which checks its shape field by
field: a 2xx body the reader cannot read raises :class:`~.errors.MalformedAnswer`, a
``VenueServerError`` (the outcome is unknown, as for a 5xx; a GET is retried). So every answer
MEXC can send ends in the error tree of :mod:`.errors`: ``VenueRejected``, ``VenueServerError``
or ``RateLimited``, never ``KeyError`` or ``TypeError``. Messages show the masked key only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx

from cdb_cli.adapters.mexc.answers import (
    read_balances,
    read_canceled_orders,
    read_default_symbols,
    read_empty,
    read_klines,
    read_listen_key,
    read_open_orders,
    read_order,
    read_order_state,
    read_permissions,
    read_server_time,
    read_symbols,
    read_trades,
)
from cdb_cli.adapters.mexc.errors import CODE_TIMESTAMP, read_answer
from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
from cdb_cli.adapters.mexc.models import (
    Balance,
    BookTicker,
    Depth,
    Fill,
    Kline,
    MexcSymbol,
    Order,
    format_decimal,
)
from cdb_cli.adapters.mexc.ratelimit import RequestLimits
from cdb_cli.adapters.mexc.signing import Credentials, encode_params
from cdb_cli.adapters.mexc.weights import BUDGET, weight
from cdb_cli.engine.errors import (
    CdbError,
    ConfigurationError,
    RateLimited,
    TransientError,
    VenueRejected,
    VenueServerError,
)
from cdb_cli.engine.instruments import Instrument

__all__ = ["MexcHttpClient"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

API = "/api/v3"
MAX_RECV_WINDOW = 60_000
SANE_ROUND_TRIP_MS = 1_000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _num(value: Decimal | str | int) -> str:
    return format_decimal(value) if isinstance(value, Decimal) else str(value)


class MexcHttpClient:
    """Async MEXC spot REST client. Use as ``async with MexcHttpClient(url, creds) as client``.

    Only :attr:`api_key_masked` is ever shown; the secret stays inside :class:`Credentials`.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        recv_window: int = 5000,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.25,
        backoff_max: float = 5.0,
        max_retry_after: float = 30.0,
        max_rate_limit_wait: float = 60.0,
        requests_per_second: int = 20,
        orders_per_second: int = 10,
        weight_budget: int = BUDGET,
        clock_ms: Callable[[], int] = _wall_ms,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 < recv_window <= MAX_RECV_WINDOW:
            raise ConfigurationError(f"recvWindow must be in 1..{MAX_RECV_WINDOW} ms")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.recv_window = recv_window
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.max_rate_limit_wait = max_rate_limit_wait
        self._clock_ms = clock_ms
        self.time_offset_ms: int | None = None
        self.limits = RequestLimits(
            weight_budget=weight_budget,
            requests_per_second=requests_per_second,
            orders_per_second=orders_per_second,
        )
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"MexcHttpClient({self.base_url!r}, api_key={self.api_key_masked!r})"

    @property
    def api_key_masked(self) -> str | None:
        """The API key for display (``mx0a…WC5``), or None without credentials."""
        return None if self._credentials is None else self._credentials.api_key_masked

    async def __aenter__(self) -> MexcHttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        jitter: float = random.random()  # noqa: S311 - jitter, not crypto
        return ceiling * (0.5 + jitter / 2)

    def _signed_query(self, params: list[tuple[str, str]]) -> str:
        if self._credentials is None:
            raise ConfigurationError(
                "This MEXC request is signed: set CDB_MEXC_API_KEY and CDB_MEXC_API_SECRET"
            )
        offset = self.time_offset_ms or 0
        params = [
            *params,
            ("recvWindow", str(self.recv_window)),
            ("timestamp", str(self._clock_ms() + offset)),
        ]
        query = encode_params(params)
        return f"{query}&signature={self._credentials.sign(query)}"

    def _headers(self, signed: bool) -> dict[str, str]:
        if signed and self._credentials is not None:
            return {"Content-Type": "application/json", "X-MEXC-APIKEY": self._credentials.api_key}
        return {"Content-Type": "application/json"}

    async def _send_once(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        read: Callable[[Any], T],
        *,
        signed: bool,
    ) -> T:
        where = f"{method} {path}"
        query = self._signed_query(params) if signed else encode_params(params)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            # Headers are built inline: no local variable holds the key (tracebacks with locals).
            response = await self._http.request(method, url, headers=self._headers(signed))
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise TransientError(f"Cannot connect to MEXC at {self.base_url}: {e}") from None
        except httpx.RequestError as e:  # read/write errors, timeouts, protocol errors
            text = f"{type(e).__name__}{': ' + str(e) if str(e) else ''}"
            if method == "GET":
                raise TransientError(f"MEXC {where} failed: {text}") from None
            raise VenueServerError(
                f"MEXC {where} failed after sending ({text}); the outcome is unknown"
            ) from None
        try:
            return read_answer(
                response.status_code, response.content, response.headers, where=where, parse=read
            )
        except CdbError as e:
            if self._credentials is not None:  # MEXC's message could echo what we sent
                e.message = self._credentials.redact(e.message)
                e.args = (e.message,)
            raise

    def _retry_delay(self, error: CdbError, method: str, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` (not a rate limit), or None when it
        must not be retried."""
        safe = isinstance(error, TransientError)
        safe = safe or (isinstance(error, VenueServerError) and method == "GET")
        return self._backoff(attempt) if safe else None

    async def _request(
        self,
        method: str,
        path: str,
        read: Callable[[Any], T],
        params: Sequence[tuple[str, str]] = (),
        *,
        signed: bool = False,
        order: bool = False,
    ) -> T:
        """Send with rate limiting and the retry policy of the module docstring; the answer as
        ``read`` (one of :data:`READERS`) finds it."""
        params = list(params)
        if signed and self.time_offset_ms is None:
            await self.sync_time()
        cost = weight(method, path.removeprefix(f"{API}/"), any(k == "symbol" for k, _ in params))
        resynced = False
        attempt = limited = 0
        waited = 0.0  # Retry-After waited for this request so far
        while True:
            await self.limits.acquire(cost, order=order)
            try:
                return await self._send_once(method, path, params, read, signed=signed)
            except RateLimited as e:
                wait = e.retry_after if e.retry_after is not None else self._backoff(limited)
                limited += 1
                if (
                    self.max_attempts == 1
                    or wait > self.max_retry_after
                    or waited + wait > self.max_rate_limit_wait
                ):
                    raise
                waited += wait
                self.limits.refused(wait, cost)
                budget = self.limits.weights.budget
                logger.warning(
                    "MEXC 429 on %s %s: waiting %.2f s (%d/10 s)", method, path, wait, budget
                )
            except VenueRejected as e:
                attempt += 1
                last = attempt >= self.max_attempts
                if e.code not in CODE_TIMESTAMP or resynced or not signed or last:
                    raise
                resynced = True
                logger.warning("MEXC says our clock is off; re-syncing server time")
                await self.sync_time()
            except CdbError as e:
                retry = self._retry_delay(e, method, attempt)
                attempt += 1
                if retry is None or attempt >= self.max_attempts:
                    raise
                logger.warning("MEXC %s %s: %s; retrying in %.2f s", method, path, e, retry)
                await asyncio.sleep(retry)

    # -- public market data --------------------------------------------------------------------

    async def ping(self) -> None:
        """``GET /api/v3/ping``; raises when MEXC is unreachable or unwell."""
        await self._request("GET", f"{API}/ping", read_empty)

    async def server_time(self) -> int:
        """MEXC's clock, ms since the epoch."""
        return await self._request("GET", f"{API}/time", read_server_time)

    async def sync_time(self) -> int:
        """Measure the server-time offset (ms, server minus local at the midpoint) and keep it.

        A measurement whose round trip took over a second (it waited out a rate limit or a retry)
        cannot place the midpoint; it is taken again, at most three times in all.
        """
        for _ in range(3):
            before = self._clock_ms()
            server = await self.server_time()
            after = self._clock_ms()
            if after - before <= SANE_ROUND_TRIP_MS:
                break
        self.time_offset_ms = server - (before + after) // 2
        return self.time_offset_ms

    async def symbols(self, symbols: Sequence[str] = ()) -> dict[str, MexcSymbol]:
        """Every symbol's instrument, tradability and order types (all symbols when none given)."""
        params = [("symbols", ",".join(symbols))] if symbols else []
        return await self._request("GET", f"{API}/exchangeInfo", read_symbols, params)

    async def api_symbols(self) -> frozenset[str]:
        """The symbols MEXC lets the API trade (``/api/v3/defaultSymbols``); an order on any
        other is refused with 10007."""
        return await self._request("GET", f"{API}/defaultSymbols", read_default_symbols)

    async def exchange_info(self, symbols: Sequence[str] = ()) -> dict[str, Instrument]:
        """Instruments of the tradable symbols (status 1, spot allowed), by symbol."""
        found = await self.symbols(symbols)
        return {name: s.instrument for name, s in found.items() if s.tradable}

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """One page of klines; ``interval`` in any naming (``1h``, ``60m``)."""
        rest = lookup_interval(interval).rest
        if rest is None:
            raise ConfigurationError(f"MEXC REST has no {interval!r} klines")
        params = [("symbol", symbol), ("interval", rest), ("limit", str(limit))]
        if start_ms is not None:
            params.append(("startTime", str(start_ms)))
        if end_ms is not None:
            params.append(("endTime", str(end_ms)))
        return await self._request("GET", f"{API}/klines", read_klines, params)

    async def iter_klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, *, page: int = 500
    ) -> AsyncIterator[list[Kline]]:
        """Pages of klines with ``start_ms <= open time < end_ms``, oldest first.

        Each request starts after the last row received, so it always makes progress; it stops at
        ``end_ms`` or when a page is empty.
        """
        step = lookup_interval(interval).ms
        cursor = start_ms
        while cursor < end_ms:
            rows = await self.klines(symbol, interval, start_ms=cursor, end_ms=end_ms, limit=page)
            rows = [r for r in rows if cursor <= r.open_time_ms < end_ms]
            if not rows:
                return
            yield rows
            cursor = rows[-1].open_time_ms + step

    async def depth(self, symbol: str, limit: int = 100) -> Depth:
        """Order book snapshot."""
        params = [("symbol", symbol), ("limit", str(limit))]
        return await self._request("GET", f"{API}/depth", Depth.from_json, params)

    async def book_ticker(self, symbol: str) -> BookTicker:
        """Best bid/ask of one symbol."""
        params = [("symbol", symbol)]
        return await self._request("GET", f"{API}/ticker/bookTicker", BookTicker.from_json, params)

    # -- signed: account and orders ------------------------------------------------------------

    async def account(self) -> dict[str, Balance]:
        """Balances by asset."""
        return await self._request("GET", f"{API}/account", read_balances, signed=True)

    async def account_permissions(self) -> tuple[bool, tuple[str, ...]]:
        """(``canTrade``, ``permissions``) of the account: may it place spot orders at all."""
        return await self._request("GET", f"{API}/account", read_permissions, signed=True)

    @staticmethod
    def _order_params(
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal | None,
        quote_order_qty: Decimal | None,
        price: Decimal | None,
        client_order_id: str | None,
    ) -> list[tuple[str, str]]:
        params = [("symbol", symbol), ("side", side), ("type", order_type)]
        if quantity is not None:
            params.append(("quantity", _num(quantity)))
        if quote_order_qty is not None:
            params.append(("quoteOrderQty", _num(quote_order_qty)))
        if price is not None:
            params.append(("price", _num(price)))
        if client_order_id is not None:
            params.append(("newClientOrderId", client_order_id))
        return params

    async def new_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        *,
        quantity: Decimal | None = None,
        quote_order_qty: Decimal | None = None,
        price: Decimal | None = None,
        client_order_id: str | None = None,
        test: bool = False,
    ) -> Order | None:
        """Place an order (``test=True``: validate only, returns None)."""
        params = self._order_params(
            symbol, side, order_type, quantity, quote_order_qty, price, client_order_id
        )
        if test:
            path = f"{API}/order/test"
            return await self._request("POST", path, read_empty, params, signed=True, order=True)
        path = f"{API}/order"
        return await self._request("POST", path, read_order, params, signed=True, order=True)

    @staticmethod
    def _id_params(
        symbol: str, order_id: str | None, client_order_id: str | None
    ) -> list[tuple[str, str]]:
        params = [("symbol", symbol)]
        if order_id is not None:
            params.append(("orderId", order_id))
        if client_order_id is not None:
            params.append(("origClientOrderId", client_order_id))
        return params

    async def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        """Cancel; HTTP 200 means accepted (the status in the answer may be the old one)."""
        params = self._id_params(symbol, order_id, client_order_id)
        return await self._request(
            "DELETE", f"{API}/order", read_order, params, signed=True, order=True
        )

    async def cancel_open_orders(self, symbol: str) -> list[Order]:
        """Cancel every open order on ``symbol`` (the kill switch)."""
        params = [("symbol", symbol)]
        return await self._request(
            "DELETE", f"{API}/openOrders", read_canceled_orders, params, signed=True, order=True
        )

    async def query_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        """The current state of one order."""
        params = self._id_params(symbol, order_id, client_order_id)
        return await self._request("GET", f"{API}/order", read_order_state, params, signed=True)

    async def open_orders(self, symbol: str) -> list[Order]:
        """Our open orders on ``symbol``."""
        params = [("symbol", symbol)]
        return await self._request(
            "GET", f"{API}/openOrders", read_open_orders, params, signed=True
        )

    # -- user data stream (listenKey, mexc_api.md §4.7) -----------------------------------------

    async def create_listen_key(self) -> str:
        """A new listenKey for the private WebSocket, valid 60 minutes."""
        return await self._request("POST", f"{API}/userDataStream", read_listen_key, signed=True)

    async def keepalive_listen_key(self, listen_key: str) -> None:
        """Extend the key by 60 minutes (MEXC recommends every 30)."""
        params = [("listenKey", listen_key)]
        await self._request("PUT", f"{API}/userDataStream", read_empty, params, signed=True)

    async def close_listen_key(self, listen_key: str) -> None:
        """Invalidate the key (its WebSocket streams end)."""
        params = [("listenKey", listen_key)]
        await self._request("DELETE", f"{API}/userDataStream", read_empty, params, signed=True)

    async def my_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 100,
    ) -> list[Fill]:
        """Our fills on ``symbol``, optionally of one order or a time range."""
        params = [("symbol", symbol), ("limit", str(limit))]
        if order_id is not None:
            params.append(("orderId", order_id))
        if start_ms is not None:
            params.append(("startTime", str(start_ms)))
        if end_ms is not None:
            params.append(("endTime", str(end_ms)))
        return await self._request("GET", f"{API}/myTrades", read_trades, params, signed=True)
