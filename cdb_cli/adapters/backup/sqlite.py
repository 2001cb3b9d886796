"""SQLite: a consistent copy through the online backup API, gzip-compressed; restore the same way.

The online backup API copies a live database page by page under a read transaction, so a running
``cdb run`` keeps writing while the copy is taken (WAL mode) and the copy is one point in time.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sqlite3
import zlib
from contextlib import closing
from pathlib import Path
from typing import Final
from urllib.parse import quote

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from cdb_cli.adapters.backup.content import schema_revision, table_digests
from cdb_cli.adapters.backup.manifest import TableDigest
from cdb_cli.engine.errors import CheckFailed, DependencyError

__all__ = ["Snapshot", "compress", "decompress", "digest_file", "restore_file", "snapshot"]

_CHUNK: Final = 1 << 20


class Snapshot:
    """A plain (non-WAL) SQLite copy and what it holds."""

    def __init__(self, path: Path, revision: str | None, tables: dict[str, TableDigest]) -> None:
        self.path = path
        self.revision = revision
        self.tables = tables

    def parts(self) -> tuple[str | None, dict[str, TableDigest]]:
        """Schema revision and table digests."""
        return self.revision, self.tables


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(path, timeout=30)
    except sqlite3.Error as e:
        raise DependencyError(f"Cannot open SQLite at {path}: {e}") from None


def _reason(error: sqlite3.Error) -> str:
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        return f"{error} (is the disk full?)"
    return str(error)


def digest_file(path: Path) -> tuple[str | None, dict[str, TableDigest]]:
    """Schema revision and table digests of the SQLite file at ``path`` (read only)."""
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool
    )
    try:
        with engine.connect() as connection:
            return schema_revision(connection), table_digests(connection)
    finally:
        engine.dispose()


def snapshot(source: Path, copy: Path) -> Snapshot:
    """Copy the live database ``source`` to ``copy`` and digest the copy."""
    if not source.is_file():
        raise DependencyError(f"SQLite at {source} does not exist; nothing to back up")
    try:
        with closing(_connect(source)) as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal/-shm
    except sqlite3.Error as e:
        copy.unlink(missing_ok=True)
        raise DependencyError(
            f"SQLite backup of {source} into {copy.parent.parent} failed: {_reason(e)}"
        ) from None
    revision, tables = digest_file(copy)
    return Snapshot(copy, revision, tables)


def compress(source: Path, target: Path) -> tuple[int, str]:
    """Gzip ``source`` into ``target``; return the compressed size and its SHA-256."""
    with source.open("rb") as plain, gzip.open(target, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(plain, packed, _CHUNK)
    hasher = hashlib.sha256()
    with target.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return target.stat().st_size, hasher.hexdigest()


def decompress(stream_path: Path, target: Path) -> None:
    """Gunzip ``stream_path`` into ``target``; ``CheckFailed`` when the data is damaged."""
    try:
        with gzip.open(stream_path, "rb") as packed, target.open("wb") as plain:
            shutil.copyfileobj(packed, plain, _CHUNK)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise CheckFailed(f"The SQLite dump does not decompress: {e}") from None
    except OSError as e:  # the disk, not the backup
        raise DependencyError(f"Cannot unpack the SQLite dump in {target.parent}: {e}") from None


def restore_file(copy: Path, target: Path) -> None:
    """Replace the contents of the SQLite database ``target`` by ``copy`` (online backup API).

    Going through SQLite (not a file rename) keeps a database that another process has open
    consistent: it sees the old or the new contents, never a mix.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with closing(sqlite3.connect(copy)) as src, closing(_connect(target)) as dst:
            src.backup(dst)
    except sqlite3.Error as e:
        raise DependencyError(f"Restoring into SQLite at {target} failed: {e}") from None
