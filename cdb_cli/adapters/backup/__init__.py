"""Backups of the store: create, list, verify, restore, prune, and the cron line for them.

SQLite through the online backup API, PostgreSQL through ``pg_dump --format=custom``; each backup
is one archive with a manifest (checksum, row counts and hashes per table, schema revision, cdb
version). See ``manifest.py`` for the format and ``service.py`` for the operations.
"""

from __future__ import annotations

from cdb_cli.adapters.backup.files import (
    BackupFile,
    PruneResult,
    VerifyRecord,
    list_backups,
    prune,
    read_verify_records,
    resolve_backup,
)
from cdb_cli.adapters.backup.manifest import Manifest, TableDigest, read_manifest
from cdb_cli.adapters.backup.service import (
    VerifyReport,
    create_backup,
    database_tables,
    engine_of,
    restore_backup,
    verify_backup,
)

__all__ = [
    "BackupFile",
    "Manifest",
    "PruneResult",
    "TableDigest",
    "VerifyRecord",
    "VerifyReport",
    "create_backup",
    "database_tables",
    "engine_of",
    "list_backups",
    "prune",
    "read_manifest",
    "read_verify_records",
    "resolve_backup",
    "restore_backup",
    "verify_backup",
]
