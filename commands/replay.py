"""``cdb replay``: recorded market data through the trading pipeline, with a report."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.commands.replay_sweep import Search, reproduce_prefix, sweep_command
from cdb_cli.context import app_context
from cdb_cli.options import (
    FromAliasOpt,
    JsonOpt,
    SetOpt,
    SinceOpt,
    StrategyOpt,
    ToAliasOpt,
    UntilOpt,
    parse_when,
    pick,
    symbol_option,
)

if TYPE_CHECKING:
    from cdb_cli.output import Terminal


def replay(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Argument(
            help="Market-data file (formats above).", exists=True, dir_okay=False, metavar="DATA"
        ),
    ],
    *,
    symbol: Annotated[
        str | None, symbol_option("Symbol of the data (default: from the file name).")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    since_alias: FromAliasOpt = None,
    until_alias: ToAliasOpt = None,
    cash: Annotated[
        str | None,
        typer.Option(
            "--cash",
            metavar="AMOUNT",
            help="Starting cash in the quote currency (CDB_STARTING_CASH).",
        ),
    ] = None,
    strategy: StrategyOpt = None,
    overrides: SetOpt = None,
    interval: Annotated[
        int,
        typer.Option(
            "--interval-s", min=1, metavar="SECONDS", help="Bar length built from trades, seconds."
        ),
    ] = 60,
    skip_bad_rows: Annotated[
        bool,
        typer.Option(
            "--skip-bad-rows",
            help="Skip invalid rows; the report counts them and gives the first one's reason.",
        ),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE.png",
            help="Write the equity curve and drawdown to this PNG.",
            dir_okay=False,
        ),
    ] = None,
    persist: Annotated[
        bool,
        typer.Option("--persist", help="Write everything to CDB_DATABASE_URL (for risk explain)."),
    ] = False,
    json_output: JsonOpt = False,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            metavar="NAME=A..B:STEP|NAME=V1,V2",
            help="Search this setting (any --set name, strategy or risk) over a range or a list; "
            "repeatable: every combination runs (see Parameter sweeps in the README).",
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials", min=1, metavar="N", help="Run N combinations, not all (random search)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of random/optuna search.")
    ] = 0,
    sampler: Annotated[
        str | None,
        typer.Option(
            "--sampler",
            metavar="grid|random|optuna",
            help="How to search: grid (default), random (default with --trials), optuna (TPE; "
            "pip install 'cdb-cli[sweep]').",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, metavar="N", help="Worker processes (default: all cores)."
        ),
    ] = None,
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            metavar="METRIC",
            help="Rank by pnl (default), pnl_pct, sharpe, sortino, win_rate, trades, "
            "max_drawdown, exposure or fees.",
        ),
    ] = "pnl",
    constraints: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint",
            metavar="METRIC<=X",
            help="Rank configurations that break it last, e.g. 'max_drawdown<=10' (percent); "
            "repeatable.",
        ),
    ] = None,
    walk_forward: Annotated[
        str | None,
        typer.Option(
            "--walk-forward",
            metavar="train=30d,test=7d",
            help="Optimise on each training window, trade the next test window (durations or "
            "bar counts); in-sample and out-of-sample side by side.",
        ),
    ] = None,
    csv_path: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE.csv", dir_okay=False, help="Write the sweep's rows."),
    ] = None,
    heatmap: Annotated[
        Path | None,
        typer.Option(
            "--heatmap",
            metavar="FILE.png",
            dir_okay=False,
            help="The objective over a two-setting grid as a PNG (the plot extra).",
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option("--top", min=1, metavar="N", help="Sweep rows in the table (default 20)."),
    ] = 20,
) -> None:
    """Replay recorded market data through signals, risk, paper fills and the portfolio.

    The same file and settings give the same report, byte for byte. Exit 2 for an unknown file
    format or a bad option, 1 for a bad row (unless --skip-bad-rows) or a damaged file (corrupt
    .gz, not UTF-8, invalid JSON); the one-line error names the file and the row. Times must lie
    in 2000-01-01..2100-01-01 (ms since the epoch).

    With --sweep the data load once and every combination of the swept settings replays the
    same way in parallel (--jobs), ranked by --objective with --constraint, each row with the
    `cdb replay` command that reproduces it; --walk-forward tests the choice out of sample. A
    swept value that is not valid settings is exit 2 before anything runs.

    DATA: JSON [ts_ms, open, high, low, close, volume] rows, MEXC /api/v3/klines JSON, JSON
    trades [ts_ms, id, order, side, price, amount, cost] (tick replay), or CSV with a header
    (timestamp, open, high, low, close, volume; or timestamp, price, amount); .gz is read too.
    """
    context = app_context(ctx)
    from cdb_cli.kernel import strategy_factory
    from cdb_cli.services.replay import (
        ReplayRequest,
        UnknownReplayFormat,
        persist_replay,
        plot_replay,
        replay_symbol,
        run_replay,
    )
    from cdb_cli.services.strategy import command_settings

    try:
        settings = command_settings(context.env_file, overrides or [], strategy)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--set") from None
    strategy_factory(settings)  # a broken strategy: one line, exit 3, before the data loads
    chosen = replay_symbol(data, symbol)
    if not chosen:
        raise typer.BadParameter(f"cannot tell the symbol from {data.name}", param_hint="--symbol")
    try:
        starting_cash = Decimal(cash) if cash is not None else None
    except InvalidOperation:
        raise typer.BadParameter(f"{cash!r} is not a number", param_hint="--cash") from None
    if starting_cash is not None and (not starting_cash.is_finite() or starting_cash <= 0):
        raise typer.BadParameter("must be above 0", param_hint="--cash")
    request = ReplayRequest(
        data=data,
        symbol=chosen,
        since_ms=_ms(parse_when(pick(since, since_alias, "--since", "--from"), "--since")),
        until_ms=_ms(parse_when(pick(until, until_alias, "--until", "--to"), "--until")),
        starting_cash=starting_cash,
        interval_ns=interval * 1_000_000_000,
        skip_bad_rows=skip_bad_rows,
        record_curve=plot is not None,
        trace=persist,
    )
    search = Search(
        sweep or [],
        trials,
        seed,
        sampler,
        jobs,
        objective,
        constraints or [],
        walk_forward,
        csv_path,
        heatmap,
        top,
    )
    search.check(one_run_only=plot is not None or persist)
    if sweep:
        prefix = reproduce_prefix(
            context.env_file,
            data,
            symbol=symbol,
            cash=cash,
            strategy=strategy,
            interval=interval,
            skip_bad_rows=skip_bad_rows,
            overrides=overrides or [],
        )
        sweep_command(context, request, search, overrides or [], strategy, prefix, json_output)
        return
    try:
        result = _run_with_progress(context.terminal, request, settings, run_replay)
    except UnknownReplayFormat as e:
        raise typer.BadParameter(e.message, param_hint="DATA") from None
    if plot is not None:
        plot_replay(request, result, plot)
        context.terminal.err.print(f"Wrote {plot}", markup=False)
    if persist:
        written = persist_replay(settings, result)
        context.terminal.err.print(f"Persisted run {result.run_id}: {written} events", markup=False)
    if json_output or context.json:
        context.terminal.json(result.report)
    else:
        _render(context.terminal, result.report)


def _ms(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000_000


def _run_with_progress(terminal: Terminal, request: Any, settings: Any, run: Any) -> Any:
    if not sys.stderr.isatty():
        return run(settings, request)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=terminal.err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"replay {request.data.name}", total=None)
        return run(
            settings,
            request,
            progress=lambda n: progress.advance(task, n),
            on_loaded=lambda total: progress.update(task, total=total),
        )


def _bars_row(report: dict[str, Any]) -> str:
    text = f"{report['bars']} ({report['skipped_rows']} bad rows skipped"
    first = report.get("first_skipped_row")
    return f"{text}; first: {first})" if first else f"{text})"


def _render(terminal: Terminal, report: dict[str, Any]) -> None:
    """The report for people: money in the quote currency's places, a quantity to the step,
    percentages to 2 places (``--json`` keeps every digit)."""
    from rich.table import Table

    from cdb_cli.engine.display import instrument_of, money, percent, quantity, quote_of, ratio

    provenance = report["provenance"]
    quote = quote_of(provenance["symbol"])
    table = Table(
        title=f"replay {provenance['symbol']} ({provenance['run_id']})", show_header=False
    )
    table.add_column("", style="bold")
    table.add_column("")
    decisions = report["decisions"]
    trades = report["trades"]
    rows = [
        ("period", f"{report['period']['start']} .. {report['period']['end']}"),
        ("bars", _bars_row(report)),
        ("signals", f"buy {report['signals']['buy']}, exit {report['signals']['exit']}"),
        (
            "decisions",
            f"approved {decisions['approved']}, reduced {decisions['reduced']}, "
            f"rejected {decisions['rejected']}; exit signals with nothing held "
            f"{decisions['nothing_held']} (no order, not a rejection)",
        ),
        ("rejected by rule", ", ".join(f"{k} {v}" for k, v in decisions["by_rule"].items()) or "-"),
        ("orders / fills", f"{report['orders']} / {report['fills']}"),
        (
            "trades",
            f"{trades['closed']} closed ({trades['won']} won, {trades['lost']} lost), "
            f"{trades['open']} open; win rate {ratio(trades['win_rate'])}",
        ),
        ("starting cash", money(report["starting_cash"], quote)),
        ("final equity", money(report["final_equity"], quote)),
        ("PnL", f"{money(report['pnl'], quote)} ({percent(report['pnl_pct'])} %)"),
        ("fees", money(report["fees"], quote)),
        ("max drawdown", f"{percent(report['max_drawdown_pct'])} %"),
        (
            "exposure",
            f"mean {percent(report['exposure']['mean_pct'])} %, "
            f"max {percent(report['exposure']['max_pct'])} %",
        ),
        (
            "positions",
            ", ".join(
                f"{quantity(held, instrument_of(name))} {name}"
                for name, held in report["positions"].items()
            )
            or "none",
        ),
        ("data", f"{provenance['data_file']} sha256 {provenance['data_sha256'][:16]}"),
        ("settings", f"sha256 {provenance['settings_sha256']}, cdb {provenance['cdb_version']}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    terminal.out.print(table)
