"""The one sliding-window rate limiter of the MEXC adapter: the client's, and the simulator's.

At most ``limit`` weight passes in any ``window`` seconds. The client keeps three (mexc_api.md
§3.3): MEXC's documented request weights against 500 per 10 s (:mod:`.weights`), at most 20
requests a second (what MEXC support told Mexc.Net), and at most 10 orders and cancels a second.
The simulator keeps one per client address for its ``--rate-limit`` budget and asks
:meth:`RateLimiter.try_acquire`, which answers how long to wait (its ``Retry-After``) instead of
waiting.

Adapting to the venue: :meth:`RateLimiter.throttle` is what a 429 with ``Retry-After`` does to the
client. Nothing passes until the Retry-After is over; the refused request's weight leaves the
window (the venue did not take it); and the budget drops to what the venue evidently does take:
half of it (once per window, however many 429s one burst brought) and never more than the weight
that passed in the window (never below :attr:`RateLimiter.floor`). The venue's real budget is
then smaller than ours: another process on the same IP or key, or a venue stricter than
documented. Each full window without a 429 gives a tenth of the configured limit back, until the
configured limit is reached again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from cdb_cli.adapters.mexc.weights import BUDGET, WINDOW_S

__all__ = ["RateLimiter", "RequestLimits"]

MAX_WAITS = 1000
"""Bound of :meth:`RateLimiter.acquire`'s loop: each wait ends when the oldest stamp expires."""


class RateLimiter:
    """At most ``limit`` weight in any ``window`` seconds; :meth:`acquire` waits for room.

    A request heavier than the whole budget passes alone in an empty window (it is never stuck).
    """

    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        *,
        floor: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or not 1 <= floor <= limit:
            raise ValueError("limit must be >= 1, window > 0 and 1 <= floor <= limit")
        self.limit = limit
        """The configured budget."""
        self.budget = limit
        """The budget now: below :attr:`limit` for a while after a 429 (:meth:`throttle`)."""
        self.window = window
        self.floor = floor
        self.throttled = 0
        """How many times a 429 halved the budget."""
        self._clock = clock
        self._stamps: deque[tuple[float, int]] = deque()
        self._used = 0
        self._paused_until = 0.0
        self._halved_at = -math.inf  # the last 429 that halved the budget
        self._grown_at = -math.inf  # the last time the budget grew back a step
        self._lock = asyncio.Lock()

    @property
    def used(self) -> int:
        """The weight spent in the current window."""
        self._expire(self._clock())
        return self._used

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (a venue Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def throttle(self, retry_after: float, weight: int = 0) -> None:
        """The venue refused a request of ``weight`` with a 429: take its weight back, pause for
        ``retry_after`` and cut the budget (see the module docstring)."""
        now = self._clock()
        self._expire(now)
        self._refund(weight)
        self.pause(retry_after)
        if now - self._halved_at >= self.window:
            self.budget //= 2
            self._halved_at = self._grown_at = now
            self.throttled += 1
        self.budget = max(self.floor, min(self.budget, self._used))

    def _refund(self, weight: int) -> None:
        """Drop the newest stamp of ``weight`` (a request the venue did not take)."""
        for index in range(len(self._stamps) - 1, -1, -1):
            if self._stamps[index][1] == weight:
                del self._stamps[index]
                self._used -= weight
                return

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0][0] <= now - self.window:
            self._used -= self._stamps.popleft()[1]
        if self.budget < self.limit and now - self._grown_at >= self.window:
            self.budget = min(self.limit, self.budget + max(1, self.limit // 10))
            self._grown_at = now

    def delay(self, weight: int = 1) -> float:
        """Seconds until ``weight`` could pass (0 when it can pass now)."""
        now = self._clock()
        self._expire(now)
        wait = max(0.0, self._paused_until - now)
        needed = min(weight, self.budget)
        if self._used + needed > self.budget:
            room, spent = self.budget - needed, self._used
            for stamp, cost in self._stamps:  # the oldest stamps expire first
                spent -= cost
                if spent <= room:
                    wait = max(wait, stamp + self.window - now)
                    break
        return wait

    def try_acquire(self, weight: int = 1) -> float:
        """Take ``weight`` now and return 0, or take nothing and return the seconds to wait."""
        wait = self.delay(weight)
        if wait <= 0:
            self._take(weight)
        return wait

    def _take(self, weight: int) -> None:
        self._stamps.append((self._clock(), weight))
        self._used += weight

    async def acquire(self, weight: int = 1) -> None:
        """Wait until ``weight`` fits and take it (callers queue in order)."""
        async with self._lock:
            for _ in range(MAX_WAITS):
                wait = self.delay(weight)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._take(weight)


class RequestLimits:
    """The REST client's three limiters (see the module docstring) and what a 429 does to them.

    ``floor``: the heaviest request the client makes (10: exchangeInfo, account, myTrades); a
    throttled weight budget never goes below it.
    """

    def __init__(
        self,
        *,
        weight_budget: int = BUDGET,
        requests_per_second: int = 20,
        orders_per_second: int = 10,
        floor: int = 10,
    ) -> None:
        self.weights = RateLimiter(weight_budget, WINDOW_S, floor=min(weight_budget, floor))
        self.requests = RateLimiter(requests_per_second, 1.0)
        self.orders = RateLimiter(orders_per_second, 1.0)
        self.waited_out = 0
        """429s (or 418/403) waited out so far."""

    async def acquire(self, weight: int, *, order: bool) -> None:
        """Wait until a request of ``weight`` (an order or cancel: ``order``) may go."""
        await self.requests.acquire()
        if order:
            await self.orders.acquire()
        await self.weights.acquire(weight)  # last: it holds the Retry-After pause

    def refused(self, retry_after: float, weight: int) -> None:
        """The venue answered a request of ``weight`` with a 429: nothing goes for
        ``retry_after`` and the weight budget drops (:meth:`RateLimiter.throttle`)."""
        self.waited_out += 1
        self.weights.throttle(retry_after, weight)
        self.requests.pause(retry_after)
        self.orders.pause(retry_after)
