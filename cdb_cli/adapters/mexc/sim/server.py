"""``SimServer``: MEXC's REST paths and WebSocket on one port (aiohttp), in process or as a command.

aiohttp serves HTTP and WebSocket on the same port and handles POST/DELETE bodies; the
``websockets`` server cannot serve ordinary HTTP requests, so it is not an option here.
Control endpoints for tests and rehearsals (loopback only): ``GET|POST /_sim/faults`` (see
:class:`~.faults.Faults`; e.g. ``{"accept_then_5xx": 1}`` or ``{"clock_offset_ms": -10000}``),
``POST /_sim/drop`` (cut every WebSocket), ``POST /_sim/step`` (advance the market once),
``GET|POST /_sim/symbols`` (what the API may trade: ``{"api_untradable": ["ETHUSDT"],
"no_market": ["BTCUSDT"], "trade_sides": {"BTCUSDT": "2"}}``).
In process, :meth:`SimServer.garble` replaces the next answers of one endpoint with given bytes
(the request is still handled: an order is booked), for tests of hostile answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any

from aiohttp import web

from cdb_cli.adapters.mexc.ratelimit import RateLimiter
from cdb_cli.adapters.mexc.sim import history, tickers
from cdb_cli.adapters.mexc.sim.auth import ApiError, parse_params
from cdb_cli.adapters.mexc.sim.exchange import SimExchange
from cdb_cli.adapters.mexc.sim.history import number
from cdb_cli.adapters.mexc.sim.market import PublicTrade
from cdb_cli.adapters.mexc.sim.orders import Account
from cdb_cli.adapters.mexc.sim.websocket import Connection, SimWebSocket
from cdb_cli.adapters.mexc.weights import WINDOW_S, weight

__all__ = ["SimServer"]

logger = logging.getLogger(__name__)

Handler = Callable[[Account | None, dict[str, str]], Any]
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
)


class SimServer:
    """Serve a :class:`SimExchange` on ``host:port``; port 0 picks a free one (:attr:`port`)."""

    def __init__(self, exchange: SimExchange, host: str = "127.0.0.1", port: int = 0) -> None:
        self.exchange = exchange
        self.host = host
        self.requested_port = port
        self.port = 0
        self.websocket = SimWebSocket(exchange)
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._budgets: dict[str, RateLimiter] = {}  # the ``rate_limit`` budget per address
        # The latest REST requests (monotonic s, method, path), for tests and rehearsals.
        self.requests: deque[tuple[float, str, str]] = deque(maxlen=10_000)
        self._garbled: dict[tuple[str, str], deque[bytes]] = {}

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; start the market ticker when the config has a tick interval."""
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        if self.exchange.config.tick_interval:
            self._ticker = asyncio.create_task(
                self._tick_forever(self.exchange.config.tick_interval)
            )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.websocket.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _tick_forever(self, interval: float) -> None:
        if self.exchange.config.lockstep:
            while True:
                await asyncio.sleep(interval)
                await self.step()
        # Each symbol on its own clock: exponential gaps (trades arrive as a Poisson process, as
        # on a real venue), seeded, so a run is repeatable in its order of trades.
        rng = random.Random(f"{self.exchange.config.seed}:ticker")
        loop = asyncio.get_running_loop()
        started = loop.time()
        due = {symbol: started + rng.expovariate(1 / interval) for symbol in self.exchange.markets}
        while due:
            await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))
            now = loop.time()
            ready = [symbol for symbol, at in due.items() if at <= now]
            await self.step(symbols=ready)
            for symbol in ready:  # a late loop catches up with one trade, not a burst
                due[symbol] = max(due[symbol] + rng.expovariate(1 / interval), now)

    async def step(
        self, prices: dict[str, Decimal] | None = None, symbols: Iterable[str] | None = None
    ) -> list[PublicTrade]:
        """Advance the market once (every symbol, or those of ``symbols``) and push the frames of
        every subscription."""
        trades = self.exchange.step(prices, symbols)
        await self.websocket.push(trades)
        await self.websocket.push_private(self.exchange.drain_outbox())
        return trades

    @property
    def connections(self) -> set[Connection]:
        """The open WebSocket connections."""
        return self.websocket.connections

    def drop_connections(self) -> int:
        """Cut every WebSocket without a close frame (like a network failure)."""
        return self.websocket.drop_all()

    def garble(self, method: str, path: str, *bodies: bytes) -> None:
        """Answer the next ``len(bodies)`` successful ``method path`` requests with these bodies
        (HTTP 200, JSON content type) instead of the real answer; the request is still handled."""
        self._garbled.setdefault((method.upper(), path), deque()).extend(bodies)

    # -- REST ------------------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        ex = self.exchange
        keys = ex.listen_keys
        public: dict[str, Handler] = {
            "ping": lambda _, p: {},
            "time": lambda _, p: {"serverTime": ex.server_ms()},
            "exchangeInfo": lambda _, p: ex.exchange_info(_symbols(p)),
            "defaultSymbols": lambda _, p: tickers.default_symbols(ex),
            "depth": lambda _, p: ex.depth(p.get("symbol"), _int(p, "limit", 100, 5000) or 100),
            "trades": lambda _, p: tickers.recent_trades(ex, p.get("symbol"), _limit(p, 500, 1000)),
            "aggTrades": lambda _, p: tickers.agg_trades(
                ex,
                p.get("symbol"),
                _limit(p, 500, 1000),
                number(p, "startTime"),
                number(p, "endTime"),
            ),
            "klines": self._klines,
            "avgPrice": lambda _, p: tickers.avg_price(ex, p.get("symbol")),
            "ticker/24hr": lambda _, p: tickers.tickers_24hr(ex, p.get("symbol")),
            "ticker/price": lambda _, p: tickers.price_tickers(ex, p.get("symbol")),
            "ticker/bookTicker": lambda _, p: tickers.book_tickers(ex, p.get("symbol")),
        }
        for name, handler in public.items():
            app.router.add_get(f"/api/v3/{name}", self._api(handler, signed=False, path=name))
        signed: list[tuple[str, str, Handler]] = [
            ("GET", "account", self._account),
            ("POST", "order", lambda a, p: ex.place_order(_acct(a), p)),
            ("POST", "order/test", lambda a, p: ex.place_order(_acct(a), p, test=True)),
            ("DELETE", "order", lambda a, p: ex.cancel_order(_acct(a), p)),
            ("GET", "order", lambda a, p: ex.find_order(_acct(a), p).as_json()),
            ("POST", "batchOrders", lambda a, p: history.batch_orders(ex, _acct(a), p)),
            ("GET", "openOrders", lambda a, p: ex.open_orders(_acct(a), p)),
            ("GET", "allOrders", lambda a, p: history.all_orders(ex, _acct(a), p)),
            ("DELETE", "openOrders", lambda a, p: ex.cancel_open_orders(_acct(a), p)),
            ("POST", "userDataStream", lambda a, p: {"listenKey": keys.create(_acct(a).api_key)}),
            ("GET", "userDataStream", lambda a, p: {"listenKey": keys.valid(_acct(a).api_key)}),
            (
                "PUT",
                "userDataStream",
                lambda a, p: {"listenKey": keys.extend(_acct(a).api_key, p.get("listenKey"))},
            ),
            (
                "DELETE",
                "userDataStream",
                lambda a, p: {"listenKey": keys.close(_acct(a).api_key, p.get("listenKey"))},
            ),
            ("GET", "myTrades", lambda a, p: history.my_trades(ex, _acct(a), p)),
            ("GET", "tradeFee", lambda a, p: history.trade_fee(ex, p)),
            ("GET", "capital/config/getall", lambda a, p: history.coin_config(ex)),
        ]
        for method, name, handler in signed:
            placement = (method, name) == ("POST", "order")
            endpoint = self._api(handler, signed=True, placement=placement, path=name)
            app.router.add_route(method, f"/api/v3/{name}", endpoint)
        # MEXC's futures API (a separate product): clients that list every market (ccxt's
        # load_markets) ask it for its contracts; the simulator has none.
        no_contracts: Handler = lambda _, p: {"success": True, "code": 0, "data": []}  # noqa: E731
        app.router.add_get(
            "/api/v1/contract/detail", self._api(no_contracts, signed=False, path="contract")
        )
        app.router.add_get("/ws", self.websocket.handle)
        app.router.add_route("*", "/_sim/faults", self._faults)
        app.router.add_route("*", "/_sim/symbols", self._symbols)
        app.router.add_post("/_sim/drop", self._drop)
        app.router.add_post("/_sim/step", self._step)

    def _klines(self, _: Account | None, p: dict[str, str]) -> list[list[object]]:
        from cdb_cli.adapters.mexc.intervals import interval

        market = self.exchange.market(p.get("symbol"))
        try:
            found = interval(p.get("interval", ""))
        except ValueError:
            raise ApiError(33333, "param is error") from None
        if found.rest != p.get("interval"):  # MEXC REST knows 60m, not 1h
            raise ApiError(33333, "param is error")
        start = _int(p, "startTime", None, None)
        end = _int(p, "endTime", None, None)
        return market.klines(found.ms, start, end, _int(p, "limit", 500, 1000) or 500)

    def _account(self, account: Account | None, _: dict[str, str]) -> dict[str, object]:
        return {
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": None,
            "accountType": "SPOT",
            "balances": _acct(account).balances_json(),
            "permissions": ["SPOT"],
        }

    def _rate_limited(self, request: web.Request, path: str) -> float | None:
        """Seconds to wait when this request's MEXC weight does not fit the budget of the last
        10 s (``rate_limit``), else None (and the weight is spent)."""
        limit = self.exchange.config.rate_limit
        if limit <= 0:
            return None
        cost = weight(request.method, path, bool(request.rel_url.query.get("symbol")))
        address = request.remote or "?"
        budget = self._budgets.get(address)
        if budget is None or budget.limit != limit:
            budget = self._budgets[address] = RateLimiter(limit, WINDOW_S)
        wait = budget.try_acquire(cost)
        return max(1.0, math.ceil(wait)) if wait > 0 else None

    def _injected(self, request: web.Request, path: str) -> web.Response | None:
        faults = self.exchange.faults
        wait = self._rate_limited(request, path)
        if wait is not None or faults.take("http_429"):
            return web.json_response(
                {"code": 429, "msg": "Too Many Requests"},
                status=429,
                headers={"Retry-After": str(int(wait or math.ceil(faults.retry_after)))},
                dumps=_dumps,
            )
        if faults.take("http_5xx"):
            return web.json_response(
                {"code": 503, "msg": "Service Unavailable"}, status=503, dumps=_dumps
            )
        if faults.take("http_html"):
            return web.Response(body=HTML_PAGE, status=502, content_type="text/html")
        if faults.take("http_empty"):
            return web.Response(body=b"", status=200)
        return None

    def _api(
        self, handler: Handler, *, signed: bool, path: str, placement: bool = False
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            faults = self.exchange.faults
            self.requests.append((time.monotonic(), request.method, request.path))
            if faults.delay:
                await asyncio.sleep(faults.delay)
            injected = self._injected(request, path)
            if injected is not None:
                return injected
            query = request.rel_url.raw_query_string
            body = await request.text()
            try:
                account = None
                if signed:
                    if request.method != "GET" and "Content-Type" not in request.headers:
                        raise ApiError(700013, "Invalid content Type.")
                    account, params = self.exchange.authenticate(
                        request.headers.get("X-MEXC-APIKEY"), query, body
                    )
                else:
                    params = parse_params(query, body)
                answer = web.json_response(handler(account, params), dumps=_dumps)
                await self.websocket.push_private(self.exchange.drain_outbox())
                if placement and faults.take("accept_then_5xx"):  # booked; the client can't tell
                    return web.json_response(
                        {"code": 503, "msg": "Service Unavailable"}, status=503, dumps=_dumps
                    )
                garbled = self._garbled.get((request.method, request.path))
                if garbled:
                    return web.Response(
                        body=garbled.popleft(), status=200, content_type="application/json"
                    )
                return answer
            except ApiError as e:
                error = {"code": e.code, "msg": e.msg}
                return web.json_response(error, status=e.status, dumps=_dumps)

        return endpoint

    # -- control ---------------------------------------------------------------------------------

    async def _faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                self.exchange.faults.update(await request.json())
            except (ValueError, TypeError, AttributeError) as e:
                return web.json_response({"error": str(e)}, status=400)
        return web.json_response(self.exchange.faults.as_dict())

    async def _symbols(self, request: web.Request) -> web.Response:
        tradability = self.exchange.tradability
        if request.method == "POST":
            try:
                tradability.update(await request.json(), lambda v: self.exchange.market(v).symbol)
            except (ValueError, TypeError, AttributeError, ApiError) as e:
                message = e.msg if isinstance(e, ApiError) else str(e)
                return web.json_response({"error": message}, status=400)
        return web.json_response(tradability.as_json())

    async def _drop(self, _: web.Request) -> web.Response:
        return web.json_response({"dropped": self.drop_connections()})

    async def _step(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        prices = {k: Decimal(str(v)) for k, v in (body.get("prices") or {}).items()}
        trades = await self.step(prices)
        return web.json_response({t.symbol: str(t.price) for t in trades})


def _acct(account: Account | None) -> Account:
    if account is None:  # pragma: no cover - signed handlers always get one
        raise ApiError(400, "api key required")
    return account


def _symbols(p: dict[str, str]) -> list[str]:
    if p.get("symbol"):
        return [p["symbol"]]
    return [s for s in p.get("symbols", "").split(",") if s]


def _limit(p: dict[str, str], default: int, maximum: int) -> int:
    return _int(p, "limit", default, maximum) or default


def _int(p: dict[str, str], name: str, default: int | None, maximum: int | None) -> int | None:
    value = number(p, name)
    if value is None:
        return default
    return min(value, maximum) if maximum is not None else value


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
