"""The backup-age, disk, file-mode and service-authentication checks against a controlled
clock, folder and services of the test's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outage_testkit import PrivateRedis

from cdb_cli.adapters.backup.files import VerifyRecord, record_verify
from cdb_cli.services.systemcheck import CheckContext, Status
from cdb_cli.services.systemcheck.checks import (
    NO_PASSWORD,
    check_backup_age,
    check_backup_disk,
    check_database_disk,
    check_file_modes,
    check_redis,
)
from cdb_cli.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "backups").mkdir()
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'cdb.db'}",
        backup_dir=tmp_path / "backups",
        backup_max_age_hours=26,
    )


def _record(settings: Settings, *, age: timedelta, ok: bool = True, exists: bool = True) -> None:
    backup = settings.backup_dir / "cdb-x.tar"
    if exists:
        backup.write_bytes(b"")
    taken = NOW - age
    record = VerifyRecord("cdb-x.tar", taken, taken, ok, "" if ok else "bad dump", str(backup))
    record_verify(settings.backup_dir, record)


@pytest.mark.parametrize(
    ("age", "status"),
    [(timedelta(minutes=30), Status.OK), (timedelta(hours=25), Status.OK),
     (timedelta(hours=27), Status.WARN), (timedelta(days=9), Status.WARN)],
)  # fmt: skip
def test_backup_age_warns_after_the_limit(
    settings: Settings, age: timedelta, status: Status
) -> None:
    _record(settings, age=age)
    outcome = check_backup_age(CheckContext(settings=settings, now=NOW))
    assert outcome.status is status
    assert "cdb-x.tar" in outcome.value


def test_backup_age_fails_when_the_last_verify_failed(settings: Settings) -> None:
    _record(settings, age=timedelta(hours=30))
    _record(settings, age=timedelta(hours=1), ok=False)
    outcome = check_backup_age(CheckContext(settings=settings, now=NOW))
    assert outcome.status is Status.FAIL
    assert "bad dump" in outcome.hint


def test_backup_age_warns_when_the_verified_file_is_gone(settings: Settings) -> None:
    _record(settings, age=timedelta(hours=1), exists=False)
    outcome = check_backup_age(CheckContext(settings=settings, now=NOW))
    assert outcome.status is Status.WARN
    assert "gone" in outcome.hint


def test_disk_checks_measure_existing_parents(settings: Settings) -> None:
    context = CheckContext(settings=settings, now=NOW)
    assert check_database_disk(context).status in {Status.OK, Status.WARN}
    assert "free" in check_backup_disk(context).value
    memory = CheckContext(settings=Settings(database_url="sqlite://"), now=NOW)
    assert check_database_disk(memory).status is Status.SKIP


def test_a_redis_that_asks_no_password_is_a_warning_and_one_that_does_is_ok(
    tmp_path: Path,
) -> None:
    (tmp_path / "open").mkdir()
    (tmp_path / "locked").mkdir()
    open_redis, locked = PrivateRedis(tmp_path / "open"), PrivateRedis(tmp_path / "locked", "pw1")
    try:
        open_redis.start()
        locked.start()
        warned = check_redis(CheckContext(settings=Settings(bus_url=open_redis.url), now=NOW))
        assert (warned.status, warned.hint) == (Status.WARN, NO_PASSWORD["redis"])
        fine = check_redis(CheckContext(settings=Settings(bus_url=locked.url), now=NOW))
        assert fine.status is Status.OK, fine
    finally:
        open_redis.close()
        locked.close()


def test_folders_and_files_others_may_read_are_warned_about(
    settings: Settings, tmp_path: Path
) -> None:
    database = tmp_path / "cdb.db"
    database.write_bytes(b"")
    database.chmod(0o600)
    settings.backup_dir.chmod(0o700)
    tmp_path.chmod(0o700)
    ok = check_file_modes(CheckContext(settings=settings, now=NOW))
    assert ok.status is Status.OK, ok
    settings.backup_dir.chmod(0o777)  # an existing backup folder open to everyone
    database.chmod(0o644)
    warned = check_file_modes(CheckContext(settings=settings, now=NOW))
    assert warned.status is Status.WARN
    assert f"{settings.backup_dir} (0777)" in warned.value
    assert f"{database} (0644)" in warned.value
    assert "chmod 700" in warned.hint
    assert "chmod 600" in warned.hint
