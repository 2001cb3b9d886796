"""The loop's timed jobs: the daily jobs run the real `cdb` commands with the run's settings, and
the health job measures the database and the feed."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from cdb_testkit import QueueFeed
from paper_testkit import SYMBOL, paper_settings, session, trade_minutes

from cdb_cli.adapters.backup import list_backups
from cdb_cli.adapters.metrics import Metrics
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.ports.store import Store
from cdb_cli.kernel import open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.paper import PaperVenue
from cdb_cli.runtime.schedule import refresh_health_metrics, start_jobs
from cdb_cli.settings import Settings


def test_the_daily_jobs_run_with_the_runs_settings(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'run.db'}",
        backup_dir=tmp_path / "backups",
        run_backup_at="02:30",
        run_daily_check_at="06:00",
    )
    alerts: list[tuple[str, str]] = []

    async def alert(subject: str, body: str) -> None:
        alerts.append((subject, body))

    loop = TradingLoop(
        settings,
        venue=PaperVenue(),
        store=open_store(settings, create_if_new=True),
        bus=InMemoryBus(),
        feed=QueueFeed(),
        clock=TestClock(1_704_067_200_000_000_000),
        symbols=["BTCUSDT"],
        alert=alert,
    )

    async def scenario() -> list[int]:
        scheduler = start_jobs(loop, snapshot_interval_s=60)
        try:
            jobs = {job.id: job for job in scheduler.get_jobs()}
        finally:
            scheduler.shutdown(wait=False)
        assert set(jobs) == {
            "equity_snapshot",
            "health_metrics",
            "utc_day_roll",
            "backup",
            "daily_check",
        }
        assert "hour='2', minute='30'" in str(jobs["backup"].trigger)
        assert "hour='6', minute='0'" in str(jobs["daily_check"].trigger)
        # each daily job as the scheduler would call it
        return [await jobs[name].func(*jobs[name].args) for name in ("backup", "daily_check")]

    try:
        codes = asyncio.run(scenario())
    finally:
        loop.store.close()
    assert codes == [0, 0]  # every check passes on this database
    (backup,) = list_backups(tmp_path / "backups")
    assert backup.path.exists()
    assert alerts == []


def test_health_metrics_measure_the_database_and_the_feed(tmp_path: Path) -> None:
    metrics = Metrics(run_id="ptest", symbols=[SYMBOL])

    async def scenario(
        runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store
    ) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await refresh_health_metrics(runtime)

    asyncio.run(session(paper_settings(tmp_path), scenario, metrics=metrics))
    value = metrics.registry.get_sample_value
    assert value("database_latency_ms") is not None
    assert not math.isnan(value("database_latency_ms") or math.nan)
    # the pool keeps its connection open between writes (checked out, it read 0 at every scrape)
    assert (value("database_connections_active") or 0) >= 1
    assert value("websocket_latency_ms") == 0.0  # the test's clock is the trades' own time
    assert value("market_events_total", {"type": "market.trade"}) == 6


class _Source:
    """What refresh_health_metrics reads (a HealthSource): a real store and bus."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.metrics = metrics
        self.store = store
        self.bus = InMemoryBus()
        self.feed_delay_ns: int | None = None
        self.database_up = True


def test_a_failed_database_ping_shows_in_ready_and_in_the_gauge_at_once(tmp_path: Path) -> None:
    """/ready's ``database down`` and ``dependency_up{dependency="database"}`` come from the
    same ping: a component that writes nothing (portfolio) showed 503 with the gauge still 1
    until its next write."""
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"), create_if_new=True)
    metrics = Metrics(run_id="ptest")
    source = _Source(store, metrics)
    metrics.set_dependency("database", True)  # as the loop's store watch starts it
    assert asyncio.run(refresh_health_metrics(source)) == (True, None)
    assert metrics.registry.get_sample_value("dependency_up", {"dependency": "database"}) == 1
    store.close()  # every call now fails, as in an outage
    assert asyncio.run(refresh_health_metrics(source)) == (False, None)
    assert source.database_up is False
    assert metrics.registry.get_sample_value("dependency_up", {"dependency": "database"}) == 0
