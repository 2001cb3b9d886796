"""The manifest of a backup, and the archive that holds it beside the database dump.

A backup is one uncompressed tar file with two members, the manifest first::

    manifest.json           this module's ``Manifest``
    database.sqlite.gz      SQLite: the online-backup copy, gzip-compressed
    database.pgdump         PostgreSQL: ``pg_dump --format=custom`` (compressed by pg_dump)

``tar xf`` gives an operator the plain dump when cdb is not at hand. The manifest names the dump's
SHA-256, so a flipped byte or a truncated file is caught before anything is restored.
"""

from __future__ import annotations

import json
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cdb_cli.engine.errors import CheckFailed

__all__ = [
    "MANIFEST_MEMBER",
    "MANIFEST_VERSION",
    "PAYLOAD_MEMBERS",
    "Engine",
    "Manifest",
    "TableDigest",
    "read_manifest",
]

MANIFEST_MEMBER: Final = "manifest.json"
MANIFEST_VERSION: Final = 1

Engine = Literal["sqlite", "postgresql"]
PAYLOAD_MEMBERS: Final[dict[str, str]] = {
    "sqlite": "database.sqlite.gz",
    "postgresql": "database.pgdump",
}


class TableDigest(BaseModel):
    """Row count and content hash of one table (rows in primary-key order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """What a backup holds and how to check it; never a password (``source`` is redacted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["cdb-backup"] = "cdb-backup"
    version: int = MANIFEST_VERSION
    engine: Engine
    created_at: datetime = Field(description="When the snapshot was taken, UTC.")
    cdb_version: str
    source: str = Field(description="The source database URL, password replaced by ***.")
    schema_revision: str | None = Field(description="Alembic revision; None without cdb schema.")
    payload: str = Field(description="Name of the dump member in the archive.")
    payload_bytes: int = Field(ge=0)
    payload_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tool: str = Field(default="", description="The dump tool and its version, e.g. pg_dump 15.4.")
    tables: dict[str, TableDigest]

    @property
    def total_rows(self) -> int:
        """Rows in all tables together."""
        return sum(digest.rows for digest in self.tables.values())

    def to_json(self) -> bytes:
        """The manifest as the archive stores it: indented JSON, keys in schema order."""
        return (self.model_dump_json(indent=2) + "\n").encode()


def _damaged(path: Path, reason: str) -> CheckFailed:
    return CheckFailed(f"Backup {path.name} is damaged or not a cdb backup: {reason}")


def read_manifest(path: Path) -> Manifest:
    """Read the manifest of the backup at ``path``; ``CheckFailed`` when it is damaged."""
    try:
        with tarfile.open(path, mode="r:") as archive:
            member = archive.next()
            if member is None or member.name != MANIFEST_MEMBER or not member.isfile():
                raise _damaged(path, f"its first member is not {MANIFEST_MEMBER}")
            stream = archive.extractfile(member)
            if stream is None:  # pragma: no cover - a regular file always has a stream
                raise _damaged(path, "the manifest cannot be read")
            document = json.loads(stream.read())
    except FileNotFoundError:
        raise CheckFailed(f"Backup {path} does not exist") from None
    except (tarfile.TarError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _damaged(path, str(e) or type(e).__name__) from None
    except OSError as e:
        raise CheckFailed(f"Cannot read backup {path}: {e.strerror}") from None
    version = document.get("version") if isinstance(document, dict) else None
    if isinstance(version, int) and version > MANIFEST_VERSION:
        raise CheckFailed(
            f"Backup {path.name} was written by a newer cdb (manifest version {version}, this cdb "
            f"reads {MANIFEST_VERSION}); use that cdb or a newer one"
        )
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as e:
        raise _damaged(path, f"invalid manifest ({e.error_count()} problem(s))") from None
    if manifest.payload != PAYLOAD_MEMBERS[manifest.engine]:
        raise _damaged(path, f"unexpected dump member {manifest.payload!r}")
    return manifest
