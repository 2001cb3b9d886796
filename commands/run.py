"""``cdb run``: the long-lived trading loop."""

from __future__ import annotations

from typing import Annotated

import typer

from cdb_cli.context import app_context, run_async


def run(
    ctx: typer.Context,
    *,
    paper: Annotated[
        bool, typer.Option("--paper", help="Simulated fills on live market data (default).")
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Real MEXC orders (behind the governance gate).")
    ] = False,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", metavar="A,B", help="Symbols to trade (default: CDB_SYMBOLS)."),
    ] = None,
    feed: Annotated[
        str,
        typer.Option(
            "--feed",
            metavar="mexc|sim",
            help="Market data: mexc (CDB_MEXC_*_URL) or sim (a simulated MEXC in this process).",
        ),
    ] = "mexc",
) -> None:
    """Run the trading loop until Ctrl-C or SIGTERM: market data, signals, risk, execution,
    portfolio; everything is written to CDB_DATABASE_URL and a restart resumes from it.

    Exit 0 after a clean stop, 3 when the settings or the schema are not right.
    """
    context = app_context(ctx)
    if paper and live:
        raise typer.BadParameter("choose one of --paper and --live")
    if feed not in ("mexc", "sim"):
        raise typer.BadParameter(f"{feed!r} is not mexc or sim", param_hint="--feed")
    settings = context.settings()
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.runtime.run import run_paper

    if live or (not paper and settings.mode == "live"):
        raise ConfigurationError(
            "Live trading is not available yet: it needs the governance gate (issue 8); use --paper"
        )
    chosen = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    import sys

    view = sys.stderr.isatty() and not context.json  # the live screen on a terminal only
    summary = run_async(
        run_paper(
            settings,
            symbols=chosen or settings.symbols,
            feed="sim" if feed == "sim" else "mexc",
            view=view,
        )
    )
    context.terminal.err.print(
        f"Stopped run {summary.run_id}: {summary.market_events} market events, {summary.bars} "
        f"bars, {summary.signals} signals, {summary.orders} orders, {summary.fills} fills",
        markup=False,
    )
