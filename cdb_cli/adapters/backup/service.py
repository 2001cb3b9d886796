"""Create, verify and restore backups of the store, on SQLite and on PostgreSQL.

The commands in ``cdb backup`` call these; each returns what it did or raises a cdb error with a
one-line message: ``CheckFailed`` (exit 4) for a damaged backup or a restore that does not match
its manifest, ``DependencyError`` for missing tools, full disks and unreachable servers.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import URL, inspect

from cdb_cli import __version__
from cdb_cli.adapters.backup import postgres, sqlite
from cdb_cli.adapters.backup.content import compare_digests, schema_revision, table_digests
from cdb_cli.adapters.backup.files import (
    VerifyRecord,
    ensure_folder,
    record_verify,
    work_folder,
    write_archive,
)
from cdb_cli.adapters.backup.manifest import (
    PAYLOAD_MEMBERS,
    Engine,
    Manifest,
    TableDigest,
    read_manifest,
)
from cdb_cli.adapters.sql.database import (
    describe_url,
    is_memory_url,
    make_engine,
    parse_url,
    translate_errors,
)
from cdb_cli.engine.errors import (
    CdbError,
    CheckFailed,
    ConfigurationError,
    DependencyError,
)

__all__ = [
    "VerifyReport",
    "create_backup",
    "database_tables",
    "engine_of",
    "restore_backup",
    "verify_backup",
]

_CHUNK: Final = 1 << 20


def engine_of(url: str) -> Engine:
    """``sqlite`` or ``postgresql`` for a database URL; in-memory SQLite cannot be backed up."""
    parsed = parse_url(url)
    if is_memory_url(parsed):
        raise ConfigurationError("An in-memory SQLite database cannot be backed up or restored")
    return "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"


def _sqlite_path(url: str) -> Path:
    database = parse_url(url).database
    assert database is not None  # noqa: S101 - engine_of refused in-memory URLs
    return Path(database).expanduser().absolute()


def _source(url: str) -> str:
    """The URL for the manifest: password as ``***``, also when given as a query parameter."""
    parsed = parse_url(url)
    query = {key: value for key, value in parsed.query.items() if key != "password"}
    return parsed.set(query=query).render_as_string(hide_password=True)


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def create_backup(url: str, folder: Path, *, pg_bin_dir: Path | None = None) -> Path:
    """Back up the database at ``url`` into ``folder``; return the new archive's path.

    Nothing is left in ``folder`` when this fails (the scratch files live in a private
    subfolder that is always removed, the archive appears by an atomic rename).
    """
    engine = engine_of(url)
    ensure_folder(folder)
    with work_folder(folder) as work:
        payload = work / PAYLOAD_MEMBERS[engine]
        created_at = datetime.now(UTC)
        try:
            if engine == "sqlite":
                snapshot = sqlite.snapshot(_sqlite_path(url), work / "copy.db")
                size, checksum = sqlite.compress(snapshot.path, payload)
                tool, revision, tables = f"sqlite {sqlite3.sqlite_version}", *snapshot.parts()
            else:
                pg_dump, revision, tables = postgres.dump(url, payload, pg_bin_dir)
                size, checksum, tool = payload.stat().st_size, _sha256(payload), str(pg_dump)
        except OSError as e:
            reason = "no space left on the device" if e.errno == errno.ENOSPC else e.strerror
            raise DependencyError(f"Cannot write the backup into {folder}: {reason}") from None
        manifest = Manifest(
            engine=engine,
            created_at=created_at,
            cdb_version=__version__,
            source=_source(url),
            schema_revision=revision,
            payload=payload.name,
            payload_bytes=size,
            payload_sha256=checksum,
            tool=tool,
            tables=tables,
        )
        return write_archive(folder, manifest, payload)


def _extract_payload(path: Path, manifest: Manifest, target: Path) -> None:
    """Copy the dump out of the archive, checking its size and SHA-256 against the manifest."""
    hasher = hashlib.sha256()
    try:
        with tarfile.open(path, mode="r:") as archive:
            member = archive.getmember(manifest.payload)
            stream = archive.extractfile(member)
            if stream is None:
                raise CheckFailed(f"Backup {path.name}: {manifest.payload} is not a file")
            with target.open("wb") as out:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
    except KeyError:
        raise CheckFailed(f"Backup {path.name} has no {manifest.payload}: it is damaged") from None
    except (tarfile.TarError, EOFError) as e:
        raise CheckFailed(f"Backup {path.name} is damaged or truncated: {e}") from None
    except OSError as e:  # reading the backup or writing the scratch copy, not corruption
        reason = "no space left on the device" if e.errno == errno.ENOSPC else e.strerror
        raise DependencyError(f"Cannot unpack backup {path.name}: {reason}") from None
    size = target.stat().st_size
    if size != manifest.payload_bytes:
        raise CheckFailed(
            f"Backup {path.name} is truncated: the dump has {size} bytes, "
            f"the manifest says {manifest.payload_bytes}"
        )
    if hasher.hexdigest() != manifest.payload_sha256:
        raise CheckFailed(f"Backup {path.name} is damaged: the dump's SHA-256 does not match")


@contextmanager
def _scratch(near: Path | None = None) -> Iterator[Path]:
    """A temporary folder, in ``near`` when given (a restore unpacks on the target's disk)."""
    try:
        if near is not None:
            near.mkdir(parents=True, exist_ok=True)
        holder = tempfile.TemporaryDirectory(prefix=".cdb-restore-", dir=near)
    except OSError as e:
        reason = "no space left on the device" if e.errno == errno.ENOSPC else e.strerror
        where = near or "the temporary folder"
        raise DependencyError(f"Cannot unpack the backup in {where}: {reason}") from None
    with holder as name:
        yield Path(name)


def _digest_url(url: str) -> tuple[str | None, dict[str, TableDigest]]:
    if engine_of(url) == "sqlite":
        return sqlite.digest_file(_sqlite_path(url))
    parsed = parse_url(url)
    engine = make_engine(parsed)
    try:
        with (
            translate_errors(parsed, "Reading the restored tables", connected=False),
            engine.connect() as connection,
        ):
            return schema_revision(connection), table_digests(connection)
    finally:
        engine.dispose()


def _compare(manifest: Manifest, url: str, *, only_manifest_tables: bool) -> list[str]:
    revision, tables = _digest_url(url)
    if only_manifest_tables:
        tables = {name: digest for name, digest in tables.items() if name in manifest.tables}
    problems = compare_digests(manifest.tables, tables)
    if revision != manifest.schema_revision:
        problems.append(f"schema revision {revision}, the manifest says {manifest.schema_revision}")
    return problems


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``verify_backup``: the manifest and every difference found."""

    path: Path
    manifest: Manifest
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _restore_into(manifest: Manifest, payload: Path, url: str, pg_bin_dir: Path | None, *,
                  clean: bool) -> None:  # fmt: skip
    if manifest.engine == "sqlite":
        copy = payload.with_name("copy.db")
        sqlite.decompress(payload, copy)
        sqlite.restore_file(copy, _sqlite_path(url))
    else:
        found = re.search(r"(\d+)(?:\.\d+)*$", manifest.tool)  # "pg_dump 15.4" -> 15
        dumped_by = int(found.group(1)) if found else 0
        postgres.restore(payload, url, pg_bin_dir, dumped_by=dumped_by, clean=clean)


def verify_backup(
    path: Path,
    *,
    record_folder: Path | None,
    postgres_url: str | None = None,
    pg_bin_dir: Path | None = None,
) -> VerifyReport:
    """Restore the backup into a scratch database and compare it with its manifest.

    SQLite backups restore into a temporary file; PostgreSQL backups into a throw-away database
    on the server of ``postgres_url`` (created and dropped). The outcome is recorded in
    ``record_folder`` for ``cdb systemcheck``. Raises ``CheckFailed`` when the file is damaged.
    """
    try:
        report = _verify(path, postgres_url, pg_bin_dir)
    except CheckFailed as e:
        if record_folder is not None:
            now = datetime.now(UTC)
            record = VerifyRecord(path.name, now, now, False, e.message, str(path.absolute()))
            record_verify(record_folder, record)
        raise
    if record_folder is not None:
        record = VerifyRecord(
            backup=path.name,
            created_at=report.manifest.created_at,
            verified_at=datetime.now(UTC),
            ok=report.ok,
            problem="; ".join(report.problems),
            path=str(path.absolute()),
        )
        record_verify(record_folder, record)
    return report


def _verify(path: Path, postgres_url: str | None, pg_bin_dir: Path | None) -> VerifyReport:
    manifest = read_manifest(path)
    # Unpack beside the backup (the same disk, not a small /tmp) when that folder is writable.
    near = path.parent if os.access(path.parent, os.W_OK | os.X_OK) else None
    with _scratch(near) as work:
        payload = work / manifest.payload
        _extract_payload(path, manifest, payload)
        if manifest.engine == "sqlite":
            target = f"sqlite:///{work / 'scratch.db'}"
            _restore_into(manifest, payload, target, pg_bin_dir, clean=False)
            problems = _compare(manifest, target, only_manifest_tables=False)
        else:
            if postgres_url is None or engine_of(postgres_url) != "postgresql":
                raise ConfigurationError(
                    "Verifying a PostgreSQL backup needs a PostgreSQL server for the scratch "
                    "database: set CDB_DATABASE_URL to one (or pass --scratch-server)"
                )
            with postgres.scratch_database(postgres_url) as scratch:
                _restore_into(manifest, payload, scratch, pg_bin_dir, clean=False)
                problems = _compare(manifest, scratch, only_manifest_tables=False)
    return VerifyReport(path=path, manifest=manifest, problems=problems)


def database_tables(url: str) -> list[str]:
    """The tables of the database at ``url`` (empty for a SQLite file that does not exist)."""
    if engine_of(url) == "sqlite" and not _sqlite_path(url).exists():
        return []
    parsed: URL = parse_url(url)
    engine = make_engine(parsed)
    try:
        with (
            translate_errors(parsed, "Inspecting the target", connected=False),
            engine.connect() as connection,
        ):
            return sorted(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def restore_backup(
    path: Path, url: str, *, force: bool = False, pg_bin_dir: Path | None = None
) -> Manifest:
    """Restore the backup at ``path`` into the database at ``url``, then check it.

    Refuses a target that already has tables unless ``force``. After loading, the target's row
    counts and hashes must equal the manifest's (``CheckFailed`` otherwise).
    """
    manifest = read_manifest(path)
    if engine_of(url) != manifest.engine:
        raise ConfigurationError(
            f"Backup {path.name} is a {manifest.engine} backup; it restores only into a "
            f"{manifest.engine} database, not into {describe_url(parse_url(url))}"
        )
    existing = database_tables(url)
    if existing and not force:
        raise CdbError(
            f"{describe_url(parse_url(url))} is not empty ({len(existing)} tables); "
            "pass --force to overwrite it"
        )
    near = _sqlite_path(url).parent if manifest.engine == "sqlite" else None
    with _scratch(near) as work:
        payload = work / manifest.payload
        _extract_payload(path, manifest, payload)
        _restore_into(manifest, payload, url, pg_bin_dir, clean=bool(existing))
    problems = _compare(manifest, url, only_manifest_tables=True)
    if problems:
        raise CheckFailed(
            f"The restored database does not match backup {path.name}", details=problems
        )
    return manifest
