"""Create → verify → restore on SQLite and the real PostgreSQL; damaged files; failed creates."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cdb_cli.adapters.backup import (
    create_backup,
    read_manifest,
    read_verify_records,
    restore_backup,
    verify_backup,
)
from cdb_cli.adapters.backup.service import database_tables
from cdb_cli.adapters.backup.sqlite import digest_file
from cdb_cli.adapters.sql import SqlStore
from cdb_cli.adapters.sql.migrations import schema_status
from cdb_cli.engine.errors import CdbError, CheckFailed, ConfigurationError, DependencyError
from cdb_cli.engine.events import TradeTick

from .conftest import write_script


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_sqlite_create_verify_restore_keeps_counts_and_hashes(
    seeded_sqlite: str, backup_dir: Path, tmp_path: Path
) -> None:
    path = create_backup(seeded_sqlite, backup_dir)

    assert path.parent == backup_dir
    assert path.stat().st_mode & 0o777 == 0o600
    manifest = read_manifest(path)
    assert manifest.engine == "sqlite"
    assert manifest.schema_revision == schema_status(seeded_sqlite).head == "0003"
    assert manifest.tables["market_trades"].rows == 40
    assert manifest.tables["fills"].rows == 1
    assert manifest.total_rows >= 48
    assert digest_file(Path(seeded_sqlite.removeprefix("sqlite:///"))) == (
        manifest.schema_revision,
        manifest.tables,
    )

    report = verify_backup(path, record_folder=backup_dir)
    assert report.ok, report.problems
    assert read_verify_records(backup_dir)["last_ok"].backup == path.name

    target = f"sqlite:///{tmp_path / 'restored' / 'cdb.db'}"
    restore_backup(path, target)
    assert digest_file(tmp_path / "restored" / "cdb.db") == (
        manifest.schema_revision,
        manifest.tables,
    )
    store = SqlStore(target)  # the restored file is a working store at head
    try:
        assert len(store.events(TradeTick)) == 40
        assert store.get_config("greeting") == "grüezi"
    finally:
        store.close()


def test_backup_taken_while_store_is_open_and_writing(
    seeded_sqlite: str, backup_dir: Path, seed_store: Callable[..., int]
) -> None:
    store = SqlStore(seeded_sqlite)  # another process would hold the file open like this
    try:
        path = create_backup(seeded_sqlite, backup_dir)
    finally:
        store.close()
    assert verify_backup(path, record_folder=None).ok


@pytest.mark.infra
def test_postgres_create_verify_restore_keeps_counts_and_hashes(
    seeded_postgres: str, backup_dir: Path, new_postgres_database: Callable[[], str]
) -> None:
    path = create_backup(seeded_postgres, backup_dir)
    manifest = read_manifest(path)
    assert manifest.engine == "postgresql"
    assert manifest.tool.startswith("pg_dump ")
    assert manifest.tables["market_trades"].rows == 40

    report = verify_backup(path, record_folder=backup_dir, postgres_url=seeded_postgres)
    assert report.ok, report.problems

    fresh = new_postgres_database()
    restore_backup(path, fresh)
    again = create_backup(fresh, backup_dir)  # what the restored database holds, digested
    assert read_manifest(again).tables == manifest.tables
    assert read_manifest(again).schema_revision == manifest.schema_revision

    with pytest.raises(CdbError, match="not empty"):
        restore_backup(path, fresh)
    restore_backup(path, fresh, force=True)  # --clean: replaces what is there
    assert "market_trades" in database_tables(fresh)


@pytest.mark.infra
def test_postgres_verify_drops_its_scratch_database(
    seeded_postgres: str, backup_dir: Path, postgres_url: str
) -> None:
    from sqlalchemy import create_engine

    def scratch_databases() -> set[str]:
        engine = create_engine(postgres_url)
        try:
            with engine.connect() as connection:
                names = connection.exec_driver_sql("SELECT datname FROM pg_database").scalars()
                return {name for name in names if name.startswith("cdb_verify_")}
        finally:
            engine.dispose()

    path = create_backup(seeded_postgres, backup_dir)
    before = scratch_databases()
    verify_backup(path, record_folder=None, postgres_url=seeded_postgres)
    assert scratch_databases() <= before


def test_manifest_never_holds_the_password(backup_dir: Path) -> None:
    with pytest.raises(DependencyError) as raised:
        create_backup("postgresql://cdb:Hunter2Secret@127.0.0.1:1/cdb", backup_dir)
    assert "Hunter2Secret" not in str(raised.value)
    assert [name for name in _files(backup_dir) if not name.startswith(".")] == []


@pytest.mark.infra
def test_manifest_source_is_redacted(
    seeded_postgres: str, backup_dir: Path, postgres_url: str
) -> None:
    from sqlalchemy import make_url

    url = make_url(seeded_postgres).set(password="not-the-real-one").render_as_string(False)
    path = create_backup(url, backup_dir)  # trust auth ignores the password
    with tarfile.open(path) as archive:
        text = archive.extractfile("manifest.json").read().decode()  # type: ignore[union-attr]
    assert "not-the-real-one" not in text
    assert ":***@" in read_manifest(path).source


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_verify_fails_on_one_corrupted_byte_in_the_dump(
    seeded_sqlite: str, backup_dir: Path
) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    manifest = read_manifest(path)
    with tarfile.open(path) as archive:
        offset = archive.getmember(manifest.payload).offset_data
    _flip_byte(path, offset + manifest.payload_bytes // 2)

    with pytest.raises(CheckFailed, match="SHA-256"):
        verify_backup(path, record_folder=backup_dir)
    assert read_verify_records(backup_dir)["last_failed"].backup == path.name
    assert _files(backup_dir) == [".cdb-verified.json", path.name]  # no scratch left behind


def test_verify_fails_on_a_truncated_file(seeded_sqlite: str, backup_dir: Path) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    manifest = read_manifest(path)
    with tarfile.open(path) as archive:
        offset = archive.getmember(manifest.payload).offset_data
    with path.open("r+b") as stream:  # cut in the middle of the dump, as a full disk would
        stream.truncate(offset + manifest.payload_bytes // 2)
    with pytest.raises(CheckFailed, match=r"damaged|truncated"):
        verify_backup(path, record_folder=None)


def test_verify_fails_on_a_corrupted_manifest(seeded_sqlite: str, backup_dir: Path) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    with tarfile.open(path) as archive:
        offset = archive.getmember("manifest.json").offset_data
    _flip_byte(path, offset + 3)
    with pytest.raises(CheckFailed, match="damaged"):
        verify_backup(path, record_folder=None)


def test_restore_refuses_a_damaged_backup_and_leaves_target_alone(
    seeded_sqlite: str, backup_dir: Path, tmp_path: Path
) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    manifest = read_manifest(path)
    with tarfile.open(path) as archive:
        offset = archive.getmember(manifest.payload).offset_data
    _flip_byte(path, offset + 10)
    with pytest.raises(CheckFailed):
        restore_backup(path, f"sqlite:///{tmp_path / 'target.db'}")
    assert not (tmp_path / "target.db").exists()


def test_restore_refuses_a_non_empty_database_without_force(
    seeded_sqlite: str, backup_dir: Path
) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    with pytest.raises(CdbError, match=r"not empty.*--force"):
        restore_backup(path, seeded_sqlite)
    restore_backup(path, seeded_sqlite, force=True)


def test_restore_refuses_another_engine(seeded_sqlite: str, backup_dir: Path) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    with pytest.raises(ConfigurationError, match="sqlite backup"):
        restore_backup(path, "postgresql://cdb@127.0.0.1:1/cdb")


def test_create_refuses_a_missing_sqlite_file(tmp_path: Path, backup_dir: Path) -> None:
    with pytest.raises(DependencyError, match="does not exist"):
        create_backup(f"sqlite:///{tmp_path / 'nothing.db'}", backup_dir)
    assert _files(backup_dir) == []


def test_create_into_a_folder_that_cannot_exist_is_one_clear_error(
    seeded_sqlite: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DependencyError, match="Cannot create the backup folder"):
        create_backup(seeded_sqlite, blocker / "backups")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_create_into_a_read_only_folder_is_one_clear_error(
    seeded_sqlite: str, backup_dir: Path
) -> None:
    backup_dir.mkdir(mode=0o500)
    with pytest.raises(DependencyError, match="not writable"):
        create_backup(seeded_sqlite, backup_dir)


def test_full_disk_leaves_no_partial_file(
    seed_store: Callable[..., int], backup_dir: Path, tmp_path: Path
) -> None:
    """A file-size limit makes every write past 64 KiB fail like a full disk would."""
    store_url = f"sqlite:///{tmp_path / 'big' / 'cdb.db'}"
    from cdb_cli.adapters.sql import upgrade

    upgrade(store_url)
    seed_store(store_url, trades=3000)
    backup_dir.mkdir()
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))\n"
        "from cdb_cli.adapters.backup import create_backup\n"
        "from cdb_cli.engine.errors import CdbError\n"
        "try:\n"
        f"    create_backup({store_url!r}, __import__('pathlib').Path({str(backup_dir)!r}))\n"
        "except CdbError as e:\n"
        "    print(e.message); sys.exit(1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "disk full" in done.stdout or "no space" in done.stdout, done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
    assert _files(backup_dir) == []


def test_pg_dump_missing_is_one_clear_error(tmp_path: Path, backup_dir: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(DependencyError, match=r"pg_dump was not found.*CDB_PG_BIN_DIR"):
        create_backup("postgresql://cdb@127.0.0.1:1/cdb", backup_dir, pg_bin_dir=empty)
    assert _files(backup_dir) == []


@pytest.mark.infra
def test_pg_dump_of_an_older_major_version_is_refused(
    seeded_postgres: str, tmp_path: Path, backup_dir: Path
) -> None:
    write_script(tmp_path / "bin" / "pg_dump", 'echo "pg_dump (PostgreSQL) 11.22"\n')
    with pytest.raises(DependencyError, match=r"pg_dump 11\.22 cannot handle PostgreSQL 1\d"):
        create_backup(seeded_postgres, backup_dir, pg_bin_dir=tmp_path / "bin")
    assert _files(backup_dir) == []


@pytest.mark.infra
def test_pg_dump_failure_midway_leaves_no_partial_file(
    seeded_postgres: str, tmp_path: Path, backup_dir: Path
) -> None:
    write_script(
        tmp_path / "bin" / "pg_dump",
        'if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi\n'
        'for a; do case "$a" in --file=*) f="${a#--file=}";; esac; done\n'
        'echo partial > "$f"\n'
        'echo "pg_dump: error: connection to server lost" >&2\n'
        "exit 1\n",
    )
    with pytest.raises(DependencyError, match=r"pg_dump failed.*connection to server lost"):
        create_backup(seeded_postgres, backup_dir, pg_bin_dir=tmp_path / "bin")
    assert _files(backup_dir) == []


def _rewrite_manifest(path: Path, folder: Path, **changes: object) -> Path:
    """The same dump under a manifest with ``changes``: a manifest that does not match."""
    from cdb_cli.adapters.backup.files import write_archive

    manifest = read_manifest(path)
    folder.mkdir(parents=True, exist_ok=True)
    payload = folder / manifest.payload
    with tarfile.open(path) as archive:
        payload.write_bytes(archive.extractfile(manifest.payload).read())  # type: ignore[union-attr]
    forged = write_archive(folder, manifest.model_copy(update=changes), payload)
    payload.unlink()
    return forged


def test_verify_reports_a_manifest_that_does_not_match_the_dump(
    seeded_sqlite: str, backup_dir: Path, tmp_path: Path
) -> None:
    from cdb_cli.adapters.backup import TableDigest

    path = create_backup(seeded_sqlite, backup_dir)
    tables = dict(read_manifest(path).tables)
    tables["fills"] = TableDigest(rows=2, sha256=tables["fills"].sha256)
    tables["audits"] = TableDigest(rows=tables["audits"].rows, sha256="0" * 64)
    forged = _rewrite_manifest(path, tmp_path / "forged", tables=tables, schema_revision="0000")

    report = verify_backup(forged, record_folder=None)

    assert not report.ok
    assert report.problems == [
        "table audits: content differs from the manifest (same row count)",
        "table fills: 1 rows, the manifest says 2",
        "schema revision 0003, the manifest says 0000",
    ]


def test_manifest_source_hides_a_password_given_as_query_parameter() -> None:
    from cdb_cli.adapters.backup.service import _source

    source = _source("postgresql://cdb@db:5432/cdb?password=Hunter2Secret&sslmode=require")
    assert "Hunter2Secret" not in source
    assert "sslmode=require" in source
    assert ":***@" in _source("postgresql://cdb:Hunter2Secret@db/cdb")


def test_a_backup_from_a_newer_cdb_says_so(
    seeded_sqlite: str, backup_dir: Path, tmp_path: Path
) -> None:
    path = create_backup(seeded_sqlite, backup_dir)
    forged = _rewrite_manifest(path, tmp_path / "newer", version=2)
    with pytest.raises(CheckFailed, match="newer cdb"):
        read_manifest(forged)
