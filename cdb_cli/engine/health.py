"""Why a run is not ready: the reasons ``/ready`` answers with, from what the loop knows.

Pure: ``cdb_cli.engine`` only (the HTTP server that serves them is an adapter).
"""

from __future__ import annotations

from collections.abc import Mapping

from cdb_cli.engine.risk import TradingState

__all__ = ["readiness_reasons"]


def readiness_reasons(
    *,
    feed_ages: Mapping[str, float | None] | None = None,
    max_feed_age_s: float = 30.0,
    database_up: bool | None = None,
    bus_up: bool | None = None,
    trading_state: TradingState | None = None,
) -> list[str]:
    """Build the standard reasons from what the loop knows; ``None`` means "not checked".

    ``feed_ages`` maps each symbol to the seconds since its last data, ``None`` when none came yet
    (``Metrics.feed_ages()`` or the loop's ``FeedWatch.ages(now_ns)``).

    >>> readiness_reasons(feed_ages={"BTCUSDT": 45.2, "ETHUSDT": None}, database_up=False)
    ['feed stale: BTCUSDT 45 s', 'feed stale: ETHUSDT no data yet', 'database down']
    """
    reasons = []
    for symbol, age in (feed_ages or {}).items():
        if age is None:
            reasons.append(f"feed stale: {symbol} no data yet")
        elif age > max_feed_age_s:
            reasons.append(f"feed stale: {symbol} {age:.0f} s")
    if database_up is False:
        reasons.append("database down")
    if bus_up is False:
        reasons.append("bus down")
    if trading_state is TradingState.HALTED:
        reasons.append("breaker halted")
    return reasons
