"""``cdb run --paper`` as a service: connect the MEXC (or simulated) market, then run the loop.

The feed is explicit: ``mexc`` uses ``CDB_MEXC_REST_URL`` / ``CDB_MEXC_WS_URL`` (the real MEXC by
default, or a ``cdb sim-exchange`` they point at); ``sim`` starts a simulated MEXC in this process
and trades against its market — the way to run with no network. When MEXC cannot be reached the
loop says so in one line per attempt and retries with backoff; it never falls back to the
simulator on its own.

One shutdown path for Ctrl-C and SIGTERM: the stop event ends the loop, which writes its last
batch and snapshot, then the feed, the bus and the store are closed.

SIGUSR1 is the kill switch without a terminal: the run halts new entries at once (no flatten) and
writes the audited halt, as ``cdb risk halt`` would; ``cdb risk reset`` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cdb_cli.engine.errors import CdbError, DependencyError
from cdb_cli.runtime.waits import wait_event

if TYPE_CHECKING:
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.records import Mode
    from cdb_cli.runtime.paper import PaperRuntime, RunSummary
    from cdb_cli.settings import Settings

__all__ = ["Feed", "run_live", "run_paper"]

logger = logging.getLogger(__name__)

Feed = Literal["mexc", "sim"]
T = TypeVar("T")
WARM_UP_BARS = 500
"""Closed 1-minute klines that warm the indicators before the first live bar."""
SIGUSR1_REASON = "SIGUSR1 from the operator"


async def _retry(
    what: str, call: Callable[[], Awaitable[T]], stop: asyncio.Event, *, max_delay: float = 30.0
) -> T:
    """``call()`` until it succeeds; each failure is one warning line, then a growing pause."""
    delay = 1.0
    while True:
        try:
            return await call()
        except CdbError as e:
            logger.warning("%s failed: %s; retrying in %.0f s", what, e.message, delay)
        if await wait_event(stop, delay):
            raise DependencyError(f"{what}: stopped while MEXC was unreachable")
        delay = min(delay * 2, max_delay)


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


async def _instruments(
    http: MexcHttpClient, symbols: Sequence[str], stop: asyncio.Event
) -> dict[str, Instrument]:
    found = await _retry("MEXC exchangeInfo", lambda: http.exchange_info(symbols), stop)
    missing = sorted(set(symbols) - set(found))
    if missing:
        from cdb_cli.engine.errors import ConfigurationError

        raise ConfigurationError(f"Not tradable on this MEXC: {', '.join(missing)}")
    return found


async def run_paper(
    settings: Settings,
    *,
    symbols: Sequence[str],
    feed: Feed,
    stop: asyncio.Event | None = None,
    view: bool = False,
) -> RunSummary:
    """Run the paper loop until ``stop`` (or SIGINT/SIGTERM) and return its summary."""
    from cdb_cli.engine.records import Mode

    return await _serve(settings, symbols=symbols, feed=feed, stop=stop, view=view, mode=Mode.PAPER)


async def run_live(
    settings: Settings,
    *,
    symbols: Sequence[str],
    stop: asyncio.Event | None = None,
    view: bool = False,
) -> RunSummary:
    """Run the live loop (real orders at ``CDB_MEXC_REST_URL``) until ``stop`` or a signal.

    The governance gate (``cdb_cli.runtime.governance``) is the caller's: this only trades.
    """
    from cdb_cli.engine.records import Mode

    return await _serve(
        settings, symbols=symbols, feed="mexc", stop=stop, view=view, mode=Mode.LIVE
    )


async def _serve(
    settings: Settings,
    *,
    symbols: Sequence[str],
    feed: Feed,
    stop: asyncio.Event | None,
    view: bool,
    mode: Mode,
) -> RunSummary:
    from cdb_cli.adapters.http_health import HealthServer, readiness_reasons
    from cdb_cli.adapters.metrics import Metrics
    from cdb_cli.adapters.mexc.history import kline_warm_up
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.mexc.ws import MexcDataClient, book_ticker_topic, deals_topic
    from cdb_cli.adapters.notify.email import EmailNotifier
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import mexc_http_client, open_bus, open_store
    from cdb_cli.logs import RUN_ID
    from cdb_cli.runtime.clock import LiveClock
    from cdb_cli.runtime.paper import PaperRuntime, new_run_id

    live = mode is Mode.LIVE
    if live:
        from cdb_cli.runtime.live import new_live_run_id

        run_id = new_live_run_id()
    else:
        run_id = new_run_id()
    RUN_ID.set(run_id)  # every log line of this run carries it, from the first
    stop = stop or asyncio.Event()
    notifier = EmailNotifier.from_settings(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    store = await asyncio.to_thread(open_store, settings, create_if_new=True)
    try:
        async with (
            _market(settings, feed, symbols) as (rest_url, ws_url),
            mexc_http_client(settings) if live else MexcHttpClient(rest_url) as http,
            open_bus(settings) as bus,
        ):
            clock = LiveClock()
            metrics = Metrics(run_id=run_id, mode=mode, symbols=symbols)
            runtime: PaperRuntime | None = None

            def readiness() -> list[str]:
                if runtime is None or runtime.pipeline is None:
                    return ["starting: connecting to the market"]
                reasons = readiness_reasons(
                    feed_ages=runtime.feed_ages(),
                    max_feed_age_s=settings.stale_data_seconds,
                    database_up=runtime.database_up,
                    trading_state=runtime.pipeline.trading_state,
                )
                client = getattr(runtime, "client", None)
                if client is not None and not client.signing_ok:
                    reasons.append("MEXC refuses our signatures (clock skew): not trading")
                return reasons

            health = HealthServer.from_settings(
                settings, metrics=metrics, readiness=readiness, run_id=run_id, mode=mode
            )
            async with health:
                logger.info("Health and metrics on %s", health.url)
                instruments = await _instruments(http, symbols, stop)
                topics = [t for s in symbols for t in (deals_topic(s), book_ticker_topic(s))]
                options: dict[str, Any] = {
                    "store": store,
                    "bus": bus,
                    "feed": MexcDataClient(ws_url, topics),
                    "clock": clock,
                    "symbols": symbols,
                    "warm_up": kline_warm_up(http, bars=WARM_UP_BARS),
                    "instruments": instruments,
                    "alert": notifier.send_async if notifier is not None else None,
                    "metrics": metrics,
                    "run_id": run_id,
                    "bar_interval_ns": settings.bar_seconds * 1_000_000_000,
                }
                if live:
                    from cdb_cli.adapters.mexc.execution import MexcExecutionClient
                    from cdb_cli.runtime.live import LiveRuntime

                    client = MexcExecutionClient(http, ws_url, instruments=instruments)
                    runtime = LiveRuntime(settings, client=client, **options)
                else:
                    runtime = PaperRuntime(settings, **options)
                screen = asyncio.create_task(_live_view(runtime, stop)) if view else None
                with _halt_on_sigusr1(loop, runtime):
                    summary = await runtime.run(stop)
                if screen is not None:
                    await screen
                return summary
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
        await asyncio.to_thread(store.close)


@contextlib.contextmanager
def _halt_on_sigusr1(loop: asyncio.AbstractEventLoop, runtime: PaperRuntime) -> Iterator[None]:
    """While the run runs, SIGUSR1 halts it at once (audited, no flatten)."""

    def on_signal() -> None:
        logger.warning("SIGUSR1: halting run %s", runtime.run_id)
        runtime.halt_now(SIGUSR1_REASON, via="sigusr1")

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR1, on_signal)
        installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGUSR1)


async def _live_view(runtime: Any, stop: asyncio.Event) -> None:
    """The operator's screen on stderr, redrawn every second until the run stops."""
    from rich.console import Console
    from rich.live import Live

    from cdb_cli.runtime.view import render

    with Live(render(runtime), console=Console(stderr=True), refresh_per_second=2) as live:
        while not stop.is_set():
            await wait_event(stop, 1.0)
            live.update(render(runtime))
