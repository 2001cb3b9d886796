"""The backup folder: listing (damaged files included), pruning by age, stale temporary files."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cdb_cli.adapters.backup import create_backup, list_backups, prune, resolve_backup
from cdb_cli.adapters.backup.files import VerifyRecord, read_verify_records, record_verify


def test_list_shows_backups_oldest_first_and_marks_damaged_ones(
    seeded_sqlite: str, backup_dir: Path
) -> None:
    first = create_backup(seeded_sqlite, backup_dir)
    second = create_backup(seeded_sqlite, backup_dir)
    damaged = backup_dir / "cdb-20200101T000000.000Z-sqlite.tar"
    damaged.write_bytes(b"not a tar file at all")

    backups = list_backups(backup_dir)

    assert [backup.path for backup in backups if backup.manifest] == [first, second]
    broken = next(backup for backup in backups if backup.path == damaged)
    assert broken.manifest is None
    assert broken.problem is not None
    assert "damaged" in broken.problem
    assert resolve_backup(None, backup_dir) == second  # the newest readable one
    assert resolve_backup(first.name, backup_dir) == first


def test_list_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_backups(tmp_path / "nothing") == []


def test_prune_removes_old_backups_but_keeps_the_newest(
    seeded_sqlite: str, backup_dir: Path
) -> None:
    first = create_backup(seeded_sqlite, backup_dir)
    second = create_backup(seeded_sqlite, backup_dir)
    later = datetime.now(UTC) + timedelta(days=31)

    planned = prune(backup_dir, keep_days=30, now=later, dry_run=True)
    assert planned.removed == [first]
    assert first.exists()

    done = prune(backup_dir, keep_days=30, now=later)
    assert done.removed == [first]
    assert not first.exists()
    assert second.exists()  # older than 30 days too, but the newest is never removed

    assert prune(backup_dir, keep_days=30, now=datetime.now(UTC)).removed == []


def test_prune_removes_stale_temporary_files_only(backup_dir: Path) -> None:
    backup_dir.mkdir()
    stale = backup_dir / ".cdb-abc.tmp"
    stale.write_bytes(b"partial")
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(stale, (old, old))
    fresh = backup_dir / ".cdb-def.tmp"  # perhaps a backup being written right now
    fresh.write_bytes(b"partial")

    result = prune(backup_dir, keep_days=30, now=datetime.now(UTC))

    assert result.removed == [stale]
    assert not stale.exists()
    assert fresh.exists()


def test_verify_records_keep_last_ok_and_last_failed(backup_dir: Path) -> None:
    backup_dir.mkdir()
    now = datetime.now(UTC)
    record_verify(backup_dir, VerifyRecord("a.tar", now, now, ok=True))
    record_verify(backup_dir, VerifyRecord("b.tar", now, now, ok=False, problem="bad"))
    records = read_verify_records(backup_dir)
    assert records["last_ok"].backup == "a.tar"
    assert records["last_failed"].problem == "bad"
    assert read_verify_records(backup_dir / "missing") == {}


def test_write_archive_failure_removes_its_temporary_file(
    seeded_sqlite: str, backup_dir: Path, tmp_path: Path
) -> None:
    import pytest

    from cdb_cli.adapters.backup import read_manifest
    from cdb_cli.adapters.backup.files import write_archive
    from cdb_cli.engine.errors import DependencyError

    manifest = read_manifest(create_backup(seeded_sqlite, backup_dir))
    before = sorted(backup_dir.iterdir())
    vanished = tmp_path / "gone" / manifest.payload  # the dump disappeared mid-way

    with pytest.raises(DependencyError, match="Cannot write the backup"):
        write_archive(backup_dir, manifest, vanished)

    assert sorted(backup_dir.iterdir()) == before
    assert backup_dir.stat().st_mode & 0o777 == 0o700


def test_two_backups_in_the_same_millisecond_get_distinct_names(
    seeded_sqlite: str, backup_dir: Path, tmp_path: Path
) -> None:
    import tarfile

    from cdb_cli.adapters.backup import read_manifest
    from cdb_cli.adapters.backup.files import write_archive

    first = create_backup(seeded_sqlite, backup_dir)
    manifest = read_manifest(first)
    payload = tmp_path / manifest.payload
    with tarfile.open(first) as archive:
        payload.write_bytes(archive.extractfile(manifest.payload).read())  # type: ignore[union-attr]

    second = write_archive(backup_dir, manifest, payload)  # the same created_at

    assert second != first
    assert second.name == first.name.replace(".tar", "-2.tar")
    assert [backup.path for backup in list_backups(backup_dir)] == [first, second]
