"""``cdb replay --sweep`` and ``--walk-forward``: their options checked, the sweep service called,
the ranked table and the walk-forward's side-by-side tables rendered (``commands/replay.py``
declares the options; the work is :mod:`cdb_cli.services.sweep` and
:mod:`cdb_cli.services.walkforward`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cdb_cli.output import Terminal

__all__ = ["Search", "reproduce_prefix", "sweep_command"]


@dataclass(frozen=True)
class Search:
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


def reproduce_prefix(
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


def _setting_name(text: str) -> str:
    """``CDB_EMA_FAST``, ``strategy_bb_period`` → ``ema_fast``, ``bb_period`` (as --set reads)."""
    return text.strip().lower().removeprefix("cdb_").removeprefix("strategy_")


def _axes(search: Search, overrides: list[str]) -> tuple[Any, ...]:
    from cdb_cli.engine.sweep import parse_axis, size

    try:
        axes = tuple(parse_axis(item) for item in search.sweep)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--sweep") from None
    names = [_setting_name(axis.name) for axis in axes]
    fixed = {_setting_name(item.partition("=")[0]) for item in overrides}
    for name in names:
        if names.count(name) > 1 or name in fixed:
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


def _sampler(search: Search) -> str:
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


def _search_spec(search: Search, overrides: list[str], strategy: str | None, env: Any) -> Any:
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


def _walk(search: Search) -> Any:
    from cdb_cli.engine.sweep import parse_walk_forward

    if search.walk_forward is None:
        return None
    try:
        return parse_walk_forward(search.walk_forward)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--walk-forward") from None


def sweep_command(
    context: Any,
    request: Any,
    search: Search,
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
    )
    from cdb_cli.services.walkforward import run_walk_forward

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
        walk_error = e.message.startswith("--walk-forward ")
        message = e.message.removeprefix("--walk-forward ") if walk_error else e.message
        hint = "--walk-forward" if walk_error else "--sweep"
        raise typer.BadParameter(message, param_hint=hint) from None
    _emit(context, document, search, quiet)


def _emit(context: Any, document: dict[str, Any], search: Search, quiet: bool) -> None:
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
