"""``cdb systemcheck``: check every dependency; a table or ``--json``; exit 4 when one fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context
from cdb_cli.errors import ExitCode
from cdb_cli.options import JsonOpt

if TYPE_CHECKING:
    from datetime import date, datetime

    from rich.console import Console

    from cdb_cli.services.systemcheck import CheckContext, CheckRow

_STYLES = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def systemcheck(
    ctx: typer.Context,
    *,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Skip the checks that reach network services: Redis, SMTP and MEXC (REST, "
            "clock, keys, trading, WebSocket).",
        ),
    ] = False,
    daily: Annotated[
        bool,
        typer.Option(
            "--daily",
            help="Add yesterday's (UTC) summary from the store: trades, PnL, fees, rejections "
            "by reason, feed gaps; mail it when CDB_SMTP_HOST is set.",
        ),
    ] = False,
    day: Annotated[
        str | None,
        typer.Option(
            "--day", metavar="YYYY-MM-DD", help="With --daily: summarise this UTC day instead."
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Check every dependency; exit 4 when one fails.

    Settings, database, schema, Redis, SMTP, disk space, backups, the breaker state and the full
    path (a synthetic trade through strategy, risk, paper execution and portfolio, in memory):
    one row per check with ok, warn, fail or skip, the measured value and a hint. Every check
    runs even when another fails. Exit 0 when none fails, 4 when any fails (usable from cron and
    monitoring). --quick skips the network checks (Redis, SMTP, MEXC).
    """
    from datetime import UTC, datetime

    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.services.operator import systemcheck as run_systemcheck

    context = app_context(ctx)
    now = datetime.now(UTC)
    if day is not None and not daily:
        raise typer.BadParameter("only with --daily", param_hint="--day")
    chosen_day = _parse_day(day, now) if daily else None
    settings: Any
    try:
        settings = context.settings()
    except ConfigurationError as e:
        settings = e
    checked = run_systemcheck(context.env_file, settings, quick=quick, now=now)
    document, rows, failed = checked.document, checked.rows, checked.failed
    if chosen_day is not None:
        failed += _daily(context, checked.context, rows, chosen_day, document, checked.secrets)
        document["ok"] = not failed
    if json_output or context.json:
        context.terminal.json(document)
    else:
        _render(context.terminal.out, rows)
        if "daily" in document:
            from cdb_cli.services.systemcheck.daily import summary_lines

            for line in ["", *summary_lines(document["daily"])]:
                context.terminal.out.print(line, markup=False, highlight=False)
    if failed:
        context.terminal.err.print(
            f"{len(failed)} check(s) failed: {', '.join(failed)}", markup=False
        )
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _parse_day(day: str | None, now: datetime) -> date:
    from datetime import date

    from cdb_cli.services.systemcheck.daily import yesterday

    if day is None:
        return yesterday(now)
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(
            f"{day!r} is not a date like 2026-11-22", param_hint="--day"
        ) from None


def _daily(
    context: AppContext,
    check_context: CheckContext,
    rows: list[CheckRow],
    day: date,
    document: dict[str, Any],
    secrets: list[str],
) -> list[str]:
    """Add the summary (and the mail's outcome) to ``document``; return what failed."""
    from cdb_cli.engine.errors import CdbError
    from cdb_cli.services.systemcheck import Status
    from cdb_cli.services.systemcheck.daily import daily_summary, mail_report

    settings = check_context.settings
    schema = check_context.rows.get("schema")
    if settings is None or schema is None or schema.status is not Status.OK:
        document["daily"] = {"day": day.isoformat(), "error": "the store is not usable"}
    else:
        from cdb_cli.kernel import open_store

        store = open_store(settings)
        try:
            document["daily"] = daily_summary(store, settings, day)
        finally:
            store.close()
    if settings is None:
        document["mail"] = {"sent": False, "reason": "settings are invalid"}
        return []
    try:
        document["mail"] = mail_report(settings, rows, document["daily"])
    except CdbError as e:
        message = e.message
        for secret in secrets:
            message = message.replace(secret, "***")
        document["mail"] = {"sent": False, "error": message}
        context.terminal.err.print(f"Daily mail not sent: {message}", markup=False)
        return ["mail"]
    return []


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
