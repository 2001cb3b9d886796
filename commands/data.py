"""``cdb data download``: MEXC klines into replay files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import app_context, run_async
from cdb_cli.options import (
    SINCE,
    UNTIL,
    EndAliasOpt,
    StartAliasOpt,
    SymbolsOpt,
    parse_when,
    pick,
    symbols_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from cdb_cli.output import Terminal
    from cdb_cli.services.download import Downloaded

app = typer.Typer(
    help="Market data: download MEXC klines for replay.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _time_ms(value: str, option: str) -> int:
    """Epoch milliseconds, or what ``--since`` takes elsewhere (7d, 2026-11-01[T12:00], UTC)."""
    if value.isdigit():
        return int(value)
    return (parse_when(value, option) or 0) // 1_000_000  # None only for None


def _window(since: str | None, until: str | None) -> tuple[int, int]:
    """``--since``/``--until`` in ms: default the day before now."""
    from cdb_cli.engine.errors import ConfigurationError

    end_ms = _time_ms(until, UNTIL) if until else int(datetime.now(UTC).timestamp() * 1000)
    start_ms = (
        _time_ms(since, SINCE) if since else end_ms - int(timedelta(days=1).total_seconds() * 1000)
    )
    if start_ms >= end_ms:
        raise ConfigurationError("--since must be before --until")
    return start_ms, end_ms


@app.command("download")
def download(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SYMBOL", help="Symbols, as --symbol (either works).", show_default=False
        ),
    ] = None,
    *,
    symbol: SymbolsOpt = None,
    interval: Annotated[
        str, typer.Option("--interval", "-i", help="1m 5m 15m 30m 1h 4h 1d 1w 1M.")
    ] = "1m",
    since: Annotated[
        str | None,
        typer.Option(
            SINCE,
            metavar="WHEN",
            help="First candle: a duration back from now (7d), a UTC date/time or epoch ms "
            "(default: --until - 1 day).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(UNTIL, metavar="WHEN", help="End, exclusive, same forms (default: now)."),
    ] = None,
    start: StartAliasOpt = None,
    end: EndAliasOpt = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Directory for SYMBOL-INTERVAL.json files.", file_okay=False
        ),
    ] = Path("data"),
    to_store: Annotated[
        bool,
        typer.Option("--to-store", help="Write closed Bar events into CDB_DATABASE_URL instead."),
    ] = False,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Exit 0 even when the source could not serve the whole range (a warning).",
        ),
    ] = False,
) -> None:
    """Download klines of SYMBOLs into replay files, resuming where a previous run stopped.

    Writes OUT/SYMBOL-INTERVAL.json: [open_ms, open, high, low, close, volume] rows, the format
    cdb replay and cdb sim-exchange --replay read; with --to-store, Bar events into the store.
    Reads CDB_MEXC_REST_URL (no key needed). Symbols: SYMBOL arguments or --symbol (default:
    CDB_SYMBOLS). Exit 4 when the source could not serve every closed candle of the range (what
    it served is kept; it says how many are missing), unless --allow-partial.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from cdb_cli.services.download import DownloadRequest, KlineDownload, kline_interval

    context = app_context(ctx)
    try:
        interval = kline_interval(interval)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--interval") from None
    start_ms, end_ms = _window(
        pick(since, start, SINCE, "--start"), pick(until, end, UNTIL, "--end")
    )
    settings = context.settings()
    symbols = symbols_of(names, symbol) or list(settings.symbols)
    request = DownloadRequest(symbols, interval, start_ms, end_ms, out, to_store=to_store)

    async def run(job: KlineDownload) -> list[Downloaded]:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=context.terminal.err,
            transient=False,
        ) as bar:

            def started(name: str) -> Callable[[int, int], None]:
                task = bar.add_task(name, total=None)

                def report(done: int, total: int, task: TaskID = task) -> None:
                    bar.update(task, completed=done, total=total)

                return report

            return await job.run(started)

    with KlineDownload(settings, request) as job:
        results = run_async(run(job))
    document = [result.as_json() for result in results]
    if context.json:
        context.terminal.json(document)
    else:
        _render(context.terminal, document)
    _check_complete(context.terminal, results, interval, allow_partial=allow_partial)


def _render(terminal: Terminal, document: list[dict[str, Any]]) -> None:
    for item in document:
        resumed = " (resumed)" if item["resumed"] else ""
        terminal.out.print(
            f"{item['path']}  {item['rows']} rows, {item['new_rows']} new{resumed}",
            markup=False,
        )


def _check_complete(
    terminal: Terminal, results: list[Downloaded], interval: str, *, allow_partial: bool
) -> None:
    """Exit 4 (CheckFailed) when a symbol came back short, naming how much is missing; with
    --allow-partial a warning instead."""
    from cdb_cli.engine.errors import CheckFailed
    from cdb_cli.services.download import shortfalls

    short = shortfalls(results, interval)
    if not short:
        return
    if allow_partial:
        for line in short:
            terminal.warn(f"{line}: the source could not serve the whole range")
        return
    raise CheckFailed(
        "the source could not serve the whole range (what it served is kept; "
        "--allow-partial accepts it)",
        details=short,
    )
