"""A client-side sliding-window rate limiter (mexc_api.md §3.3: ≤ 20 requests/s, ≤ 10 orders/s)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds; ``acquire`` waits for a slot.

    Also honours a venue ``Retry-After`` through :meth:`pause`: nothing passes until it is over.
    """

    def __init__(
        self, limit: int, window: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (a venue Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def delay(self) -> float:
        """Seconds until the next acquisition could pass (0 when it can pass now)."""
        now = self._clock()
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()
        wait = max(0.0, self._paused_until - now)
        if len(self._stamps) >= self.limit:
            wait = max(wait, self._stamps[0] + self.window - now)
        return wait

    async def acquire(self) -> None:
        """Wait until a slot is free and take it."""
        async with self._lock:
            for _ in range(1000):  # bounded: each wait ends when the oldest stamp expires
                wait = self.delay()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._stamps.append(self._clock())
