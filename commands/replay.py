"""``cdb replay``: recorded market data through the trading pipeline, with a report."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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
    search = _Search(
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
        prefix = _reproduce_prefix(
            context.env_file,
            data,
            symbol=symbol,
            cash=cash,
            strategy=strategy,
            interval=interval,
            skip_bad_rows=skip_bad_rows,
            overrides=overrides or [],
        )
        _sweep(context, request, search, overrides or [], strategy, prefix, json_output)
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


@dataclass(frozen=True)
class _Search:
    """The sweep's options as given on the command line."""

    sweep: list[str]
    trials: int | None
    seed: int
    sampler: str | None
    jobs: int | None
    objective: str
    constraints: list[str]
    walk_forward: str | None
    csv: Path | None
    heatmap: Path | None
    top: int

    def check(self, *, one_run_only: bool) -> None:
        """Usage errors: --plot or --persist with --sweep, a sweep option without it."""
        if self.sweep and one_run_only:
            raise typer.BadParameter(
                "--plot and --persist replay one configuration; run the row's command for them",
                param_hint="--sweep",
            )
        if self.sweep:
            return
        given = {
            "--trials": self.trials is not None,
            "--seed": self.seed != 0,
            "--sampler": self.sampler is not None,
            "--jobs": self.jobs is not None,
            "--objective": self.objective != "pnl",
            "--constraint": bool(self.constraints),
            "--walk-forward": self.walk_forward is not None,
            "--csv": self.csv is not None,
            "--heatmap": self.heatmap is not None,
            "--top": self.top != 20,
        }
        for name, present in given.items():
            if present:
                raise typer.BadParameter("needs --sweep NAME=VALUES", param_hint=name)


def _reproduce_prefix(
    env_file: Path | None,
    data: Path,
    *,
    symbol: str | None,
    cash: str | None,
    strategy: str | None,
    interval: int,
    skip_bad_rows: bool,
    overrides: list[str],
) -> tuple[str, ...]:
    """``cdb [--env-file F] replay DATA`` and the options the sweep shares with every row."""
    args = ["cdb"]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    args += ["replay", str(data)]
    if symbol:
        args += ["--symbol", symbol]
    if cash is not None:
        args += ["--cash", cash]
    if strategy:
        args += ["--strategy", strategy]
    if interval != 60:
        args += ["--interval-s", str(interval)]
    if skip_bad_rows:
        args.append("--skip-bad-rows")
    for item in overrides:
        args += ["--set", item]
    return tuple(args)


def _axes(search: _Search, overrides: list[str]) -> tuple[Any, ...]:
    from cdb_cli.engine.sweep import parse_axis, size

    try:
        axes = tuple(parse_axis(item) for item in search.sweep)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--sweep") from None
    names = [axis.name for axis in axes]
    fixed = {item.partition("=")[0].strip().lower().removeprefix("strategy_") for item in overrides}
    for name in names:
        if names.count(name) > 1 or name.removeprefix("strategy_") in fixed:
            raise typer.BadParameter(
                f"{name} is given twice (--sweep or --set)", param_hint="--sweep"
            )
    if search.trials is None and size(axes) > 1_000_000:
        raise typer.BadParameter(
            f"{size(axes):,} combinations; narrow the grid or use --trials N", param_hint="--sweep"
        )
    if search.heatmap is not None and (len(axes) != 2 or search.walk_forward):
        raise typer.BadParameter(
            "needs exactly two --sweep settings, no walk-forward", param_hint="--heatmap"
        )
    return axes


def _sampler(search: _Search) -> str:
    import importlib.util

    from cdb_cli.services.sweep import OPTUNA_MISSING, SAMPLERS

    sampler = search.sampler or ("random" if search.trials else "grid")
    if sampler not in SAMPLERS:
        raise typer.BadParameter(
            f"{sampler!r}: one of {', '.join(SAMPLERS)}", param_hint="--sampler"
        )
    if sampler != "grid" and search.trials is None:
        raise typer.BadParameter(f"--sampler {sampler} needs --trials N", param_hint="--trials")
    if sampler == "grid" and search.trials is not None:
        raise typer.BadParameter(
            "the grid runs every combination; drop --trials", param_hint="--trials"
        )
    if sampler == "optuna" and importlib.util.find_spec("optuna") is None:
        raise typer.BadParameter(OPTUNA_MISSING, param_hint="--sampler")
    return sampler


def _search_spec(search: _Search, overrides: list[str], strategy: str | None, env: Any) -> Any:
    """The sweep's spec from its options; a usage error (exit 2) for anything wrong in them."""
    from cdb_cli.engine.sweep import METRICS, parse_constraint
    from cdb_cli.services.sweep import SweepSpec

    axes = _axes(search, overrides)
    sampler = _sampler(search)
    if search.objective not in METRICS:
        raise typer.BadParameter(
            f"{search.objective!r}: one of {', '.join(METRICS)}", param_hint="--objective"
        )
    try:
        limits = tuple(parse_constraint(item) for item in search.constraints)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--constraint") from None
    return SweepSpec(
        axes=axes,
        env_file=env,
        strategy=strategy,
        base_items=tuple(overrides),
        sampler=sampler,
        trials=search.trials,
        seed=search.seed,
        objective=search.objective,
        constraints=limits,
        jobs=search.jobs or 0,
    )


def _walk(search: _Search) -> Any:
    from cdb_cli.engine.sweep import parse_walk_forward

    if search.walk_forward is None:
        return None
    try:
        return parse_walk_forward(search.walk_forward)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--walk-forward") from None


def _sweep(
    context: Any,
    request: Any,
    search: _Search,
    overrides: list[str],
    strategy: str | None,
    prefix: tuple[str, ...],
    json_output: bool,
) -> None:
    """``--sweep``: many configurations of one replay, ranked (and walk-forward)."""
    from dataclasses import replace

    from cdb_cli.services.replay import UnknownReplayFormat, load_replay
    from cdb_cli.services.sweep import (
        Reproduce,
        SweepInvalid,
        require_plot,
        run_sweep,
        run_walk_forward,
    )

    spec = _search_spec(search, overrides, strategy, context.env_file)
    walk = _walk(search)
    if search.heatmap is not None:
        require_plot()  # before the sweep runs, not after
    request = replace(request, trace=False, record_curve=False)
    try:
        loaded = load_replay(request)
    except UnknownReplayFormat as e:
        raise typer.BadParameter(e.message, param_hint="DATA") from None
    reproduce = Reproduce(prefix, request.since_ms, request.until_ms)
    quiet = json_output or context.json

    def run(progress: Any) -> dict[str, Any]:
        if walk is not None:
            return run_walk_forward(spec, walk, request, loaded, reproduce, progress=progress)
        return run_sweep(spec, request, loaded, reproduce, progress=progress)

    try:
        document = _sweep_progress(context.terminal, request.data.name, run, quiet)
    except SweepInvalid as e:
        hint = "--walk-forward" if e.message.startswith("--walk-forward") else "--sweep"
        raise typer.BadParameter(e.message, param_hint=hint) from None
    _emit(context, document, search, quiet)


def _emit(context: Any, document: dict[str, Any], search: _Search, quiet: bool) -> None:
    from cdb_cli.services.sweep import plot_sweep_heatmap, write_csv

    if search.csv is not None:
        write_csv(document, search.csv)
        context.terminal.err.print(f"Wrote {search.csv}", markup=False)
    if search.heatmap is not None:
        plot_sweep_heatmap(document, search.heatmap)
        context.terminal.err.print(f"Wrote {search.heatmap}", markup=False)
    if quiet:
        context.terminal.json(document)
    elif "walk_forward" in document:
        _render_walk_forward(context.terminal, document)
    else:
        _render_sweep(context.terminal, document, search.top)


def _sweep_progress(terminal: Terminal, name: str, run: Any, quiet: bool) -> Any:
    """``run(progress)`` with a progress bar on a terminal's stderr (none with --json). It
    refreshes as runs finish, from this thread: no refresh thread runs while workers fork."""
    if quiet or not sys.stderr.isatty():
        return run(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=terminal.err,
        transient=True,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task(f"sweep {name}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            progress.refresh()

        return run(advance)


def _cell(value: Any, places: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        from decimal import Decimal

        return f"{Decimal(value):,.{places}f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.{places}f}"


_COLUMNS = (
    ("pnl", "PnL", 2),
    ("pnl_pct", "PnL%", 2),
    ("max_drawdown", "DD%", 2),
    ("trades", "trades", 0),
    ("win_rate", "win%", 1),
    ("sharpe", "Sharpe", 2),
    ("sortino", "Sortino", 2),
    ("exposure", "expo%", 1),
    ("fees", "fees", 2),
)


def _print_wide(terminal: Terminal, table: Any) -> None:
    """A table as wide as its cells need (up to 240 columns), even on a narrow console or a
    pipe: a sweep's columns are numbers that must not be cut."""
    from rich.measure import Measurement

    console = terminal.out
    needed = Measurement.get(console, console.options.update_width(240), table).maximum
    width = console.width
    console.width = min(max(width, needed), 240)
    try:
        console.print(table)
    finally:
        console.width = width


def _render_sweep(terminal: Terminal, document: dict[str, Any], top: int) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    rows = document["rows"]
    constraints = ", ".join(document["constraints"]) or "none"
    table = Table(
        title=f"sweep {document['data']['symbol']}: {len(rows)} configurations "
        f"({document['sampler']}), objective {document['objective']}, constraints {constraints}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("#", justify="right", no_wrap=True)
    names = list(document["axes"])
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for _, label, _ in _COLUMNS:
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    for row in rows[:top]:
        metrics = row["metrics"]
        table.add_row(
            str(row["rank"]),
            *(escape(row["params"].get(name, "")) for name in names),
            *(_cell(metrics.get(metric), places) for metric, _, places in _COLUMNS),
            "yes" if row["passes"] else "no",
        )
    _print_wide(terminal, table)
    if len(rows) > top:
        terminal.out.print(f"... {len(rows) - top} more rows (--top N, --json or --csv for all)")
    failing = sum(1 for row in rows if not row["passes"])
    if failing:
        terminal.out.print(
            f"{failing} configuration(s) break a constraint ({constraints}); ranked after the rest "
            "(--json lists which)",
            markup=False,
        )
    best = rows[0] if rows else None
    if best is None:
        return
    if not best["passes"]:
        terminal.out.print("No configuration meets the constraints; the best regardless:")
    terminal.out.print(f"Best: {best['command']}", markup=False, soft_wrap=True)


_SUMMARY = (
    ("windows", "windows", 0),
    ("bars", "bars", 0),
    ("PnL (sum)", "pnl", 2),
    ("compounded %", "compounded_pct", 2),
    ("mean daily return %", "mean_daily_return_pct", 3),
    ("Sharpe", "sharpe", 2),
    ("Sortino", "sortino", 2),
    ("worst max DD %", "max_drawdown", 2),
    ("trades", "trades", 0),
    ("win %", "win_rate", 1),
    ("fees (sum)", "fees", 2),
)


def _span(period: dict[str, Any]) -> str:
    """``2017-11-04 23:02 .. 2017-11-07 23:02 (4320 bars)``."""

    def short(iso: str) -> str:
        return iso[:16].replace("T", " ")

    return f"{short(period['start'])} .. {short(period['end'])} ({period['bars']} bars)"


def _render_walk_forward(terminal: Terminal, document: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    walk = document["walk_forward"]
    table = Table(
        title=f"walk-forward {document['data']['symbol']} ({walk['spec']}): "
        f"{document['configurations']} configurations per window, objective "
        f"{document['objective']}"
    )
    for name in (
        "#",
        "train",
        "test",
        "chosen",
        "in PnL %",
        "in Sharpe",
        "out PnL %",
        "out Sharpe",
    ):
        table.add_column(name, justify="left" if name in ("train", "test", "chosen") else "right")
    for window in walk["windows"]:
        chosen = " ".join(f"{k}={v}" for k, v in window["params"].items())
        if not window["passes"]:
            chosen += " (fails " + ", ".join(window["violations"]) + ")"
        table.add_row(
            str(window["window"]),
            _span(window["train"]),
            _span(window["test"]),
            escape(chosen),
            _cell(window["in_sample"]["pnl_pct"]),
            _cell(window["in_sample"]["sharpe"]),
            _cell(window["out_of_sample"]["pnl_pct"]),
            _cell(window["out_of_sample"]["sharpe"]),
        )
    _print_wide(terminal, table)
    summary = Table(title="in-sample (training windows) vs out-of-sample (test windows)")
    summary.add_column("")
    summary.add_column("in-sample", justify="right")
    summary.add_column("out-of-sample", justify="right")
    for label, key, places in _SUMMARY:
        summary.add_row(
            label,
            _cell(walk["in_sample"][key], places),
            _cell(walk["out_of_sample"][key], places),
        )
    terminal.out.print(summary)
    terminal.out.print(walk["state_between_windows"].capitalize() + ".", markup=False)
    last = walk["windows"][-1]
    terminal.out.print(
        f"Last training window's best: {last['command']}", markup=False, soft_wrap=True
    )


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
