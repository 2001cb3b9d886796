"""Schema migrations: Alembic, driven from code (no ``alembic.ini`` at runtime).

This folder is Alembic's script location: ``env.py``, ``script.py.mako`` and ``versions/``. The
functions here are what ``cdb db upgrade``, ``cdb systemcheck`` and the store call::

    upgrade(url)                  # apply pending migrations (``cdb db upgrade``)
    schema_status(url)            # where the database is against the code
    ensure_schema_current(url)    # raise SchemaOutOfDate unless at head
    create_if_new(url)            # build a brand-new embedded database

Each takes a URL or an already created engine (an in-memory SQLite database lives only as long as
its engine, so the store migrates it through its own). After changing ``models.py``, a developer
writes the next revision from a database at head, then reviews it::

    config = alembic_config()
    with make_engine(parse_url("sqlite:///scratch.db")).begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, "add x", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import URL, inspect
from sqlalchemy.engine import Engine

from cdb_cli.adapters.sql.database import describe_url, make_engine, parse_url, translate_errors
from cdb_cli.engine.errors import SchemaOutOfDate

__all__ = [
    "SCRIPT_LOCATION",
    "SchemaStatus",
    "create_if_new",
    "ensure_schema_current",
    "schema_status",
    "upgrade",
]

SCRIPT_LOCATION: Final = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this code's migrations."""

    current: str | None  # the database's revision; None when it has no cdb schema yet
    head: str  # the newest revision this code knows
    up_to_date: bool
    pending: list[str] = field(default_factory=list)  # revisions ``upgrade`` would apply, in order


def alembic_config() -> Config:
    """Return an Alembic ``Config`` for cdb's migrations, without any ini file."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    return config


@contextmanager
def _engine(url: str | Engine) -> Iterator[tuple[Engine, URL]]:
    if isinstance(url, Engine):
        yield url, url.url
        return
    parsed = parse_url(url)
    engine = make_engine(parsed)
    try:
        yield engine, parsed
    finally:
        engine.dispose()


def upgrade(url: str | Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest), in one transaction.

    Raises ``DependencyError`` when the database cannot be reached.
    """
    with (
        _engine(url) as (engine, parsed),
        translate_errors(parsed, "Upgrading the schema", connected=False),
        engine.begin() as connection,
    ):
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def schema_status(url: str | Engine) -> SchemaStatus:
    """Compare the database's revision with this code's head revision."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise SchemaOutOfDate("cdb ships no migrations; the installation is broken")
    with (
        _engine(url) as (engine, parsed),
        translate_errors(parsed, "Reading the schema revision", connected=False),
        engine.connect() as connection,
    ):
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return SchemaStatus(current=current, head=head, up_to_date=True)
    try:
        newer_first = script.iterate_revisions(head, current or "base")
        pending = [script_revision.revision for script_revision in newer_first]
    except (CommandError, RevisionError):  # the database is at a revision this code lacks
        pending = []
    pending.reverse()
    return SchemaStatus(current=current, head=head, up_to_date=False, pending=pending)


def ensure_schema_current(url: str | Engine) -> None:
    """Raise ``SchemaOutOfDate`` unless the database is at this code's head revision."""
    status = schema_status(url)
    if status.up_to_date:
        return
    where = describe_url(url.url if isinstance(url, Engine) else parse_url(url))
    if status.current is None:
        raise SchemaOutOfDate(f"{where} has no cdb schema yet; run `cdb db upgrade`")
    if not status.pending:
        raise SchemaOutOfDate(
            f"{where} is at schema revision {status.current}, which this cdb does not know "
            f"(its newest is {status.head}); upgrade cdb, or restore a matching backup"
        )
    raise SchemaOutOfDate(
        f"{where} is at schema revision {status.current}, this cdb needs {status.head} "
        f"({len(status.pending)} pending); run `cdb db upgrade`"
    )


def create_if_new(url: str | Engine) -> bool:
    """Build the schema in a database that has no tables at all; return True if it did.

    For the embedded SQLite file on first start. A database with any table is left alone, so
    an outdated schema still stops ``cdb run`` (``ensure_schema_current``) until the operator
    runs ``cdb db upgrade``.
    """
    with _engine(url) as (engine, parsed):
        with (
            translate_errors(parsed, "Inspecting the database", connected=False),
            engine.connect() as connection,
        ):
            is_empty = not inspect(connection).get_table_names()
        if is_empty:
            upgrade(engine)
        return is_empty
