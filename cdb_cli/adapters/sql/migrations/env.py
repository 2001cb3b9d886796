"""Alembic environment for cdb's schema: online with a given connection or URL, or offline SQL.

``cdb_cli.adapters.sql.migrations`` passes its open connection in ``config.attributes``; the
``alembic`` command line (for developers writing a revision) passes ``-x url=...`` instead.
SQLite runs in batch mode, since it cannot ALTER most things in place.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from cdb_cli.adapters.sql.database import make_engine, parse_url
from cdb_cli.adapters.sql.models import metadata
from cdb_cli.adapters.sql.types import Money

config = context.config


def render_item(type_: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    """Render ``Money`` in new revisions as plain types, so revisions never import models."""
    if type_ == "type" and isinstance(item, Money):
        return 'sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")'
    return False


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("No database given: pass -x url=<database URL> to alembic")
    return url


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the migration SQL for the URL's dialect instead of running it."""
    url = parse_url(_url())
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the caller's connection, or on a new one to ``-x url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = make_engine(parse_url(_url()))
    try:
        with engine.connect() as new_connection:
            _run_with(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
