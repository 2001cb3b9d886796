"""The backup folder: creating it, writing archives atomically, listing, pruning, verify records.

Archives are written to a hidden temporary file in the same folder (mode 0600), fsynced, then
renamed into place and the folder fsynced: a reader sees a complete backup or none. Whatever fails
on the way (a full disk, a dump error, Ctrl-C) removes the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cdb_cli.adapters.backup.manifest import MANIFEST_MEMBER, Manifest, read_manifest
from cdb_cli.engine.errors import CdbError, CheckFailed, DependencyError

__all__ = [
    "BackupFile",
    "PruneResult",
    "VerifyRecord",
    "backup_name",
    "ensure_folder",
    "list_backups",
    "prune",
    "read_verify_records",
    "record_verify",
    "resolve_backup",
    "work_folder",
    "write_archive",
]

logger = logging.getLogger(__name__)

SUFFIX: Final = ".tar"
PREFIX: Final = "cdb-"
TEMP_PREFIX: Final = ".cdb-"
VERIFY_RECORD: Final = ".cdb-verified.json"
STALE_TEMP_AGE: Final = timedelta(hours=24)


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    return error.strerror or str(error)


def ensure_folder(folder: Path) -> Path:
    """Create the backup folder (mode 0700) if needed; ``DependencyError`` when impossible."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise DependencyError(
            f"Cannot create the backup folder {folder}: {_os_reason(e)} (set CDB_BACKUP_DIR)"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DependencyError(f"The backup folder {folder} is not writable (set CDB_BACKUP_DIR)")
    return folder


@contextmanager
def work_folder(folder: Path) -> Iterator[Path]:
    """A private scratch folder inside ``folder`` (same disk as the result), removed afterwards."""
    try:
        path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}work-", dir=folder))
    except OSError as e:
        raise DependencyError(f"Cannot write in {folder}: {_os_reason(e)}") from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def backup_name(manifest: Manifest, attempt: int = 1) -> str:
    """``cdb-20261123T170710.123Z-sqlite.tar``: sorts by time, says the engine.

    A second backup in the same millisecond gets ``-2`` before ``.tar``, and so on.
    """
    stamp = manifest.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    again = f"-{attempt}" if attempt > 1 else ""
    return f"{PREFIX}{stamp}Z-{manifest.engine}{again}{SUFFIX}"


def _fsync_folder(folder: Path) -> None:
    # Makes the rename durable; some file systems cannot fsync a folder, which is no reason to fail.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _publish(temp: Path, target: Path) -> None:
    """Move ``temp`` to ``target`` atomically without ever replacing an existing backup."""
    try:
        os.link(temp, target)  # fails if target exists, unlike rename
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}:
            raise
        # File systems without hard links (some network and FUSE mounts): rename, after a check.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.rename(temp, target)
        return
    temp.unlink()


def write_archive(folder: Path, manifest: Manifest, payload: Path) -> Path:
    """Write manifest and dump as one archive into ``folder`` atomically; return its path.

    Raises ``DependencyError`` naming the cause (e.g. no space left) and leaves no file behind.
    """
    try:
        descriptor, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
    except OSError as e:
        raise DependencyError(f"Cannot write the backup into {folder}: {_os_reason(e)}") from None
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            with tarfile.open(fileobj=stream, mode="w:", format=tarfile.PAX_FORMAT) as archive:
                _add_bytes(archive, MANIFEST_MEMBER, manifest.to_json(), manifest)
                info = tarfile.TarInfo(manifest.payload)
                info.size = manifest.payload_bytes
                info.mtime = int(manifest.created_at.timestamp())
                info.mode = 0o600
                with payload.open("rb") as source:
                    archive.addfile(info, source)
            stream.flush()
            os.fsync(stream.fileno())
        target = _publish_new(temp, folder, manifest)
        _fsync_folder(folder)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise DependencyError(f"Cannot write the backup into {folder}: {_os_reason(e)}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def _publish_new(temp: Path, folder: Path, manifest: Manifest) -> Path:
    for attempt in range(1, 100):
        target = folder / backup_name(manifest, attempt)
        try:
            _publish(temp, target)
        except FileExistsError:
            continue
        return target
    raise FileExistsError(errno.EEXIST, "too many backups in one millisecond", str(folder))


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, manifest: Manifest) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(manifest.created_at.timestamp())
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class BackupFile:
    """One file in the backup folder; ``manifest`` is None and ``problem`` set when damaged."""

    path: Path
    size: int
    manifest: Manifest | None
    problem: str | None = None

    @property
    def created_at(self) -> datetime:
        """When the backup was taken (the file's mtime if its manifest cannot be read)."""
        if self.manifest is not None:
            return self.manifest.created_at
        return datetime.fromtimestamp(self.path.stat().st_mtime, tz=UTC)


def list_backups(folder: Path) -> list[BackupFile]:
    """Every ``cdb-*.tar`` in ``folder``, oldest first; damaged files are listed with a problem."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        try:
            found.append(BackupFile(path, path.stat().st_size, read_manifest(path)))
        except CheckFailed as e:
            found.append(BackupFile(path, path.stat().st_size, None, e.message))
    # name length first: "…Z-sqlite.tar" was written before "…Z-sqlite-2.tar"
    return sorted(
        found, key=lambda backup: (backup.created_at, len(backup.path.name), backup.path.name)
    )


def resolve_backup(argument: str | None, folder: Path) -> Path:
    """The backup a command means: a path, a name in ``folder``, or (None) the newest one."""
    if argument is None:
        readable = [backup for backup in list_backups(folder) if backup.manifest is not None]
        if not readable:
            raise CdbError(f"No backup in {folder}; run `cdb backup create`")
        return readable[-1].path
    candidate = Path(argument).expanduser()
    if candidate.is_file():
        return candidate.absolute()
    if (folder / argument).is_file():
        return folder / argument
    raise CdbError(
        f"No backup {argument!r} (neither a file nor in {folder}); see `cdb backup list`"
    )


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` removed (or would remove) and what it kept."""

    removed: list[Path]
    kept: list[Path]


def prune(folder: Path, *, keep_days: int, now: datetime, dry_run: bool = False) -> PruneResult:
    """Remove backups older than ``keep_days``; the newest readable backup always stays.

    Also removes temporary files of interrupted runs older than a day.
    """
    backups = list_backups(folder)
    readable = [backup for backup in backups if backup.manifest is not None]
    newest = readable[-1].path if readable else None
    cutoff = now - timedelta(days=keep_days)
    removed, kept = [], []
    for backup in backups:
        if backup.created_at < cutoff and backup.path != newest:
            removed.append(backup.path)
        else:
            kept.append(backup.path)
    if folder.is_dir():
        for temp in folder.glob(f"{TEMP_PREFIX}*"):
            age = now - datetime.fromtimestamp(temp.stat().st_mtime, tz=UTC)
            if temp.name != VERIFY_RECORD and age > STALE_TEMP_AGE:
                removed.append(temp)
    if not dry_run:
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return PruneResult(removed=removed, kept=kept)


@dataclass(frozen=True)
class VerifyRecord:
    """The outcome of one ``cdb backup verify``, kept for ``cdb systemcheck``."""

    backup: str
    created_at: datetime
    verified_at: datetime
    ok: bool
    problem: str = ""
    path: str = ""  # where the backup was when verified

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup": self.backup,
            "path": self.path,
            "created_at": self.created_at.isoformat(),
            "verified_at": self.verified_at.isoformat(),
            "ok": self.ok,
            "problem": self.problem,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyRecord:
        return cls(
            backup=str(data["backup"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            verified_at=datetime.fromisoformat(data["verified_at"]),
            ok=bool(data["ok"]),
            problem=str(data.get("problem", "")),
            path=str(data.get("path", "")),
        )


def read_verify_records(folder: Path) -> dict[str, VerifyRecord]:
    """``{"last_ok": …, "last_failed": …}`` from the folder's record (absent keys: never)."""
    try:
        data = json.loads((folder / VERIFY_RECORD).read_text(encoding="utf-8"))
        return {key: VerifyRecord.from_dict(value) for key, value in data.items() if value}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def record_verify(folder: Path, record: VerifyRecord) -> None:
    """Remember ``record`` as the last successful or last failed verification (atomically)."""
    records = read_verify_records(folder)
    records["last_ok" if record.ok else "last_failed"] = record
    document = json.dumps({key: value.to_dict() for key, value in records.items()}, indent=2)
    descriptor, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(document + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, folder / VERIFY_RECORD)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        logger.warning("Cannot record the verification in %s: %s", folder, _os_reason(e))
