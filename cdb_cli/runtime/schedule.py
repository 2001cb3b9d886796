"""The trading loop's timed jobs, on an APScheduler in the loop's event loop.

Every ``snapshot_interval_s`` an equity snapshot; every 10 s the health metrics (database and
Redis round trips); at 00:00:01 UTC the day roll-over (so a quiet market rolls too); and the
daily jobs ``CDB_RUN_BACKUP_AT`` / ``CDB_RUN_DAILY_CHECK_AT`` when set
(:mod:`cdb_cli.services.jobs`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from cdb_cli.engine.errors import CdbError
from cdb_cli.services.jobs import daily_backup, daily_check, schedule_times

if TYPE_CHECKING:
    from cdb_cli.engine.ports.bus import MessageBus
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.kernel.system import Metrics
    from cdb_cli.runtime.loop import TradingLoop

__all__ = ["HealthSource", "refresh_health_metrics", "start_jobs"]


class HealthSource(Protocol):
    """What :func:`refresh_health_metrics` measures: the loop, or one component."""

    @property
    def metrics(self) -> Metrics | None: ...

    @property
    def store(self) -> Store: ...

    @property
    def bus(self) -> MessageBus: ...

    @property
    def feed_delay_ns(self) -> int | None: ...

    database_up: bool


def start_jobs(loop: TradingLoop, *, snapshot_interval_s: float) -> Any:
    """Start the scheduler with ``loop``'s jobs; the caller shuts it down (``wait=False``)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(loop.snapshot, "interval", seconds=snapshot_interval_s, id="equity_snapshot")
    scheduler.add_job(
        refresh_health_metrics, "interval", args=[loop], seconds=10, id="health_metrics"
    )
    scheduler.add_job(loop.roll_day, "cron", hour=0, minute=0, second=1, id="utc_day_roll")
    jobs = {"backup": daily_backup, "daily_check": daily_check}
    who = f"Run {loop.run_id}"
    for name, (hour, minute) in schedule_times(loop.settings).items():
        scheduler.add_job(
            jobs[name],
            "cron",
            args=[loop.settings, loop.send_alert, who],
            hour=hour,
            minute=minute,
            id=name,
        )
    scheduler.start()
    return scheduler


async def refresh_health_metrics(loop: HealthSource) -> tuple[bool | None, bool | None]:
    """Database and Redis round trips, the feed's lag and the pool's checked-out connections,
    into ``loop``'s metrics (a job; a failed ping marks the database down). Returns whether the
    database and Redis answered their pings (None: not pinged)."""
    metrics = loop.metrics
    if metrics is None:
        return None, None
    ping = getattr(loop.store, "ping_ms", None)
    database_ms = None
    answered = None
    if callable(ping):
        try:
            database_ms = await asyncio.to_thread(ping)
        except CdbError:  # /ready says "database down" from here: so does the gauge
            loop.database_up = False
            metrics.set_dependency("database", False)
            answered = False
        else:
            answered = True
    redis_ms = None
    redis_answered = None
    redis_ping = getattr(loop.bus, "ping_latency_ms", None)
    if callable(redis_ping):
        try:
            redis_ms = await redis_ping()
        except CdbError:  # down: 0 and NaN, never the last good value
            metrics.set_dependency("redis", False)
            redis_answered = False
        else:
            metrics.set_dependency("redis", True)
            redis_answered = True
    delay_ns = loop.feed_delay_ns
    websocket_ms = delay_ns / 1e6 if delay_ns is not None else None
    metrics.set_latency(websocket_ms=websocket_ms, database_ms=database_ms, redis_ms=redis_ms)
    active = getattr(loop.store, "connections_active", None)
    if callable(active):
        metrics.set_database_connections(active())
    return answered, redis_answered
