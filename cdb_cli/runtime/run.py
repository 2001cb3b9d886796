"""``cdb run --paper`` as a service: connect the MEXC (or simulated) market, then run the loop.

The feed is explicit: ``mexc`` uses ``CDB_MEXC_REST_URL`` / ``CDB_MEXC_WS_URL`` (the real MEXC by
default, or a ``cdb sim-exchange`` they point at); ``sim`` starts a simulated MEXC in this process
and trades against its market — the way to run with no network. When MEXC cannot be reached the
loop says so in one line per attempt and retries with backoff; it never falls back to the
simulator on its own.

One shutdown path for Ctrl-C and SIGTERM: the stop event ends the loop, which writes its last
batch and snapshot, then the feed, the bus and the store are closed.

Under systemd (``Type=notify``) the run says ``READY=1`` once it trades, feeds the watchdog while
its loop makes progress and says ``STOPPING=1`` on its way out (``runtime.service``).

SIGUSR1 is the kill switch without a terminal: the run halts new entries at once (no flatten) and
writes the audited halt, as ``cdb risk halt`` would; ``cdb risk reset`` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cdb_cli.runtime.service import tell_service_manager
from cdb_cli.runtime.startup import StoppedStarting, load_instruments
from cdb_cli.runtime.stopping import stop_on_signals
from cdb_cli.runtime.waits import wait_event

if TYPE_CHECKING:
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel.system import Feed
    from cdb_cli.runtime.lifecycle import RunSummary
    from cdb_cli.runtime.loop import TradingLoop
    from cdb_cli.settings import Settings

__all__ = ["Feed", "run_live", "run_paper"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
SIGUSR1_REASON = "SIGUSR1 from the operator"


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

    The governance gate (``cdb_cli.services.governance``) is the caller's: this only trades.
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
    from cdb_cli.logs import RUN_ID
    from cdb_cli.runtime.lifecycle import RunSummary, new_run_id

    run_id = new_run_id(mode)
    RUN_ID.set(run_id)  # every log line of this run carries it, from the first
    stop = stop or asyncio.Event()
    with stop_on_signals(stop):
        try:
            return await _trade(
                settings, symbols=symbols, feed=feed, stop=stop, view=view, mode=mode, run_id=run_id
            )
        except StoppedStarting as e:  # a clean stop before trading began: exit 0
            return RunSummary(run_id, stopped_starting=e.what)


async def _trade(
    settings: Settings,
    *,
    symbols: Sequence[str],
    feed: Feed,
    stop: asyncio.Event,
    view: bool,
    mode: Mode,
    run_id: str,
) -> RunSummary:
    """Open the kernel, wait for MEXC's instruments, then run the one loop until ``stop``."""
    from cdb_cli.kernel.system import open_kernel
    from cdb_cli.runtime.loop import TradingLoop

    async with open_kernel(settings, mode, symbols=symbols, run_id=run_id, feed=feed) as kernel:
        runtime: TradingLoop | None = None

        def readiness() -> list[str]:
            if runtime is None:
                return ["starting: connecting to the market"]
            return runtime.readiness()

        health = kernel.health_server(readiness)
        async with health:
            logger.info("Health and metrics on %s", health.url)
            kernel.instruments = await load_instruments(kernel.http, symbols, stop)
            options: dict[str, Any] = {
                "store": kernel.store,
                "bus": kernel.bus,
                "feed": kernel.market_feed(),
                "clock": kernel.clock,
                "symbols": symbols,
                "warm_up": kernel.kline_warm_up(),
                "instruments": kernel.instruments,
                "alert": kernel.alert,
                "metrics": kernel.metrics,
                "run_id": run_id,
                "bar_interval_ns": settings.bar_seconds * 1_000_000_000,
            }
            runtime = TradingLoop(settings, venue=kernel.venue(), **options)
            screen = asyncio.create_task(_live_view(runtime, stop)) if view else None
            manager = asyncio.create_task(
                tell_service_manager(kernel.service_manager(), runtime, stop)
            )
            try:
                with _halt_on_sigusr1(asyncio.get_running_loop(), runtime):
                    summary = await runtime.run(stop)
            finally:
                stop.set()  # the service manager hears STOPPING=1, the screen ends
                await manager
            if screen is not None:
                await screen
            return summary


@contextlib.contextmanager
def _halt_on_sigusr1(loop: asyncio.AbstractEventLoop, runtime: TradingLoop) -> Iterator[None]:
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
