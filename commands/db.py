"""``cdb db``: the store's schema: status and upgrade (Alembic migrations)."""

from __future__ import annotations

import typer

from cdb_cli.context import app_context
from cdb_cli.options import JsonOpt

app = typer.Typer(
    help="Database schema: show its revision or upgrade it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("status")
def status(ctx: typer.Context, *, json_output: JsonOpt = False) -> None:
    """Show the schema revision against the code's head.

    Reads CDB_DATABASE_URL. Exit 0 when at head, 4 when migrations are pending.
    """
    context = app_context(ctx)
    url = context.settings().database_url
    from cdb_cli.kernel.database import schema_status
    from cdb_cli.redaction import redact_url

    result = schema_status(url)
    document = {
        "database": redact_url(url),
        "current": result.current,
        "head": result.head,
        "up_to_date": result.up_to_date,
        "pending": result.pending,
    }
    if json_output or context.json:
        context.terminal.json(document)
    else:
        out = context.terminal.out
        out.print(f"database  {document['database']}", markup=False)
        out.print(f"current   {result.current or '(empty: no schema)'}", markup=False)
        out.print(f"head      {result.head}", markup=False)
        verdict = "up to date" if result.up_to_date else f"{len(result.pending)} pending"
        out.print(f"status    {verdict}", markup=False)
    if not result.up_to_date:
        raise typer.Exit(4)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: str = typer.Argument(
        "head", metavar="[REVISION]", help="Target revision (default: head)."
    ),
) -> None:
    """Apply pending schema migrations.

    Upgrades CDB_DATABASE_URL to REVISION (default head); creates a new SQLite file if needed.
    Exit 2 for a revision cdb does not know.
    """
    context = app_context(ctx)
    url = context.settings().database_url
    from cdb_cli.kernel.database import UnknownRevision, upgrade_schema
    from cdb_cli.redaction import redact_url

    try:
        before, after = upgrade_schema(url, revision)
    except UnknownRevision as e:  # nothing was migrated
        raise typer.BadParameter(
            f"{e} (cdb db status shows its head)", param_hint="REVISION"
        ) from None
    context.terminal.err.print(
        f"Upgraded {redact_url(url)}: {before or '(empty)'} -> {after}", markup=False
    )
