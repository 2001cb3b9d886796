"""``cdb systemcheck``: check every dependency; a table or ``--json``; exit 4 when one fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cdb_cli.context import app_context
from cdb_cli.errors import ExitCode
from cdb_cli.options import JsonOpt

if TYPE_CHECKING:
    from rich.console import Console

    from cdb_cli.systemcheck import CheckRow

_STYLES = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def systemcheck(
    ctx: typer.Context,
    *,
    quick: Annotated[
        bool, typer.Option("--quick", help="Skip checks that reach network services (Redis).")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Check every dependency; exit 4 when one fails.

    Settings, database, schema, Redis, disk space and backups: one row per check with ok, warn,
    fail or skip, the measured value and a hint. Every check runs even when another fails.
    Exit 0 when none fails, 4 when any fails (usable from cron and monitoring). --quick skips
    network checks.
    """
    from datetime import UTC, datetime

    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.systemcheck import CORE_CHECKS, CheckContext, Status, run_checks, secret_values

    context = app_context(ctx)
    check_context = CheckContext(
        settings=None, now=datetime.now(UTC), quick=quick, env_file=context.env_file
    )
    try:
        check_context.settings = context.settings()
    except ConfigurationError as e:
        check_context.settings_error = e
    secrets = secret_values(check_context.settings)
    rows = run_checks(CORE_CHECKS, check_context, secrets=secrets)
    failed = [row.name for row in rows if row.status is Status.FAIL]
    if json_output or context.json:
        context.terminal.json({"ok": not failed, "checks": [row.to_dict() for row in rows]})
    else:
        _render(context.terminal.out, rows)
    if failed:
        context.terminal.err.print(
            f"{len(failed)} check(s) failed: {', '.join(failed)}", markup=False
        )
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _render(console: Console, rows: list[CheckRow]) -> None:
    from rich.table import Column, Table

    table = Table(
        Column("check", no_wrap=True),
        Column("status", no_wrap=True),
        Column("value", overflow="fold"),  # paths and names are never cut off
        Column("hint", overflow="fold"),
    )
    for row in rows:
        status = str(row.status)
        table.add_row(row.name, f"[{_STYLES[status]}]{status}[/]", row.value, row.hint)
    console.print(table)
