"""The schema of a cdb database: where it stands and its migrations (``cdb db``, ``cdb backup
restore``).

The migrations are the ones for the database's engine (Alembic over SQLAlchemy today); a command
sees a :class:`SchemaStatus` and, for a revision the migrations do not know,
:class:`UnknownRevision`, never the migration tool's own errors. Adapters are imported inside the
functions, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # The type the commands name comes through this door (explicit re-export).
    from cdb_cli.adapters.sql.migrations import SchemaStatus as SchemaStatus

__all__ = ["UnknownRevision", "describe_database", "schema_status", "upgrade_schema"]


class UnknownRevision(ValueError):
    """The revision is none of the schema's (nothing was migrated)."""


def schema_status(url: str) -> SchemaStatus:
    """The schema of the database at ``url`` against this code's newest revision."""
    from cdb_cli.adapters.sql.migrations import schema_status as status

    return status(url)


def upgrade_schema(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database at ``url`` to ``revision`` (a new SQLite file is created); return
    its revision before and after. ``UnknownRevision`` when the migrations do not know
    ``revision``: they resolve it before they change anything."""
    from alembic.util.exc import CommandError

    from cdb_cli.adapters.sql.migrations import upgrade

    before = schema_status(url).current
    try:
        upgrade(url, revision)
    except CommandError as e:
        raise UnknownRevision(f"{revision!r} is not a revision of cdb's schema") from e
    return before, schema_status(url).current


def describe_database(url: str) -> str:
    """Name the database at ``url`` for the operator: engine, place, database; never
    credentials (``ConfigurationError`` for an engine cdb does not support)."""
    from cdb_cli.adapters.sql.database import describe_url, parse_url

    return describe_url(parse_url(url))
