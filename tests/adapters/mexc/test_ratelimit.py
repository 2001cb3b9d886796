"""The client-side rate limiter on a settable clock."""

from __future__ import annotations

import pytest

from cdb_cli.adapters.mexc.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_window_admits_limit_then_asks_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 1.0, clock=clock)
    for _ in range(3):
        assert limiter.delay() == 0
        await limiter.acquire()
    assert limiter.delay() == pytest.approx(1.0)
    clock.now += 0.4
    assert limiter.delay() == pytest.approx(0.6)
    clock.now += 0.6
    assert limiter.delay() == 0


async def test_pause_holds_everything_for_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(100, 1.0, clock=clock)
    limiter.pause(5)
    limiter.pause(2)  # a shorter pause never shortens a longer one
    assert limiter.delay() == pytest.approx(5)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0)
