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
    from cdb_cli.output import Terminal

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

    from cdb_cli.adapters.mexc.coverage import expected_candles
    from cdb_cli.adapters.mexc.download import (
        DownloadResult,
        download_klines,
        download_to_store,
    )
    from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
    from cdb_cli.kernel import mexc_http_client, open_store
    from cdb_cli.urls import redact_url

    context = app_context(ctx)
    try:
        found = lookup_interval(interval)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--interval") from None
    start_ms, end_ms = _window(
        pick(since, start, SINCE, "--start"), pick(until, end, UNTIL, "--end")
    )
    settings = context.settings()
    symbols = symbols_of(names, symbol) or list(settings.symbols)
    store = open_store(settings, create_if_new=True) if to_store else None

    async def run() -> list[DownloadResult]:
        results = []
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=context.terminal.err,
            transient=False,
        ) as bar:
            async with mexc_http_client(settings) as client:
                for name in symbols:
                    task = bar.add_task(name, total=None)
                    path = out / f"{name}-{found.name}.json"

                    def report(done: int, total: int, task: TaskID = task) -> None:
                        bar.update(task, completed=done, total=total)

                    if store is not None:
                        result = await download_to_store(
                            client, store, name, found.name, start_ms, end_ms, progress=report
                        )
                    else:
                        result = await download_klines(
                            client, name, found.name, start_ms, end_ms, path, progress=report
                        )
                    results.append(result)
        return results

    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    expected = expected_candles(found.name, start_ms, end_ms, now_ms)
    try:
        results = run_async(run())
    finally:
        if store is not None:
            store.close()
    where = redact_url(settings.database_url) if store is not None else None
    document = [
        {
            "path": where or str(r.path),
            "rows": r.rows,
            "new_rows": r.new_rows,
            "resumed": r.resumed_from_ms is not None,
            "expected_rows": expected,
            "missing_rows": max(0, expected - r.rows),
        }
        for r in results
    ]
    if context.json:
        context.terminal.json(document)
    else:
        _render(context.terminal, document)
    _check_complete(context.terminal, symbols, document, found.name, allow_partial=allow_partial)


def _render(terminal: Terminal, document: list[dict[str, Any]]) -> None:
    for item in document:
        resumed = " (resumed)" if item["resumed"] else ""
        terminal.out.print(
            f"{item['path']}  {item['rows']} rows, {item['new_rows']} new{resumed}",
            markup=False,
        )


def _check_complete(
    terminal: Terminal,
    symbols: list[str],
    document: list[dict[str, Any]],
    interval: str,
    *,
    allow_partial: bool,
) -> None:
    """Exit 4 (CheckFailed) when a symbol came back short, naming how much is missing; with
    --allow-partial a warning instead."""
    from cdb_cli.engine.errors import CheckFailed

    short = [
        f"{name}: {item['missing_rows']} of {item['expected_rows']} closed {interval} candles "
        f"missing (got {item['rows']})"
        for name, item in zip(symbols, document, strict=True)
        if item["missing_rows"]
    ]
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
