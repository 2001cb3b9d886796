"""The loop's daily jobs: a verified backup and the daily check, as the real `cdb` commands in
child processes with the loop's own settings; a failing backup is mailed."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from cdb_cli.services.jobs import daily_backup, schedule_times
from cdb_cli.settings import Settings
from cdb_cli.settings_io import settings_env


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


def test_a_failing_scheduled_backup_is_mailed(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'run.db'}",
        backup_dir=blocker / "backups",
        run_backup_at="02:30",
    )
    alerts: list[tuple[str, str]] = []

    async def notify(subject: str, body: str) -> None:
        alerts.append((subject, body))

    code = asyncio.run(daily_backup(settings, notify, "Run p0"))
    assert code != 0
    ((subject, body),) = alerts
    assert subject == "cdb backup failed"
    assert body.startswith(f"Run p0: the scheduled backup exited {code}: ")
