"""``cdb parity``: re-run a stored paper or live run on its own market events and account for
every difference (the work is :mod:`cdb_cli.services.parity`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import app_context
from cdb_cli.options import (
    JsonOpt,
    SinceOpt,
    SymbolOpt,
    UntilOpt,
    check_csv_table,
    csv_table_option,
    parse_when,
)

if TYPE_CHECKING:
    from cdb_cli.output import Terminal

TABLE_CHOICES = ("decisions", "fills", "differences", "windows", "curve")
_SHOWN = 20
"""Differences listed on the screen (unexplained first); --csv differences has them all."""


def parity(
    ctx: typer.Context,
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[RUN]...",
            help="Run ids (each start of cdb run is one; cdb events and the run's log name "
            "them). Default: every paper or live run in the database, restarts included.",
            show_default=False,
        ),
    ] = None,
    *,
    symbol: SymbolOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    csv_table: Annotated[str | None, csv_table_option(TABLE_CHOICES)] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="F.png",
            help="Both PnL curves and the attributed difference over time, as a PNG (needs "
            "pip install 'cdb-cli[plot]').",
            dir_okay=False,
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Re-run a paper or live run on its own stored market events and explain every
    difference: decisions equal, only in the run, only in the re-run or different; fills with
    their price and fee differences; PnL of both sides, its difference attributed to latency,
    slippage, partial fills, fees, restarts, feed gaps, operator halts and resets, and orders
    the venue rejected or failed. What the data cannot explain is listed as unexplained.

    Each segment (one start of cdb run) is re-run from the account it started with, at the
    settings, instruments and warm-up its start recorded; a live run's re-run uses the paper
    model calibrated from its own orders and fills.

    Exit 0 when every difference is explained, 4 when one is not, 1 when the database holds no
    such run, 3 when the run's settings cannot be had."""
    context = app_context(ctx)
    check_csv_table(csv_table, TABLE_CHOICES, json_output=json_output or context.json)
    since_ns, until_ns = parse_when(since, "--since"), parse_when(until, "--until")
    from cdb_cli.services.parity import parity_document, table_rows

    document = parity_document(
        context.settings(),
        run_ids=runs or (),
        symbols=[symbol] if symbol else (),
        since_ns=since_ns,
        until_ns=until_ns,
        plot=plot,
    )
    if csv_table is not None:
        context.terminal.csv(*table_rows(document, csv_table))
    elif json_output or context.json:
        context.terminal.json(document)
    else:
        _render(context.terminal, document, plot)
    unexplained = [d for d in document["differences"] if d["cause"] in _UNEXPLAINED]
    if unexplained:
        raise typer.Exit(4)


_UNEXPLAINED = frozenset({"unexplained", "market_data"})


def _render(terminal: Terminal, document: dict[str, Any], plot: Path | None) -> None:
    from rich.table import Table

    from cdb_cli.engine.display import money, quote_of

    out = terminal.out
    quote = quote_of(document["symbols"])
    runs = ", ".join(run["run_id"] for run in document["runs"])
    versions = document["versions"]
    crossing = (
        f"; the comparison crosses versions ({', '.join(versions['runs'])} → {versions['this']})"
        if versions["crosses_versions"]
        else ""
    )
    out.print(
        f"Parity of {document['mode']} run {runs} ({', '.join(document['symbols'])}), "
        f"{document['since']} to {document['until']}; settings: {document['settings']}"
        f"{crossing}",
        markup=False,
    )
    if document["calibration"]:
        calibration = ", ".join(f"{k} {v}" for k, v in document["calibration"].items())
        out.print(f"Paper model calibrated from the run: {calibration}", markup=False)
    d = document["decisions"]
    out.print(
        f"Decisions: {d['run']} in the run, {d['replay']} in the re-run: {d['equal']} equal, "
        f"{d['only_run']} only in the run, {d['only_replay']} only in the re-run, "
        f"{d['different']} different; parity {_pct(d['parity_pct'])} % "
        f"({_pct(d['parity_pct_outside_windows'])} % outside the named windows)",
        markup=False,
    )
    f = document["fills"]
    out.print(
        f"Fills: {f['compared']} orders compared ({f['both_sides']} filled on both sides); "
        f"largest unexplained difference {_pct(f['max_unexplained_bp'])} bp of a fill",
        markup=False,
    )
    pnl = document["pnl"]
    out.print(
        f"PnL: run {money(pnl['run'], quote)}, re-run {money(pnl['replay'], quote)}, "
        f"difference {money(pnl['difference'], quote)} {quote}; "
        f"{_pct(pnl['explained_pct'])} % of it explained",
        markup=False,
    )
    if pnl["by_cause"]:
        table = Table(title="difference by cause (run - re-run)")
        table.add_column("cause")
        table.add_column(quote, justify="right")
        for cause, amount in pnl["by_cause"].items():
            table.add_row(cause, money(amount, quote))
        out.print(table)
    _windows(out, document["windows"])
    _differences(out, document["differences"], quote)
    if plot is not None:
        out.print(f"Plot written to {plot}", markup=False)


def _windows(out: Any, windows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not windows:
        return
    table = Table(title="named windows")
    for column in ("cause", "start", "end", "symbol", "detail"):
        table.add_column(column)
    for window in windows:
        table.add_row(*(str(window[c]) for c in ("cause", "start", "end", "symbol", "detail")))
    out.print(table)


def _differences(out: Any, differences: list[dict[str, Any]], quote: str) -> None:
    from rich.table import Table

    from cdb_cli.engine.display import money

    if not differences:
        out.print("No differences.", markup=False)
        return
    ordered = sorted(differences, key=lambda d: d["cause"] not in _UNEXPLAINED)
    table = Table(title=f"differences ({len(differences)}; unexplained first)")
    for column in ("at", "kind", "symbol", "cause", quote, "detail"):
        table.add_column(column, justify="right" if column == quote else "left")
    for item in ordered[:_SHOWN]:
        table.add_row(
            item["at"], item["kind"], item["symbol"], item["cause"],
            money(item["amount"], quote), item["detail"],
        )  # fmt: skip
    out.print(table)
    if len(ordered) > _SHOWN:
        out.print(f"{len(ordered) - _SHOWN} more: --csv differences", markup=False)


def _pct(value: str) -> str:
    from decimal import Decimal

    return f"{Decimal(value):.2f}"
