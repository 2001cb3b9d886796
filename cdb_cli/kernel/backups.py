"""Backups of the configured store, picked from the settings (``cdb backup``).

The backup engine follows ``CDB_DATABASE_URL`` (SQLite's online backup API or PostgreSQL's
``pg_dump``, with ``CDB_PG_BIN_DIR``), the files live in ``CDB_BACKUP_DIR`` and a verification
is recorded there for ``cdb systemcheck``. The command names an operation; this module decides
which database, which folder, which tools and which scratch server (STYLE.md §2.3). Adapters are
imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    # The types the commands name come through this door (explicit re-exports).
    from cdb_cli.adapters.backup import BackupFile as BackupFile
    from cdb_cli.adapters.backup import Manifest as Manifest
    from cdb_cli.adapters.backup import VerifyReport as VerifyReport
    from cdb_cli.adapters.backup.schedule import CronJob
    from cdb_cli.settings import Settings

__all__ = [
    "create_backup",
    "cron_job",
    "install_cron_job",
    "last_verified",
    "list_backups",
    "prune_backups",
    "read_manifest",
    "resolve_backup",
    "restore_backup",
    "restore_target",
    "verify_backup",
]


def create_backup(settings: Settings) -> Path:
    """Back up the store of ``CDB_DATABASE_URL`` into ``CDB_BACKUP_DIR``; the new file's path."""
    from cdb_cli.adapters.backup import create_backup as create

    return create(settings.database_url, settings.backup_dir, pg_bin_dir=settings.pg_bin_dir)


def read_manifest(path: Path) -> Manifest:
    """The manifest inside a backup file (``CheckFailed`` when it is damaged)."""
    from cdb_cli.adapters.backup import read_manifest as read

    return read(path)


def resolve_backup(settings: Settings, backup: str | None) -> Path:
    """A backup file by path or by its name in ``CDB_BACKUP_DIR`` (None: the newest there)."""
    from cdb_cli.adapters.backup import resolve_backup as resolve

    return resolve(backup, settings.backup_dir)


def verify_backup(
    settings: Settings, path: Path, scratch_server: str | None = None
) -> VerifyReport:
    """Restore ``path`` into a scratch database and compare it with its manifest.

    A PostgreSQL backup restores on the server of ``scratch_server`` (default
    ``CDB_DATABASE_URL``). The outcome is recorded in ``CDB_BACKUP_DIR`` when that folder exists.
    """
    from cdb_cli.adapters.backup import verify_backup as verify

    return verify(
        path,
        record_folder=settings.backup_dir if settings.backup_dir.is_dir() else None,
        postgres_url=scratch_server or settings.database_url,
        pg_bin_dir=settings.pg_bin_dir,
    )


def list_backups(settings: Settings) -> list[BackupFile]:
    """The backups in ``CDB_BACKUP_DIR``, oldest first (damaged files carry their problem)."""
    from cdb_cli.adapters.backup import list_backups as listed

    return listed(settings.backup_dir)


def last_verified(settings: Settings) -> str | None:
    """The file name of the backup last verified good in ``CDB_BACKUP_DIR`` (None: none yet)."""
    from cdb_cli.adapters.backup import read_verify_records

    record = read_verify_records(settings.backup_dir).get("last_ok")
    return record.backup if record else None


def prune_backups(
    settings: Settings, *, keep_days: int, now: datetime, dry_run: bool = False
) -> list[Path]:
    """Remove (or with ``dry_run`` only name) the backups in ``CDB_BACKUP_DIR`` older than
    ``keep_days`` and left-over temporary files; the newest always stays."""
    from cdb_cli.adapters.backup import prune

    return prune(settings.backup_dir, keep_days=keep_days, now=now, dry_run=dry_run).removed


def restore_target(manifest: Manifest, url: str) -> str:
    """Name the database at ``url`` for the operator (never its credentials); ``ValueError``
    when it is not of the backup's engine (a SQLite backup restores only into SQLite)."""
    from cdb_cli.adapters.backup import engine_of
    from cdb_cli.kernel.database import describe_database

    if engine_of(url) != manifest.engine:
        raise ValueError(
            f"a {manifest.engine} backup restores only into a {manifest.engine} database"
        )
    return describe_database(url)


def restore_backup(settings: Settings, path: Path, url: str, *, force: bool = False) -> None:
    """Restore ``path`` into the database at ``url`` and check it against the manifest
    (PostgreSQL tools from ``CDB_PG_BIN_DIR``). Refuses a database with tables unless ``force``."""
    from cdb_cli.adapters.backup import restore_backup as restore

    restore(path, url, force=force, pg_bin_dir=settings.pg_bin_dir)


def cron_job(
    settings: Settings,
    *,
    at: str,
    env_file: Path | None,
    environment: Mapping[str, str] = os.environ,
    working_dir: Path | None = None,
) -> CronJob:
    """The daily ``cdb backup create --verify --prune`` at ``at`` (``HH:MM``) for cron.

    cron starts with an empty environment, so the settings must all be in ``env_file``:
    ``ConfigurationError`` when there is no env file or a setting is set only in ``environment``
    (this shell). For PostgreSQL without ``CDB_PG_BIN_DIR`` the folder
    of the ``pg_dump`` found now goes on cron's PATH. Creates ``CDB_BACKUP_DIR`` for the log.
    """
    from dotenv import dotenv_values

    from cdb_cli.adapters.backup.files import ensure_folder
    from cdb_cli.adapters.backup.schedule import cron_job as build
    from cdb_cli.adapters.backup.schedule import shell_only_variables
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.settings import env_name

    if env_file is None:
        raise ConfigurationError(
            "cron needs the settings in a file: create .env (chmod 600) or pass --env-file"
        )
    env_file = env_file.absolute()
    known = {env_name(name) for name in type(settings).model_fields}
    missing = shell_only_variables(environment, set(dotenv_values(env_file)), known)
    if missing:
        raise ConfigurationError(
            f"{', '.join(missing)} set in this shell but not in {env_file}; cron will not see "
            "them: move them into the env file",
        )
    tool_dirs = []
    if settings.database_url.startswith("postgres") and settings.pg_bin_dir is None:
        from cdb_cli.adapters.backup.postgres import find_tool

        tool_dirs.append(find_tool("pg_dump", settings.pg_bin_dir).path.parent)
    ensure_folder(settings.backup_dir)
    return build(
        at=at,
        env_file=env_file,
        log_file=settings.backup_dir / "cdb-backup.log",
        working_dir=working_dir or Path.cwd(),
        environment=environment,
        tool_dirs=tool_dirs,
    )


def install_cron_job(job: CronJob) -> bool:
    """Add ``job`` to the user's crontab (idempotent); False when it was already there."""
    from cdb_cli.adapters.backup.schedule import install

    return install(job)
