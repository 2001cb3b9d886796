"""``cdb notify test``: send a test message to every notification channel (mail and each
webhook) and report each one's result; exit 4 when one fails."""

from __future__ import annotations

from typing import Annotated

import typer

from cdb_cli.context import app_context
from cdb_cli.errors import ExitCode
from cdb_cli.options import JsonOpt

app = typer.Typer(
    help="Notifications: mail (CDB_SMTP_*) and webhooks (CDB_WEBHOOK_URLS).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("test")
def send_test(
    ctx: typer.Context,
    *,
    json_output: JsonOpt = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.5, max=60.0, help="Seconds to wait for each webhook."),
    ] = 10.0,
) -> None:
    """Send a test message to every configured channel: the mail (CDB_SMTP_*) and each
    CDB_WEBHOOK_URLS target, one after another. One row per channel (sent, or why not; the
    time it took); webhook URLs are never shown, only their format, position and host. Exit 0
    when every channel took it, 4 when one failed or none is configured."""
    from cdb_cli.kernel import notifier

    context = app_context(ctx)
    settings = context.settings()
    channels = notifier(settings, timeout_s=timeout, attempts=1)
    if channels is None:
        message = "No notification channel is configured: set CDB_SMTP_HOST or CDB_WEBHOOK_URLS"
        if json_output or context.json:
            context.terminal.json({"ok": False, "channels": [], "error": message})
        context.terminal.err.print(message, markup=False, highlight=False)
        raise typer.Exit(ExitCode.CHECK_FAILED)
    results = channels.test()
    failed = [result for result in results if not result.ok]
    if json_output or context.json:
        document = {"ok": not failed, "channels": [result.to_dict() for result in results]}
        context.terminal.json(document)
    else:
        from rich.markup import escape
        from rich.table import Column, Table

        table = Table(
            Column("channel", no_wrap=True),
            Column("result", no_wrap=True),
            Column("detail", overflow="fold"),
            Column("ms", justify="right"),
        )
        for result in results:
            shown = "[green]sent[/]" if result.ok else "[red]failed[/]"
            table.add_row(escape(result.channel), shown, escape(result.detail), f"{result.ms:.0f}")
        context.terminal.out.print(table)
    if failed:
        names = ", ".join(result.channel for result in failed)
        context.terminal.err.print(
            f"{len(failed)} of {len(results)} channel(s) failed: {names}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(ExitCode.CHECK_FAILED)
