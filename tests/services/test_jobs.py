"""The loop's daily jobs: a verified backup and the daily check, as the real `cdb` commands in
child processes with the loop's own settings; a failing backup is mailed."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from cdb_testkit import QueueFeed

from cdb_cli.adapters.backup import list_backups
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.kernel import open_store
from cdb_cli.runtime.paper import PaperRuntime
from cdb_cli.services.jobs import schedule_times
from cdb_cli.settings import Settings
from cdb_cli.settings_io import settings_env


def runtime_for(settings: Settings, alerts: list[tuple[str, str]]) -> PaperRuntime:
    async def alert(subject: str, body: str) -> None:
        alerts.append((subject, body))

    return PaperRuntime(
        settings,
        store=open_store(settings, create_if_new=True),
        bus=InMemoryBus(),
        feed=QueueFeed(),
        clock=TestClock(1_704_067_200_000_000_000),
        symbols=["BTCUSDT"],
        alert=alert,
    )


def test_settings_pass_to_a_child_process_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        symbols=["BTCUSDT", "ETHUSDT"],
        trend_filter=True,
        starting_cash=Decimal("1234.5"),
        mexc_api_key="mx0vglJobsKey0001",
        mexc_api_secret="0123456789abcdef0123456789abcdef",
        smtp_to=["ops@example.org", "owner@example.org"],
        run_backup_at="03:15",
    )
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    assert Settings().model_dump() == settings.model_dump()
    assert schedule_times(settings) == {"backup": (3, 15)}


def test_the_scheduled_backup_makes_a_verified_backup(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'run.db'}",
        backup_dir=tmp_path / "backups",
        run_backup_at="02:30",
        run_daily_check_at="06:00",
    )
    alerts: list[tuple[str, str]] = []
    runtime = runtime_for(settings, alerts)

    async def scenario() -> None:
        scheduler = runtime._scheduler()
        try:
            jobs = {job.id: str(job.trigger) for job in scheduler.get_jobs()}
            assert "hour='2', minute='30'" in jobs["backup"]
            assert "hour='6', minute='0'" in jobs["daily_check"]
        finally:
            scheduler.shutdown(wait=False)
        assert await runtime.scheduled_backup() == 0
        assert await runtime.scheduled_daily_check() == 0  # every check passes on this database

    try:
        asyncio.run(scenario())
    finally:
        runtime.store.close()
    (backup,) = list_backups(tmp_path / "backups")
    assert backup.path.exists()
    assert alerts == []


def test_a_failing_scheduled_backup_is_mailed(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'run.db'}",
        backup_dir=blocker / "backups",
        run_backup_at="02:30",
    )
    alerts: list[tuple[str, str]] = []
    runtime = runtime_for(settings, alerts)
    try:
        code = asyncio.run(runtime.scheduled_backup())
    finally:
        runtime.store.close()
    assert code != 0
    ((subject, body),) = alerts
    assert subject == "cdb backup failed"
    assert f"exited {code}" in body
