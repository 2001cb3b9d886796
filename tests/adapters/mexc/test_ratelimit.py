"""The one rate limiter (client and simulator) on a settable clock: weights, Retry-After pauses,
and the budget cut by a 429 and given back window by window."""

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


def test_weights_count_and_wait_for_enough_of_them_to_expire() -> None:
    clock = Clock()
    limiter = RateLimiter(30, 10.0, clock=clock)
    assert limiter.try_acquire(10) == 0  # t=0
    clock.now += 2
    assert limiter.try_acquire(10) == 0  # t=2
    clock.now += 2
    assert limiter.try_acquire(5) == 0  # t=4: 25 used
    assert limiter.used == 25
    assert limiter.try_acquire(10) == pytest.approx(6)  # room once the t=0 stamp expires
    assert limiter.try_acquire(20) == pytest.approx(8)  # and the t=2 one too
    assert limiter.try_acquire(5) == 0  # fits exactly
    assert limiter.used == 30


def test_a_request_heavier_than_the_budget_passes_alone() -> None:
    clock = Clock()
    limiter = RateLimiter(5, 1.0, clock=clock)
    assert limiter.try_acquire(40) == 0
    assert limiter.try_acquire(1) == pytest.approx(1.0)


async def test_pause_holds_everything_for_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(100, 1.0, clock=clock)
    limiter.pause(5)
    limiter.pause(2)  # a shorter pause never shortens a longer one
    assert limiter.delay() == pytest.approx(5)


def test_a_429_cuts_the_budget_to_what_the_venue_took_and_it_grows_back() -> None:
    clock = Clock()
    limiter = RateLimiter(500, 10.0, floor=10, clock=clock)
    for _ in range(30):
        assert limiter.try_acquire(10) == 0  # 300 sent in one go
    limiter.throttle(3, 10)  # refused: its weight leaves the window; halved once
    limiter.throttle(3, 10)  # the same burst: not halved again
    assert (limiter.used, limiter.budget, limiter.throttled) == (280, 250, 1)
    for _ in range(10):
        limiter.throttle(3, 10)
    assert (limiter.used, limiter.budget) == (180, 180)  # what the venue took, at most
    assert limiter.try_acquire(1) == pytest.approx(10)  # full until the window turns
    clock.now += 10
    limiter.throttle(1, 10)  # a later 429 with nothing else in the window
    assert (limiter.budget, limiter.throttled) == (10, 2)  # never below the floor
    growth = []
    for _ in range(12):
        clock.now += 10
        assert limiter.delay() == 0  # each look lets the budget grow when a window was calm
        growth.append(limiter.budget)
    assert growth == [60, 110, 160, 210, 260, 310, 360, 410, 460, 500, 500, 500]


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="floor"):
        RateLimiter(5, floor=6)
