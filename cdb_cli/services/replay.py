"""``cdb replay`` as a service: load a data file, run the pipeline in REPLAY, build the report.

The command renders what :func:`run_replay` returns; ``--json`` and the table show the same
report. Nothing here is per bar: the loop is :func:`cdb_cli.engine.replay.replay_bars` (or
``replay_trades``) on the pipeline the kernel builds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdb_cli import __version__
from cdb_cli.engine.errors import CdbError

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.replay import BarSeries, TradeSeries
    from cdb_cli.settings import Settings

__all__ = [
    "LoadedReplay",
    "ReplayRequest",
    "ReplayResult",
    "UnknownReplayFormat",
    "load_replay",
    "load_replay_data",
    "plot_replay",
    "replay_symbol",
    "run_loaded",
    "run_replay",
]


class UnknownReplayFormat(CdbError):
    """The data file is none of the formats replay reads; the message lists them (a usage
    error: the command names its DATA argument)."""


def replay_symbol(data: Path, symbol: str | None = None) -> str | None:
    """The symbol to replay ``data`` as: ``symbol`` if given, else told by the file's name
    (``BTCUSDT-1m.json.gz`` → ``BTCUSDT``), upper case; None when the name does not tell."""
    from cdb_cli.adapters.marketdata_files import guess_symbol

    chosen = symbol or guess_symbol(data)
    return chosen.upper() if chosen else None


@dataclass(frozen=True)
class ReplayRequest:
    """What the operator asked for (paths and CLI options, already parsed)."""

    data: Path
    symbol: str
    since_ms: int | None = None
    until_ms: int | None = None
    starting_cash: Decimal | None = None
    interval_ns: int = 60 * 1_000_000_000
    """Bar interval built from trades (tick replay); bar files carry their own."""
    skip_bad_rows: bool = False
    record_curve: bool = False
    trace: bool = True
    """Keep every closed bar's strategy trace, for ``cdb explain`` once persisted (``cdb replay``
    keeps them only with ``--persist``: a long replay's traces take memory)."""


@dataclass
class ReplayResult:
    """The report plus what ``--plot`` and ``--persist`` need."""

    report: dict[str, Any]
    run_id: str
    pipeline: TradingPipeline
    recorder: MemoryRecorder
    series: BarSeries | TradeSeries


def load_replay_data(request: ReplayRequest) -> BarSeries | TradeSeries:
    """Load and validate the data file (``UnknownReplayFormat``, ``BadDataFile`` on bad input)."""
    from cdb_cli.adapters.marketdata_files import UnknownDataFormat, load_market_data

    try:
        return load_market_data(
            request.data,
            symbol=request.symbol,
            skip_bad_rows=request.skip_bad_rows,
            since_ms=request.since_ms,
            until_ms=request.until_ms,
        )
    except UnknownDataFormat as e:
        raise UnknownReplayFormat(e.message, details=e.details) from None


def _run_id(data_sha256: str, settings_sha: str, request: ReplayRequest) -> str:
    """Deterministic: the same data, settings and options give the same run id."""
    key = "|".join(
        str(part)
        for part in (
            data_sha256,
            settings_sha,
            request.symbol,
            request.since_ms,
            request.until_ms,
            request.starting_cash,
            request.interval_ns,
        )
    )
    return "r" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class LoadedReplay:
    """A data file loaded and parsed once, with its SHA-256: what :func:`run_loaded` replays
    (a sweep loads once and runs every configuration on the same series object)."""

    series: BarSeries | TradeSeries
    data_sha256: str


def load_replay(request: ReplayRequest) -> LoadedReplay:
    """Load, validate and hash ``request.data`` (see :func:`load_replay_data`)."""
    from cdb_cli.adapters.marketdata_files import file_sha256

    series = load_replay_data(request)
    return LoadedReplay(series, file_sha256(request.data))


def run_replay(
    settings: Settings,
    request: ReplayRequest,
    *,
    progress: Callable[[int], None] | None = None,
    on_loaded: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay ``request.data`` through the REPLAY pipeline and build the report."""
    loaded = load_replay(request)
    if on_loaded is not None:
        on_loaded(len(loaded.series))
    return run_loaded(settings, request, loaded, progress=progress)


def run_loaded(
    settings: Settings,
    request: ReplayRequest,
    loaded: LoadedReplay,
    *,
    progress: Callable[[int], None] | None = None,
    warm_up: BarSeries | None = None,
) -> ReplayResult:
    """Replay an already loaded series (:func:`load_replay`) exactly as :func:`run_replay` does.

    ``warm_up``: bars of the same symbol before the series, fed to the strategy first without
    acting on them (``pipeline.warm_up``: no signal, no order) — a walk-forward test window's
    indicators warmed on the bars before it. ``cdb replay`` itself never warms.
    """
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.engine.replay import BarSeries, replay_bars, replay_trades
    from cdb_cli.engine.report import build_report
    from cdb_cli.kernel import build_pipeline, clock_for
    from cdb_cli.settings_io import settings_hash

    series = loaded.series
    data_sha = loaded.data_sha256
    settings_sha = settings_hash(settings)
    run_id = _run_id(data_sha, settings_sha, request)
    clock = clock_for(Mode.REPLAY)
    recorder = MemoryRecorder()
    interval = series.interval_ns if isinstance(series, BarSeries) else request.interval_ns
    pipeline = build_pipeline(
        settings,
        Mode.REPLAY,
        symbols=[request.symbol],
        clock=clock,
        recorder=recorder,
        run_id=run_id,
        starting_cash=request.starting_cash,
        record_curve=request.record_curve,
        trace_interval_ns=interval if request.trace else None,
    )
    if warm_up is not None and len(warm_up):
        step = warm_up.interval_ns
        pipeline.warm_up(
            request.symbol,
            zip([ts + step for ts in warm_up.ts], warm_up.close, warm_up.volume, strict=True),
        )
    if isinstance(series, BarSeries):
        replay_bars(pipeline, series, clock, progress)
        last = series.ts[-1] + series.interval_ns if len(series) else None
    else:
        replay_trades(pipeline, series, clock, request.interval_ns, progress)
        last = series.ts[-1] if len(series) else None
    provenance = {
        "cdb_version": __version__,
        "data_file": request.data.name,
        "data_sha256": data_sha,
        "settings_sha256": settings_sha,
        "run_id": run_id,
        "symbol": request.symbol,
        "seed": settings.paper_seed,
    }
    report = build_report(
        stats=pipeline.snapshot_stats(),
        portfolio=pipeline.portfolio,
        fills=recorder.fills,
        first_ts=series.ts[0] if len(series) else None,
        last_ts=last,
        provenance=provenance,
    )
    report["skipped_rows"] = series.skipped_rows
    if series.first_skipped is not None:  # only then: a clean run's report stays as it was
        report["first_skipped_row"] = series.first_skipped
    return ReplayResult(report, run_id, pipeline, recorder, series)


def persist_replay(settings: Settings, result: ReplayResult) -> int:
    """Write the run to ``CDB_DATABASE_URL`` (created at the current schema when new).

    Refuses a database that holds paper or live trading: a replay must never mix into the ledger
    of a real account. Returns how many events were written.
    """
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.engine.events import TradeTick
    from cdb_cli.engine.records import AuditRecord
    from cdb_cli.engine.replay import BarSeries
    from cdb_cli.engine.runs import REPLAY_ACTION, persist_run
    from cdb_cli.kernel import open_store

    store = open_store(settings, create_if_new=True)
    try:
        if any(order.mode != "replay" for order in store.orders()):
            raise ConfigurationError(
                "This database holds paper or live orders; persist replays into another one "
                "(--set database_url=sqlite:///replays.db)"
            )
        series = result.series
        market = _bars(series) if isinstance(series, BarSeries) else _trades(series, TradeTick)
        events = [*market, *(event for _, event in result.recorder.events)]
        ts_end = int(result.pipeline.clock.timestamp_ns())
        persist_run(
            store,
            audit=AuditRecord(
                ts_event=ts_end,
                action=REPLAY_ACTION,
                actor="cdb replay",
                run_id=result.run_id,
                detail={
                    "order_prefix": result.pipeline.execution.id_prefix,
                    **{k: str(v) for k, v in result.report["provenance"].items()},
                },
            ),
            portfolio=result.pipeline.portfolio,
            marks=result.pipeline.marks(),
            events=events,
            orders=list(result.recorder.orders.values()),
            fills=result.recorder.fills,
            ts_end=ts_end,
            state_changes=result.pipeline.stats.state_changes,
            snapshots=result.pipeline.snapshots,
        )
        return len(events)
    finally:
        store.close()


def _bars(series: BarSeries) -> list[Any]:
    from cdb_cli.engine.bars import ClosedBar

    step = series.interval_ns
    return [
        ClosedBar(series.symbol, ts, ts + step, o, h, low, c, v).to_event("replay")
        for ts, o, h, low, c, v in zip(
            series.ts,
            series.open,
            series.high,
            series.low,
            series.close,
            series.volume,
            strict=True,
        )
    ]


def _trades(series: TradeSeries, tick: type[Any]) -> list[Any]:
    from cdb_cli.engine.events import Side

    return [
        tick(
            event_id=f"trade-{series.symbol}-{ts}-{i}",
            symbol=series.symbol,
            ts_event=ts,
            source="replay",
            price=Decimal(repr(p)),
            quantity=Decimal(repr(q)),
            aggressor=Side.BUY if buyer else Side.SELL,
        )
        for i, (ts, p, q, buyer) in enumerate(
            zip(series.ts, series.price, series.quantity, series.buyer, strict=True)
        )
    ]


def plot_replay(request: ReplayRequest, result: ReplayResult, path: Path) -> None:
    """Draw the run's equity curve and drawdown into the PNG at ``path`` (``--plot``; the run
    must have kept its curve, ``request.record_curve``). Needs the ``plot`` extra (matplotlib)."""
    from cdb_cli.adapters.plot import plot_equity

    plot_equity(
        result.pipeline.equity_curve, path, title=f"{request.symbol} replay {result.run_id}"
    )
