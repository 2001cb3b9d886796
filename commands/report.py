"""``cdb report``: trades, PnL per day and per symbol, win rate, fees, exposure, rejections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import app_context
from cdb_cli.options import (
    JsonOpt,
    RunOpt,
    SinceOpt,
    SymbolOpt,
    UntilOpt,
    check_csv_table,
    csv_table_option,
    parse_when,
)

if TYPE_CHECKING:
    from cdb_cli.output import Terminal

TABLE_CHOICES = ("daily", "symbols", "trades", "exposure", "rejections")
_WORDS = ("day", "symbol", "reason")  # left-aligned columns; numbers are right-aligned


def report(
    ctx: typer.Context,
    *,
    since: SinceOpt = None,
    until: UntilOpt = None,
    symbol: SymbolOpt = None,
    run: RunOpt = None,
    csv_table: Annotated[str | None, csv_table_option(TABLE_CHOICES)] = None,
    json_output: JsonOpt = False,
) -> None:
    """Report trades (round trips), PnL per day and per symbol, win rate, fees, exposure over
    time and rejections by reason, from CDB_DATABASE_URL (SQLite or PostgreSQL).

    A trade counts in the window it closed in, from its true entry: a position open at the
    window's start is priced from its fills before the window. Amounts are rounded for reading;
    --json and --csv keep every digit. Exit 1 when the window holds nothing (with --json, a
    document whose "reason" says so)."""
    context = app_context(ctx)
    check_csv_table(csv_table, TABLE_CHOICES, json_output=json_output or context.json)
    since_ns, until_ns = parse_when(since, "--since"), parse_when(until, "--until")
    from cdb_cli.engine.analytics import table_rows
    from cdb_cli.services.operator import Window
    from cdb_cli.services.operator import report as build_report

    window = Window(symbol=symbol, since_ns=since_ns, until_ns=until_ns, run_id=run)
    document, reason = build_report(context.settings(), window)
    if csv_table is not None:
        context.terminal.csv(*table_rows(document, csv_table))
    elif json_output or context.json:
        context.terminal.json({**document, "reason": reason} if reason else document)
    elif reason is None:
        _render(context.terminal, document, table_rows)
    if reason is not None:
        if csv_table is not None or not (json_output or context.json):
            context.terminal.error(reason)
        raise typer.Exit(1)


def _render(terminal: Terminal, document: dict[str, Any], table_rows: Any) -> None:
    from rich.table import Table

    from cdb_cli.engine.display import money, percent, quote_of, ratio

    summary = document["summary"]
    symbols = list(document["symbols"])
    quote = quote_of(symbols) if symbols else "USDT"
    other = ", ".join(
        f"{money(total, asset)} {asset}" for asset, total in summary["fees_other_assets"].items()
    )
    carried = summary["opened_before_window"]
    out = terminal.out
    out.print(
        f"Trades {summary['trades']} ({summary['won']} won, {summary['lost']} lost, win rate "
        f"{ratio(summary['win_rate'])}), PnL {money(summary['pnl'], quote)}, fees "
        f"{money(summary['fees_all_fills'], quote)}{' in the window' if carried else ''}"
        f"{f' (+ {other} apart)' if other else ''}; "
        f"{_count(summary['fills'], 'fill')}, {summary['open_positions']} positions open",
        markup=False,
    )
    if carried:
        read = _count(summary["entry_fills_before_window"], "fill")
        out.print(
            f"{_count(carried, 'trade')} opened before the window: PnL and fees from the true "
            f"entry ({read} before the window read), booked on the day it closed",
            markup=False,
        )
    for name in ("daily", "symbols", "rejections"):
        header, rows = table_rows(document, name)
        if not rows:
            continue
        table = Table(title=name)
        for column in header:
            table.add_column(column, justify="left" if column in _WORDS else "right")
        for row in rows:
            cells = dict(zip(header, row, strict=True))
            row_quote = quote_of(cells["symbol"]) if name == "symbols" else quote
            table.add_row(*(_cell(column, cells[column], row_quote) for column in header))
        out.print(table)
    opened_before = [trade for trade in document["trades"] if trade["opened_before_window"]]
    if opened_before:
        table = Table(title="trades opened before the window")
        for column in ("symbol", "opened", "closed", "pnl", "fees"):
            table.add_column(column, justify="right" if column in ("pnl", "fees") else "left")
        for trade in opened_before:
            row_quote = quote_of(trade["symbol"])
            table.add_row(
                trade["symbol"],
                trade["opened"],
                trade["closed"],
                money(trade["pnl"], row_quote),
                money(trade["fees"], row_quote),
            )
        out.print(table)
    exposure = document["exposure"]
    if exposure:
        last = exposure[-1]
        out.print(
            f"Exposure: {len(exposure)} snapshots; last {percent(last['exposure_pct'])} % of "
            f"equity {money(last['equity'], quote)} at {last['at']} (--csv exposure for all)",
            markup=False,
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cell(column: str, value: Any, quote: str) -> str:
    """A table cell for people (CSV and JSON keep every digit)."""
    from cdb_cli.engine.display import money, ratio, text

    if column == "win_rate":
        return ratio(value)
    if column in ("pnl", "fees"):
        return money(value, quote)
    return text(value)
