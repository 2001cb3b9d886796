"""Database URLs and engines, and the translation of driver errors into cdb's error tree.

Two dialects: SQLite (a file, or ``sqlite://`` in memory for tests and replay) and PostgreSQL
through psycopg 3. URLs are described to the operator as ``PostgreSQL at host:port/database`` or
``SQLite at /path``: never with the user's password, in messages nor in exception chains.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import URL, create_engine, event, exc, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from cdb_cli.engine.errors import (
    CdbError,
    ConfigurationError,
    DependencyError,
    SchemaOutOfDate,
    StateError,
    TransientError,
)
from cdb_cli.redaction import describe_url, redact, url_secrets

__all__ = [
    "describe_url",  # from cdb_cli.redaction, re-exported for the SQL adapters
    "is_memory_url",
    "make_engine",
    "parse_url",
    "translate_errors",
]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 5
SQLITE_BUSY_TIMEOUT_S: Final = 30
_POSTGRES_DRIVERS: Final = {"postgres", "postgresql", "postgresql+psycopg"}


def parse_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3.

    Raises ``ConfigurationError`` for a malformed URL or another dialect (without echoing it).
    """
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        raise ConfigurationError(
            "The database URL is malformed; expected sqlite:///path/to/file.db or "
            "postgresql://user@host:port/database"
        ) from None
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        return parsed
    raise ConfigurationError(
        f"Database dialect {parsed.drivername!r} is not supported; use sqlite or postgresql"
    )


def is_memory_url(url: URL) -> bool:
    """Return True for an in-memory SQLite database (each engine sees its own)."""
    return url.get_backend_name() == "sqlite" and url.database in {None, "", ":memory:"}


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _owner_only(path: Path) -> None:
    """Make the database file cdb created, and its WAL and shared-memory files, readable and
    writable by their owner only (0600; SQLite creates them as the umask allows, usually 0644,
    and creates later WAL files with the database file's mode)."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except FileNotFoundError:
            continue


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def make_engine(url: URL) -> Engine:
    """Create the engine for ``url`` (lazy: nothing connects until first use).

    SQLite in memory shares one connection across threads (``StaticPool``). A SQLite file gets
    WAL journaling, ``synchronous=NORMAL`` and foreign keys, and its folder is created; a file
    this engine creates is made 0600, with its WAL and shared-memory files (an existing file's
    mode is the operator's).
    PostgreSQL connections time out after a few seconds and are pinged before reuse.
    """
    if is_memory_url(url):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    if url.get_backend_name() == "sqlite":
        assert url.database is not None  # noqa: S101 - not in memory
        path = Path(url.database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DependencyError(
                f"Cannot create the folder of {describe_url(url)}: {e.strerror}"
            ) from None
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        if not path.exists():  # cdb creates it: the ledger is for its owner's eyes only
            event.listen(engine, "connect", lambda *_: _owner_only(path), once=True)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        connect_args["application_name"] = "cdb"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _first_line(error: BaseException, url: URL) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    line = text.splitlines()[0].strip() if text else type(error).__name__
    line = line.removeprefix("connection failed: ")
    return redact(line, _secrets(url))


def _secrets(url: URL) -> list[str]:
    """The password of ``url``, given in its user info or as a query parameter."""
    return [str(url.password or ""), *url_secrets(url.render_as_string(hide_password=False))]


def _chain_mentions(error: BaseException, secret: str) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if secret in str(seen) or secret in repr(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _schema_mismatch(error: exc.DBAPIError) -> bool:
    text = str(
        error.orig
    ).lower()  # SQLite: "no such table/column"; PostgreSQL: "... does not exist"
    if "no such table" in text or "no such column" in text:
        return True
    return ("relation" in text or "column" in text) and "does not exist" in text


def _translate(error: exc.SQLAlchemyError, url: URL, action: str, connected: bool) -> CdbError:
    where = describe_url(url)
    reason = _first_line(error, url)
    if isinstance(error, exc.DBAPIError) and _schema_mismatch(error):
        return SchemaOutOfDate(
            f"{action} failed: {where} does not have cdb's schema ({reason}); run `cdb db upgrade`"
        )
    if isinstance(error, exc.OperationalError | exc.InterfaceError):
        if not connected:
            return DependencyError(f"Cannot connect to {where}: {reason}")
        return TransientError(f"{action} failed on {where}: {reason}")
    if isinstance(error, exc.StatementError) and isinstance(error.orig, ValueError):
        return StateError(f"{action} failed: {reason}")
    return StateError(f"{action} failed on {where}: {reason}")


@contextmanager
def translate_errors(url: URL, action: str, *, connected: bool = True) -> Iterator[None]:
    """Turn SQLAlchemy/driver errors raised inside into cdb errors with a one-line message.

    ``connected=False`` marks a first connection: failures become ``DependencyError``
    ("cannot connect"); later connection failures are ``TransientError``. The original error
    stays chained unless its text would reveal the URL's password.
    """
    try:
        yield
    except exc.SQLAlchemyError as e:
        translated = _translate(e, url, action, connected)
        if any(secret and _chain_mentions(e, secret) for secret in _secrets(url)):
            raise translated from None
        raise translated from e
