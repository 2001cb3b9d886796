"""One shutdown path for every loop: SIGINT (Ctrl-C) and SIGTERM set the loop's stop event."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

__all__ = ["stop_on_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM set ``stop`` (where the loop can take signals:
    not on a thread other than the main one)."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
