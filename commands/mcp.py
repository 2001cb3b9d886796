"""``cdb mcp``: serve cdb's operator questions to AI assistants over MCP (stdio, or streamable
HTTP on 127.0.0.1). Parses and starts the server in :mod:`cdb_cli.services.mcp_server`; the
``mcp`` SDK (an optional extra) is imported only here, inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cdb_cli.context import app_context

DEFAULT_PORT = 8766  # not 8765: cdb sim-exchange's


def mcp(
    ctx: typer.Context,
    *,
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve streamable HTTP on 127.0.0.1 (path /mcp) instead of stdio.",
        ),
    ] = False,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="The HTTP port (with --http; 8766)."),
    ] = None,
    allow_halt: Annotated[
        bool,
        typer.Option(
            "--allow-halt",
            help="Offer a halt tool (the kill switch, audited with the MCP client's name). "
            "Never a reset or a live start.",
        ),
    ] = False,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            dir_okay=False,
            help="Offer a logs tool: the last lines of this file (where cdb run's stderr goes).",
        ),
    ] = None,
) -> None:
    """Serve cdb to AI assistants over MCP: status, explain, risk explain, decisions and one
    decision's trace, report, systemcheck, backups (and logs with --log-file), each answering
    what its command prints with --json, secrets redacted. Read-only unless --allow-halt.

    Reads CDB_DATABASE_URL (SQLite or PostgreSQL). Needs the mcp extra:
    pip install 'cdb-cli[mcp]'."""
    context = app_context(ctx)
    if port is not None and not http:
        raise typer.BadParameter("only with --http", param_hint="--port")
    settings = context.settings()
    try:
        from cdb_cli.services.mcp_server import build_server
    except ImportError as e:  # pragma: no cover - the extra is in the test extra
        from cdb_cli.engine.errors import ConfigurationError

        raise ConfigurationError(
            f"cdb mcp needs the MCP SDK ({e.name} is missing): pip install 'cdb-cli[mcp]'"
        ) from None
    server = build_server(settings, context.env_file, allow_halt=allow_halt, log_file=log_file)
    if http:
        port = port or DEFAULT_PORT
        context.terminal.err.print(
            f"cdb mcp: streamable HTTP on http://127.0.0.1:{port}/mcp", markup=False
        )
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
