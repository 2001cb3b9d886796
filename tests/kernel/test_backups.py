"""The kernel's backups: the engine, folder and tools picked from the settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cdb_cli.adapters.sql import upgrade
from cdb_cli.engine.errors import CdbError, ConfigurationError
from cdb_cli.kernel import backups
from cdb_cli.kernel.database import schema_status
from cdb_cli.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, seed_store: Callable[..., int]) -> Settings:
    """A seeded SQLite store, backups in tmp_path/backups."""
    url = f"sqlite:///{tmp_path / 'data' / 'cdb.db'}"
    upgrade(url)
    seed_store(url)
    return Settings(database_url=url, backup_dir=tmp_path / "backups")


def test_a_backup_of_the_configured_store_lands_in_the_backup_dir(settings: Settings) -> None:
    path = backups.create_backup(settings)

    assert path.parent == settings.backup_dir
    manifest = backups.read_manifest(path)
    assert manifest.engine == "sqlite"
    assert manifest.total_rows > 40
    assert [item.path for item in backups.list_backups(settings)] == [path]
    assert backups.resolve_backup(settings, None) == path  # the newest
    assert backups.resolve_backup(settings, path.name) == path


def test_verify_is_recorded_in_the_backup_dir(settings: Settings) -> None:
    path = backups.create_backup(settings)
    assert backups.last_verified(settings) is None

    report = backups.verify_backup(settings, path)

    assert report.ok
    assert report.problems == []
    assert backups.last_verified(settings) == path.name


def test_restore_into_a_new_sqlite_database_matches_and_is_at_head(
    settings: Settings, tmp_path: Path
) -> None:
    path = backups.create_backup(settings)
    manifest = backups.read_manifest(path)
    target = f"sqlite:///{tmp_path / 'restored.db'}"

    assert backups.restore_target(manifest, target) == f"SQLite at {tmp_path / 'restored.db'}"
    backups.restore_backup(settings, path, target)

    assert schema_status(target).up_to_date
    with pytest.raises(CdbError, match="not empty"):
        backups.restore_backup(settings, path, target)  # has tables now, no force
    backups.restore_backup(settings, path, target, force=True)


def test_a_sqlite_backup_is_no_target_for_postgres(settings: Settings) -> None:
    manifest = backups.read_manifest(backups.create_backup(settings))

    with pytest.raises(ValueError, match="sqlite backup restores only into a sqlite database"):
        backups.restore_target(manifest, "postgresql://cdb@db.example:5432/cdb")


def test_prune_keeps_the_newest_and_dry_run_removes_nothing(settings: Settings) -> None:
    first = backups.create_backup(settings)
    newest = backups.create_backup(settings)
    later = datetime.now(UTC) + timedelta(days=40)

    assert backups.prune_backups(settings, keep_days=30, now=later, dry_run=True) == [first]
    assert first.exists()
    assert backups.prune_backups(settings, keep_days=30, now=later) == [first]
    assert [item.path for item in backups.list_backups(settings)] == [newest]


def test_the_cron_job_needs_the_settings_in_an_env_file(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="cron needs the settings in a file"):
        backups.cron_job(settings, at="03:17", env_file=None)


def test_the_cron_job_refuses_settings_only_this_shell_has(
    settings: Settings, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CDB_MODE=paper\n")

    with pytest.raises(ConfigurationError, match="CDB_SYMBOLS set in this shell but not in"):
        backups.cron_job(
            settings, at="03:17", env_file=env_file, environment={"CDB_SYMBOLS": "BTCUSDT"}
        )


def test_the_cron_job_logs_into_the_backup_dir(settings: Settings, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CDB_SYMBOLS=BTCUSDT\n")

    job = backups.cron_job(
        settings,
        at="04:05",
        env_file=env_file,
        environment={"CDB_SYMBOLS": "BTCUSDT", "HOME": "/home/op"},
        working_dir=tmp_path,
    )

    assert job.line.startswith("5 4 * * * ")
    assert f"--env-file {env_file}" in job.line
    assert f">> {settings.backup_dir / 'cdb-backup.log'} 2>&1" in job.line
    assert settings.backup_dir.is_dir()  # made for the log
