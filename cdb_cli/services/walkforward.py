"""``cdb replay --sweep ... --walk-forward``: optimise on each training window, trade the next.

For each rolling window (:func:`cdb_cli.engine.sweep.windows`) the sweep runs on the training
bars — a cold start, exactly ``cdb replay --since --until`` of that window, so its row's command
reproduces it — and the best row by the objective and constraints trades the test bars right
after it. Each test window starts flat with the starting cash, its strategy warmed
(``pipeline.warm_up``: the bars go through the strategy only, no signal, no order) on the training
bars before it; nothing else carries over between windows (no position, halt or drawdown peak).
The in-sample (training) and out-of-sample (test) results are pooled side by side, so an
overfitted search shows.

Every window's series is sliced once, in the parent, before the workers fork: each worker replays
the same slice objects for every configuration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cdb_cli.engine.sweep import WalkForward, rank, sharpe, sortino, windows
from cdb_cli.services.sweep import (
    Context,
    Counter,
    Progress,
    Reproduce,
    Run,
    Segment,
    SweepInvalid,
    SweepSpec,
    document_head,
    run_configuration,
    validated_settings,
    worker_pool,
)

if TYPE_CHECKING:
    from cdb_cli.engine.replay import BarSeries
    from cdb_cli.services.replay import LoadedReplay, ReplayRequest

__all__ = ["run_walk_forward"]


def _slice(series: BarSeries, start: int, end: int) -> BarSeries:
    from cdb_cli.engine.replay import BarSeries

    return BarSeries(
        series.symbol,
        series.interval_ns,
        series.ts[start:end],
        series.open[start:end],
        series.high[start:end],
        series.low[start:end],
        series.close[start:end],
        series.volume[start:end],
    )


def _bounds_ms(series: BarSeries, start: int, end: int) -> tuple[int, int]:
    """``--since``/``--until`` (ms) that load exactly the bars ``[start, end)``."""
    until = series.ts[end] if end < len(series) else series.ts[end - 1] + 1_000_000
    return series.ts[start] // 1_000_000, until // 1_000_000


def _bounded(request: ReplayRequest, series: BarSeries, span: tuple[int, int]) -> ReplayRequest:
    """``request`` for the bars ``span`` alone, as ``--since``/``--until`` would load them."""
    since_ms, until_ms = _bounds_ms(series, *span)
    return replace(request, since_ms=since_ms, until_ms=until_ms)


def _summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Windows pooled: sums, the worst drawdown, ratios of the pooled daily returns, and the
    return compounded window after window (each window starts with the starting cash)."""
    returns = [r for run in runs for r in run.returns]
    closed = sum(run.metrics["trades"] for run in runs)
    won = sum(run.metrics["won"] for run in runs)
    growth = math.prod(1 + (run.metrics["pnl_pct"] or 0.0) / 100 for run in runs)
    return {
        "windows": len(runs),
        "bars": sum(run.metrics["bars"] for run in runs),
        "days": len(returns),
        "pnl": str(sum((Decimal(run.metrics["pnl"]) for run in runs), Decimal(0))),
        "compounded_pct": round((growth - 1) * 100, 6),
        "mean_daily_return_pct": round(math.fsum(returns) / len(returns) * 100, 6)
        if returns
        else None,
        "max_drawdown": max((run.metrics["max_drawdown"] for run in runs), default=0.0),
        "trades": closed,
        "win_rate": round(won / closed * 100, 4) if closed else None,
        "sharpe": sharpe(returns),
        "sortino": sortino(returns),
        "fees": str(sum((Decimal(run.metrics["fees"]) for run in runs), Decimal(0))),
    }


def run_walk_forward(
    spec: SweepSpec,
    walk: WalkForward,
    request: ReplayRequest,
    loaded: LoadedReplay,
    reproduce: Reproduce,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Optimise on each training window, trade the next test window with the winner; the
    windows and the in-sample and out-of-sample results side by side (see the module doc)."""
    from cdb_cli.engine.replay import BarSeries

    series = loaded.series
    if not isinstance(series, BarSeries):
        raise SweepInvalid("--walk-forward needs a bar file (a trades file has no fixed bars)")
    steps = windows(series.ts, walk)
    if not steps:
        raise SweepInvalid(
            f"--walk-forward {walk.text}: {len(series)} bars hold no training window followed "
            "by a test window"
        )
    if spec.sampler == "optuna":
        raise SweepInvalid("--walk-forward searches with --sampler grid or random")
    combos = spec.combinations()
    segments: list[Segment] = []
    for step in steps:
        train = _slice(series, *step.train)  # also the test window's warm-up: one copy
        segments.append(
            Segment(_bounded(request, series, step.train), replace(loaded, series=train))
        )
        test = replace(loaded, series=_slice(series, *step.test))
        segments.append(Segment(_bounded(request, series, step.test), test, warm_up=train))
    context = Context(spec, segments)
    count = Counter(len(combos) * len(steps) + len(steps), progress)
    with worker_pool(context, spec.workers(len(combos) * len(steps))) as workers:
        settings = validated_settings(workers, combos)
        train_tasks = [(i, 2 * w, s) for w in range(len(steps)) for i, s in enumerate(settings)]
        train_runs = workers.map(run_configuration, train_tasks, count)
        ranked = []
        for w in range(len(steps)):
            runs = train_runs[w * len(combos) : (w + 1) * len(combos)]
            rows = [{"params": combos[r.index], "metrics": r.metrics, "run": r} for r in runs]
            ranked.append(rank(rows, spec.objective, spec.constraints))
        winners = [table[0] for table in ranked]
        test_tasks = [
            (best["run"].index, 2 * w + 1, settings[best["run"].index])
            for w, best in enumerate(winners)
        ]
        test_runs = workers.map(run_configuration, test_tasks, count)
    report_windows = []
    for w, (step, best, test) in enumerate(zip(steps, winners, test_runs, strict=True)):
        train_since, train_until = _bounds_ms(series, *step.train)
        train_run: Run = best["run"]
        report_windows.append(
            {
                "window": w + 1,
                "train": _period(series, *step.train),
                "test": _period(series, *step.test),
                "params": best["params"],
                "passes": best["passes"],
                "violations": best["violations"],
                "in_sample": train_run.metrics,
                "out_of_sample": test.metrics,
                "provenance": {"train": train_run.provenance, "test": test.provenance},
                "command": reproduce.command(
                    best["params"], since_ms=train_since, until_ms=train_until
                ),
            }
        )
    document = document_head(spec, loaded, request)
    document["configurations"] = len(combos)
    document["walk_forward"] = {
        "spec": walk.text,
        "state_between_windows": (
            "each test window starts flat with the starting cash, its strategy warmed on the "
            "training bars before it (no signal, no order); nothing else carries over"
        ),
        "windows": report_windows,
        "in_sample": _summary([best["run"] for best in winners]),
        "out_of_sample": _summary(test_runs),
    }
    return document


def _period(series: BarSeries, start: int, end: int) -> dict[str, Any]:
    from cdb_cli.engine.report import iso_utc

    return {
        "start": iso_utc(series.ts[start]),
        "end": iso_utc(series.ts[end - 1] + series.interval_ns),
        "bars": end - start,
    }
