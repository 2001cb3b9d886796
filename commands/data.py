"""``cdb data download``: MEXC klines into replay files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cdb_cli.context import app_context, run_async

app = typer.Typer(
    help="Market data: download MEXC klines for replay.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _time_ms(value: str, option: str) -> int:
    """``2026-11-01``, ``2026-11-01T12:00`` (UTC) or epoch milliseconds."""
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date, ISO time or epoch ms", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.command("download")
def download(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="MEXC symbols, e.g. BTCUSDT ETHUSDT.")],
    *,
    interval: Annotated[
        str, typer.Option("--interval", "-i", help="1m 5m 15m 30m 1h 4h 1d 1w 1M.")
    ] = "1m",
    start: Annotated[
        str | None,
        typer.Option(help="First candle (UTC date/ISO time/epoch ms; default: end - 1 day)."),
    ] = None,
    end: Annotated[str | None, typer.Option(help="End, exclusive (default: now).")] = None,
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
) -> None:
    """Download klines of SYMBOLs into replay files, resuming where a previous run stopped.

    Writes OUT/SYMBOL-INTERVAL.json: [open_ms, open, high, low, close, volume] rows, the format
    cdb replay and cdb sim-exchange --replay read; with --to-store, Bar events into the store.
    Reads CDB_MEXC_REST_URL (no key needed).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from cdb_cli.adapters.mexc.download import (
        DownloadResult,
        download_klines,
        download_to_store,
    )
    from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.kernel import mexc_http_client, open_store
    from cdb_cli.urls import redact_url

    context = app_context(ctx)
    try:
        found = lookup_interval(interval)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--interval") from None
    end_ms = _time_ms(end, "--end") if end else int(datetime.now(UTC).timestamp() * 1000)
    start_ms = (
        _time_ms(start, "--start")
        if start
        else end_ms - int(timedelta(days=1).total_seconds() * 1000)
    )
    if start_ms >= end_ms:
        raise ConfigurationError("--start must be before --end")
    settings = context.settings()
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
                for symbol in symbols:
                    task = bar.add_task(symbol.upper(), total=None)
                    path = out / f"{symbol.upper()}-{found.name}.json"

                    def report(done: int, total: int, task: TaskID = task) -> None:
                        bar.update(task, completed=done, total=total)

                    name = symbol.upper()
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
        }
        for r in results
    ]
    if context.json:
        context.terminal.json(document)
        return
    for item in document:
        resumed = " (resumed)" if item["resumed"] else ""
        context.terminal.out.print(
            f"{item['path']}  {item['rows']} rows, {item['new_rows']} new{resumed}", markup=False
        )
