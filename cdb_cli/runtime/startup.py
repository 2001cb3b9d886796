"""Start-up that waits for MEXC: each failed attempt is one warning line, then a growing pause.

A stop (Ctrl-C, SIGTERM) while it waits is a clean stop, not an error: :class:`StoppedStarting`
carries what was being waited for, and the run ends with exit 0 and one line saying so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from cdb_cli.engine.errors import CdbError, ConfigurationError
from cdb_cli.runtime.waits import wait_event

if TYPE_CHECKING:
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.kernel.system import MexcHttpClient

__all__ = ["StoppedStarting", "load_instruments", "retry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StoppedStarting(Exception):
    """The operator stopped the run while it waited for ``what`` (before trading began)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


async def retry(
    what: str, call: Callable[[], Awaitable[T]], stop: asyncio.Event, *, max_delay: float = 30.0
) -> T:
    """``call()`` until it succeeds; each failure is one warning line, then a growing pause. A
    stop while it waits raises :class:`StoppedStarting`."""
    delay = 1.0
    while True:
        if stop.is_set():
            raise StoppedStarting(what)
        try:
            return await call()
        except CdbError as e:
            logger.warning("%s failed: %s; retrying in %.0f s", what, e.message, delay)
        if await wait_event(stop, delay):
            raise StoppedStarting(what)
        delay = min(delay * 2, max_delay)


async def load_instruments(
    http: MexcHttpClient, symbols: Sequence[str], stop: asyncio.Event
) -> dict[str, Instrument]:
    """The venue's filters of ``symbols`` (exchangeInfo), waiting for MEXC as long as it takes."""
    found = await retry("MEXC exchangeInfo", lambda: http.exchange_info(symbols), stop)
    missing = sorted(set(symbols) - set(found))
    if missing:
        raise ConfigurationError(f"Not tradable on this MEXC: {', '.join(missing)}")
    return found
