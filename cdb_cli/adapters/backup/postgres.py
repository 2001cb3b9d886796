"""PostgreSQL: ``pg_dump --format=custom`` in the snapshot the manifest is computed in.

The dump and the manifest describe the same instant: cdb opens a read-only REPEATABLE READ
transaction, exports its snapshot, runs ``pg_dump --snapshot`` on it and counts and hashes the
tables inside that transaction. pg_dump and pg_restore get the password through ``PGPASSWORD``,
never on a command line (visible in ``ps``) and never in a message.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import URL

from cdb_cli.adapters.backup.content import schema_revision, table_digests
from cdb_cli.adapters.backup.manifest import TableDigest
from cdb_cli.adapters.sql.database import describe_url, make_engine, parse_url, translate_errors
from cdb_cli.engine.errors import DependencyError

__all__ = ["PgTool", "dump", "find_tool", "restore", "scratch_database", "server_major"]

TOOL_TIMEOUT_S: Final = 6 * 3600
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTool:
    """A PostgreSQL client program and its major version."""

    path: Path
    version: str  # e.g. "15.4"
    major: int

    def __str__(self) -> str:
        return f"{self.path.name} {self.version}"


def find_tool(name: str, bin_dir: Path | None) -> PgTool:
    """Locate ``pg_dump`` / ``pg_restore`` (in ``bin_dir`` or on PATH) and read its version."""
    found = bin_dir / name if bin_dir is not None else None
    if found is None:
        which = shutil.which(name)
        found = Path(which) if which else None
    if found is None or not os.access(found, os.X_OK):
        where = f"in {bin_dir}" if bin_dir is not None else "on PATH"
        raise DependencyError(
            f"{name} was not found {where}; install the PostgreSQL client "
            "(e.g. postgresql-client-15) or set CDB_PG_BIN_DIR"
        )
    try:
        done = subprocess.run(  # noqa: S603 - a PostgreSQL client program, no shell
            [str(found), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as e:
        raise DependencyError(f"{found} cannot be run: {e.strerror}") from None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise DependencyError(f"{found} does not report a PostgreSQL version")
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return PgTool(path=found, version=version, major=int(match.group(1)))


def _conninfo(url: URL) -> str:
    """A libpq connection string without the password: ``host='h' port='5432' …``."""

    def quoted(value: object) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    parts.update(
        {
            key: value
            for key, value in url.query.items()
            if isinstance(value, str) and key != "password"  # PGPASSWORD carries it
        }
    )
    return " ".join(f"{key}={quoted(value)}" for key, value in parts.items() if value is not None)


def _run(tool: PgTool, arguments: list[str], url: URL, action: str) -> None:
    environment = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    environment.pop("PGPASSWORD", None)
    password = url.password or url.query.get("password")
    if isinstance(password, str) and password:
        environment["PGPASSWORD"] = password
    command = [str(tool.path), *arguments, "--no-password", f"--dbname={_conninfo(url)}"]
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, arguments built here
            command, capture_output=True, text=True, env=environment, timeout=TOOL_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DependencyError(f"{action} failed: {tool} did not run to the end ({e})") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {done.returncode}"
        if isinstance(password, str) and password:
            reason = reason.replace(password, "***")
        raise DependencyError(f"{action} failed on {describe_url(url)}: {reason}")


def server_major(url: str) -> int:
    """The major version of the PostgreSQL server at ``url``."""
    parsed = parse_url(url)
    engine = make_engine(parsed)
    try:
        with (
            translate_errors(parsed, "Reading the server version", connected=False),
            engine.connect() as connection,
        ):
            number = connection.exec_driver_sql("SHOW server_version_num").scalar()
        return int(str(number)) // 10000
    finally:
        engine.dispose()


def _check_versions(tool: PgTool, server: int) -> None:
    if tool.major < server:
        raise DependencyError(
            f"{tool} cannot handle PostgreSQL {server}; install the PostgreSQL {server} client "
            f"(postgresql-client-{server}) or point CDB_PG_BIN_DIR at it"
        )


def dump(
    url: str, target: Path, bin_dir: Path | None
) -> tuple[PgTool, str | None, dict[str, TableDigest]]:
    """Dump the database at ``url`` into ``target``; return the tool, revision and digests."""
    parsed = parse_url(url)
    tool = find_tool("pg_dump", bin_dir)
    _check_versions(tool, server_major(url))
    engine = make_engine(parsed)
    try:
        with (
            translate_errors(parsed, "Backing up", connected=False),
            engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            ) as connection,
            connection.begin(),
        ):
            snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            arguments = ["--format=custom", "--compress=6", f"--snapshot={snapshot}"]
            _run(tool, [*arguments, f"--file={target}"], parsed, "pg_dump")
            return tool, schema_revision(connection), table_digests(connection)
    finally:
        engine.dispose()


def restore(
    dump_file: Path, url: str, bin_dir: Path | None, *, dumped_by: int, clean: bool
) -> None:
    """Load a custom-format dump into the database at ``url`` in one transaction.

    ``dumped_by`` is the major version of the pg_dump that wrote it: an older pg_restore cannot
    read it. ``clean`` drops the dump's objects first (``--clean --if-exists``).
    """
    tool = find_tool("pg_restore", bin_dir)
    _check_versions(tool, max(dumped_by, server_major(url)))
    arguments = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    if clean:
        arguments += ["--clean", "--if-exists"]
    _run(tool, [*arguments, str(dump_file)], parse_url(url), "pg_restore")


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new empty database beside ``url``'s (same server and user), dropped afterwards.

    Needs the CREATEDB privilege; connects to the server's ``postgres`` maintenance database.
    """
    parsed = parse_url(url)
    name = f"cdb_verify_{secrets.token_hex(6)}"
    admin_url = parsed.set(database="postgres")
    admin = make_engine(admin_url)
    action = "Creating a scratch database for verify (needs the CREATEDB privilege)"
    try:
        with (
            translate_errors(admin_url, action, connected=False),
            admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        ):
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            with (
                translate_errors(admin_url, "Dropping the scratch database"),
                admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
            ):
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
