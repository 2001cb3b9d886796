"""The system of one run, built by the kernel for its mode: what the runtime loops drive.

:func:`open_kernel` opens, for ``cdb run`` (paper or live) and for each component process, the
same parts the same way: the store, the market (the configured MEXC, or a simulated one in this
process for ``--feed sim``), the MEXC REST client (signed in live mode), the bus, the metrics
and the mail alert. The :class:`Kernel` it yields hands out what is built per use: the market
feed, the kline warm-up, the live execution client, the health server and the service
manager's notifier. The loops never pick
an implementation themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # The types the runtime names come through this door too (explicit re-exports).
    from cdb_cli.adapters.http_health import HealthServer as HealthServer
    from cdb_cli.adapters.http_health import ReadinessCheck as ReadinessCheck
    from cdb_cli.adapters.metrics import Metrics as Metrics
    from cdb_cli.adapters.mexc.execution import MexcExecutionClient as MexcExecutionClient
    from cdb_cli.adapters.mexc.http import MexcHttpClient as MexcHttpClient
    from cdb_cli.adapters.mexc.ws import MexcDataClient
    from cdb_cli.adapters.systemd import ServiceNotifier
    from cdb_cli.engine.clock import Clock
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.ports.bus import MessageBus
    from cdb_cli.engine.ports.market import WarmUp
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.records import Mode
    from cdb_cli.runtime.venue import Venue
    from cdb_cli.settings import Settings

__all__ = ["WARM_UP_BARS", "Feed", "Kernel", "open_kernel"]

logger = logging.getLogger(__name__)

Feed = Literal["mexc", "sim"]
"""Where the market data comes from: the MEXC of the settings, or a simulator in this process."""
WARM_UP_BARS = 500
"""Closed 1-minute klines that warm the indicators before the first live bar."""

Alert = Callable[[str, str], Awaitable[object]]


@dataclass
class Kernel:
    """The parts of one run; see the module docstring."""

    settings: Settings
    mode: Mode
    run_id: str
    symbols: list[str]
    store: Store
    bus: MessageBus
    http: MexcHttpClient
    ws_url: str
    metrics: Metrics
    alert: Alert | None
    clock: Clock
    """The run's clock (the wall's, for paper and live: ``clock_for``)."""
    instruments: dict[str, Instrument] = field(default_factory=dict)
    """The venue's instruments of the symbols, once the runtime has loaded them."""

    def market_feed(self) -> MexcDataClient:
        """Deals and book tickers of every symbol from the market's WebSocket."""
        from cdb_cli.adapters.mexc.ws import MexcDataClient, book_ticker_topic, deals_topic

        topics = [t for s in self.symbols for t in (deals_topic(s), book_ticker_topic(s))]
        return MexcDataClient(self.ws_url, topics)

    def kline_warm_up(self) -> WarmUp:
        """The last closed 1-minute klines of a symbol, to warm the indicators: WARM_UP_BARS,
        or more when the strategy (``CDB_STRATEGY``) needs more before it can signal."""
        from cdb_cli.adapters.mexc.history import kline_warm_up
        from cdb_cli.kernel import strategy_factory

        warmup = strategy_factory(self.settings)().warmup
        return kline_warm_up(self.http, bars=max(WARM_UP_BARS, warmup + 1))

    def execution_client(self) -> MexcExecutionClient:
        """The live venue: real orders through the signed REST client and the user stream."""
        from cdb_cli.kernel import mexc_execution_client

        return mexc_execution_client(self.http, self.ws_url, self.instruments)

    def venue(self) -> Venue:
        """The trading loop's venue for this run's mode: live orders through
        :meth:`execution_client`, or the paper account whose fills the pipeline's simulated venue
        makes."""
        from cdb_cli.engine.records import Mode

        if self.mode is Mode.LIVE:
            from cdb_cli.runtime.live import LiveVenue

            return LiveVenue(self.execution_client())
        from cdb_cli.runtime.paper import PaperVenue

        return PaperVenue()

    def service_manager(self) -> ServiceNotifier:
        """systemd's notification socket (``NOTIFY_SOCKET``), a no-op without one."""
        from cdb_cli.adapters.systemd import ServiceNotifier

        return ServiceNotifier()

    def health_server(self, readiness: ReadinessCheck, *, port: int | None = None) -> HealthServer:
        """``/health``, ``/ready`` and ``/metrics`` on ``CDB_HTTP_HOST`` and ``port`` (default
        ``CDB_HTTP_PORT``)."""
        from cdb_cli.adapters.http_health import HealthServer

        return HealthServer(
            metrics=self.metrics,
            readiness=readiness,
            run_id=self.run_id,
            mode=self.mode,
            host=self.settings.http_host,
            port=min(self.settings.http_port if port is None else port, 65535),
        )


@contextlib.asynccontextmanager
async def _market(
    settings: Settings, feed: Feed, symbols: Sequence[str]
) -> AsyncIterator[tuple[str, str]]:
    """(REST URL, WS URL) of the market: the configured MEXC, or an in-process simulator."""
    if feed == "mexc":
        yield settings.mexc_rest_url, settings.mexc_ws_url
        return
    from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
    from cdb_cli.adapters.mexc.sim.server import SimServer

    config = SimConfig(symbols=tuple(symbols), seed=settings.paper_seed or 1, tick_interval=0.25)
    async with SimServer(SimExchange(config)) as server:
        logger.warning("Trading against the in-process simulated MEXC at %s", server.rest_url)
        yield server.rest_url, server.ws_url


@contextlib.asynccontextmanager
async def open_kernel(
    settings: Settings,
    mode: Mode,
    *,
    symbols: Sequence[str],
    run_id: str,
    feed: Feed = "mexc",
    create_store: bool = True,
) -> AsyncIterator[Kernel]:
    """Open the parts of a run (closed again on the way out, the store last).

    ``create_store`` creates a brand-new embedded database at the current schema (``cdb run``);
    a component process expects the store its run already made.
    """
    from cdb_cli.adapters.metrics import Metrics
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.notify.email import EmailNotifier
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import clock_for, mexc_http_client, open_bus, open_store

    store = await asyncio.to_thread(open_store, settings, create_if_new=create_store)
    try:
        async with (
            _market(settings, feed, symbols) as (rest_url, ws_url),
            mexc_http_client(settings) if mode is Mode.LIVE else MexcHttpClient(rest_url) as http,
            open_bus(settings) as bus,
        ):
            notifier = EmailNotifier.from_settings(settings)
            yield Kernel(
                settings=settings,
                mode=mode,
                run_id=run_id,
                symbols=list(symbols),
                store=store,
                bus=bus,
                http=http,
                ws_url=ws_url,
                metrics=Metrics(run_id=run_id, mode=mode, symbols=symbols),
                alert=notifier.send_async if notifier is not None else None,
                clock=clock_for(mode),
            )
    finally:
        await asyncio.to_thread(store.close)
