"""``cdb report``: trades, PnL per day and per symbol, win rate, fees, exposure, rejections."""

from __future__ import annotations

import csv
import sys
from typing import Annotated, Any

import typer

from cdb_cli.context import app_context
from cdb_cli.options import JsonOpt, RunOpt, SinceOpt, SymbolOpt, UntilOpt, parse_when

TABLE_CHOICES = ("daily", "symbols", "trades", "exposure", "rejections")


def report(
    ctx: typer.Context,
    *,
    since: SinceOpt = None,
    until: UntilOpt = None,
    symbol: SymbolOpt = None,
    run: RunOpt = None,
    csv_table: Annotated[
        str | None,
        typer.Option(
            "--csv",
            metavar="TABLE",
            help=f"Print one table as CSV: {', '.join(TABLE_CHOICES)}.",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Report trades (round trips), PnL per day and per symbol, win rate, fees, exposure over
    time and rejections by reason, from CDB_DATABASE_URL (SQLite or PostgreSQL)."""
    context = app_context(ctx)
    if csv_table is not None and csv_table not in TABLE_CHOICES:
        raise typer.BadParameter(
            f"{csv_table!r} is not one of {', '.join(TABLE_CHOICES)}", param_hint="--csv"
        )
    since_ns, until_ns = parse_when(since, "--since"), parse_when(until, "--until")
    from cdb_cli.engine.analytics import analytics, table_rows
    from cdb_cli.engine.runs import select_decisions, select_fills
    from cdb_cli.kernel import open_store

    store = open_store(context.settings())
    try:
        fills = select_fills(store, symbol=symbol, run_id=run, since_ns=since_ns, until_ns=until_ns)
        decisions = select_decisions(
            store, symbol=symbol, run_id=run, since_ns=since_ns, until_ns=until_ns
        )
        snapshots = store.equity_snapshots(since_ns=since_ns, until_ns=until_ns)
    finally:
        store.close()
    document = analytics(fills, decisions, snapshots)
    if csv_table is not None:
        header, rows = table_rows(document, csv_table)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
        return
    if json_output or context.json:
        context.terminal.json(document)
        return
    _render(context.terminal, document, table_rows)


def _render(terminal: Any, document: dict[str, Any], table_rows: Any) -> None:
    from rich.table import Table

    from cdb_cli.engine.fees import describe_other

    summary = document["summary"]
    out = terminal.out
    out.print(
        f"Trades {summary['trades']} ({summary['won']} won, {summary['lost']} lost, win rate "
        f"{summary['win_rate']}), PnL {summary['pnl']}, fees {summary['fees_all_fills']}"
        f"{describe_other(summary['fees_other_assets'])}; "
        f"{summary['fills']} fills, {summary['open_positions']} positions open",
        markup=False,
    )
    for name in ("daily", "symbols", "rejections"):
        header, rows = table_rows(document, name)
        if not rows:
            continue
        table = Table(title=name)
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(cell) for cell in row))
        out.print(table)
    exposure = document["exposure"]
    if exposure:
        last = exposure[-1]
        out.print(
            f"Exposure: {len(exposure)} snapshots; last {last['exposure_pct']} % of equity "
            f"{last['equity']} at {last['at']} (--csv exposure for all)",
            markup=False,
        )


def _cell(value: Any) -> str:
    """A table cell for people: money to 8 decimals (CSV and JSON keep every digit)."""
    from decimal import Decimal, InvalidOperation

    if value is None:
        return "-"
    if isinstance(value, str) and "." in value:
        try:
            return f"{Decimal(value).quantize(Decimal('1e-8')):f}"
        except InvalidOperation:
            return value
    return str(value)
