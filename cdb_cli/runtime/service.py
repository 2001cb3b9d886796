"""What ``cdb run`` tells its service manager (systemd, ``Type=notify``): ``READY=1`` once it
trades, ``WATCHDOG=1`` while its loop makes progress, ``STATUS=`` when its readiness changes and
``STOPPING=1`` when it shuts down.

The watchdog is fed only while the loop's last pass is recent (``TradingLoop.last_beat``, set
after every write of its batch): a loop stuck on a hung write, or an event loop blocked by a
call that never returns, stops feeding it, and systemd restarts the service after ``WatchdogSec``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from cdb_cli.runtime.waits import wait_event

if TYPE_CHECKING:
    from cdb_cli.runtime.loop import TradingLoop

__all__ = ["ServiceManager", "tell_service_manager"]

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 30.0
"""How often the status is refreshed without a watchdog."""


class ServiceManager(Protocol):
    """What the run tells its supervisor (the kernel's ``service_manager``)."""

    @property
    def enabled(self) -> bool: ...

    watchdog_s: float | None

    def ready(self, status: str) -> bool: ...

    def watchdog(self) -> bool: ...

    def status(self, status: str) -> bool: ...

    def stopping(self, status: str) -> bool: ...

    def close(self) -> None: ...


async def tell_service_manager(
    manager: ServiceManager, runtime: TradingLoop, stop: asyncio.Event
) -> None:
    """Until ``stop``: ready once ``runtime`` trades, then the watchdog and status; stopping.
    Closes ``manager`` at the end."""
    try:
        if manager.enabled:
            await _serve(manager, runtime, stop)
    finally:
        manager.close()


async def _serve(manager: ServiceManager, runtime: TradingLoop, stop: asyncio.Event) -> None:
    started = asyncio.ensure_future(runtime.started.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((started, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        started.cancel()
        stopped.cancel()
    if not stop.is_set():
        symbols = ", ".join(runtime.symbols)
        manager.ready(f"trading {symbols} ({runtime.venue.mode}), run {runtime.run_id}")
        await _watch(manager, runtime, stop)
    manager.stopping(f"stopping run {runtime.run_id}: writing its last batch")


async def _watch(manager: ServiceManager, runtime: TradingLoop, stop: asyncio.Event) -> None:
    limit = manager.watchdog_s
    every = limit / 2 if limit else STATUS_EVERY_S
    loop = asyncio.get_running_loop()
    shown, stuck = "", False
    while not await wait_event(stop, every):
        idle = loop.time() - runtime.last_beat
        if limit is not None:
            if idle < limit:
                manager.watchdog()
                stuck = False
            elif not stuck:
                logger.error(
                    "The loop made no progress for %.0f s: the watchdog is not fed, systemd "
                    "restarts the service",
                    idle,
                )
                stuck = True
        reasons = runtime.readiness()
        status = "trading, ready" if not reasons else "not ready: " + "; ".join(reasons)
        if status != shown:
            manager.status(status)
            shown = status
