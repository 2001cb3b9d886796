"""The one module that chooses implementations: settings in, ports out.

Commands never construct ``SqlStore`` or ``RedisBus`` themselves; they ask the kernel, so replay,
paper and live differ only in what is picked here (STYLE.md §2.3). Adapters are imported inside the
functions, so importing the kernel costs nothing until a port is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.engine.ports.bus import MessageBus
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.risk import RiskLimits
    from cdb_cli.settings import Settings

__all__ = ["mexc_http_client", "open_bus", "open_store", "risk_limits"]


def open_store(settings: Settings, *, create_if_new: bool = False) -> Store:
    """Open the store at ``CDB_DATABASE_URL``.

    ``create_if_new`` migrates a brand-new database (no tables at all) to the current schema, so
    the first ``cdb run`` on embedded defaults just works. An existing database that is not at the
    code's revision is never touched: it raises ``SchemaOutOfDate`` (run ``cdb db upgrade``), and an
    unreachable server raises ``DependencyError`` naming host and port, never the password.
    """
    from cdb_cli.adapters.sql.migrations import create_if_new as create_schema
    from cdb_cli.adapters.sql.store import SqlStore

    if create_if_new:
        create_schema(settings.database_url)
    return SqlStore(settings.database_url)


def open_bus(settings: Settings) -> MessageBus:
    """The bus of ``CDB_BUS_URL``: in process for ``memory://``, Redis Streams for ``redis://``.

    The Redis bus connects lazily; enter it (``async with``) to ping the server, which raises
    ``DependencyError`` with one line when Redis is down.
    """
    if urlsplit(settings.bus_url).scheme == "memory":
        from cdb_cli.engine.bus import InMemoryBus

        return InMemoryBus()
    from cdb_cli.adapters.redis_bus import RedisBus

    return RedisBus(settings.bus_url, prefix=settings.bus_prefix)


def risk_limits(settings: Settings) -> RiskLimits:
    """The engine's frozen ``RiskLimits`` from the settings (same field names; a test keeps the
    two schemas' names, types, defaults and descriptions equal)."""
    from cdb_cli.engine.risk import RiskLimits

    return RiskLimits(**{name: getattr(settings, name) for name in RiskLimits.model_fields})


def mexc_http_client(settings: Settings) -> MexcHttpClient:
    """The MEXC REST client at ``CDB_MEXC_REST_URL``, signed with the configured keys if both are
    set (public endpoints only otherwise). Enter it (``async with``) to close its connections."""
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.mexc.signing import Credentials

    credentials = None
    if settings.mexc_api_key is not None and settings.mexc_api_secret is not None:
        credentials = Credentials(
            settings.mexc_api_key.get_secret_value(), settings.mexc_api_secret.get_secret_value()
        )
    return MexcHttpClient(settings.mexc_rest_url, credentials)
