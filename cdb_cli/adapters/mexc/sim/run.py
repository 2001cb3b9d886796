"""Run the simulator until stopped: what ``cdb sim-exchange`` calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
from cdb_cli.adapters.mexc.sim.server import SimServer

__all__ = ["serve"]

logger = logging.getLogger(__name__)


async def serve(
    config: SimConfig,
    *,
    host: str,
    port: int,
    faults: dict[str, object],
    drop_every: float = 0.0,
    stall_every: float = 0.0,
    stall_for: float = 5.0,
    duration: float = 0.0,
    on_ready: Callable[[SimServer], None] = lambda _: None,
) -> None:
    """Serve until SIGINT/SIGTERM or for ``duration`` seconds.

    When set, cut all WebSockets every ``drop_every`` seconds, and stall them (send nothing) for
    ``stall_for`` seconds every ``stall_every`` seconds.
    """
    exchange = SimExchange(config)
    exchange.faults.update(faults)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    async with SimServer(exchange, host, port) as server:
        on_ready(server)
        chaos = []
        if drop_every:
            chaos.append(asyncio.create_task(_drop_periodically(server, drop_every)))
        if stall_every:
            chaos.append(asyncio.create_task(_stall_periodically(server, stall_every, stall_for)))
        try:
            async with asyncio.timeout(duration or None):
                await stop.wait()
        except TimeoutError:
            pass
        finally:
            for task in chaos:
                task.cancel()
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signum)


async def _drop_periodically(server: SimServer, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        logger.info("Dropped %d WebSocket connection(s) (--drop-every)", server.drop_connections())


async def _stall_periodically(server: SimServer, every: float, length: float) -> None:
    faults = server.exchange.faults
    while True:
        await asyncio.sleep(every)
        faults.ws_stalled = True
        logger.info("WebSockets stalled for %.1f s (--stall-every)", length)
        await asyncio.sleep(length)
        faults.ws_stalled = False
