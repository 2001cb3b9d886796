"""``cdb replay --sweep``: many configurations over one data file, in parallel, ranked.

The data file is loaded and parsed once, in the parent; workers are forked from it (the ``fork``
start method on Linux; ``spawn`` elsewhere, which sends them the series once each), so every
worker replays the very series object the parent loaded, and reuses it for each configuration it
runs. Each configuration runs through :func:`cdb_cli.services.replay.run_loaded` — the kernel's
``build_pipeline`` and the same replay loop and report as ``cdb replay`` — so a row is exactly
what ``cdb replay DATA --set NAME=VALUE ...`` reports (the row carries that command).

Every combination is first validated through the same path as ``--set`` (the settings schema and
the strategy's settings model, :func:`cdb_cli.services.strategy.command_settings` and the kernel's
``strategy_factory``); one bad combination stops the sweep before any replay
(:class:`SweepInvalid`).

Walk-forward (:func:`run_walk_forward`): for each rolling window the sweep runs on the training
bars (a cold start, exactly as ``cdb replay --since --until`` of that window), the best row by
the objective and constraints is traded on the test bars right after it. Each test window starts
flat with the starting cash, its strategy warmed (``pipeline.warm_up``: no signal, no order) on the
training bars before it; nothing else carries over between windows.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.sweep import (
    Axis,
    Constraint,
    WalkForward,
    daily_returns,
    grid,
    rank,
    sample,
    sharpe,
    sortino,
    windows,
)

if TYPE_CHECKING:
    from cdb_cli.engine.replay import BarSeries
    from cdb_cli.services.replay import LoadedReplay, ReplayRequest, ReplayResult
    from cdb_cli.settings import Settings

__all__ = [
    "SAMPLERS",
    "Reproduce",
    "SweepInvalid",
    "SweepSpec",
    "row_metrics",
    "run_sweep",
    "run_walk_forward",
]

SAMPLERS = ("grid", "random", "optuna")
OPTUNA_MISSING = "--sampler optuna needs optuna: pip install 'cdb-cli[sweep]'"

Progress = Callable[[int, int], None]
"""Called with (configurations done, total) as runs finish."""


class SweepInvalid(CdbError):
    """A swept combination is not valid settings; the message names it (a usage error)."""


@dataclass(frozen=True)
class Reproduce:
    """The ``cdb replay`` command line a row's numbers come from (``params`` as ``--set``)."""

    prefix: tuple[str, ...]
    """``cdb [--env-file F] replay DATA`` and the options every run shares."""
    since_ms: int | None = None
    until_ms: int | None = None

    def command(
        self,
        params: Mapping[str, str],
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> str:
        since = self.since_ms if since_ms is None else since_ms
        until = self.until_ms if until_ms is None else until_ms
        args = list(self.prefix)
        if since is not None:
            args += ["--since", _iso_ms(since)]
        if until is not None:
            args += ["--until", _iso_ms(until)]
        for name, value in params.items():
            args += ["--set", f"{name}={value}"]
        return shlex.join(args)


def _iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    spec = "seconds" if ms % 1000 == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


@dataclass(frozen=True)
class SweepSpec:
    """What to search and how to judge it."""

    axes: tuple[Axis, ...]
    env_file: Path | None = None
    strategy: str | None = None
    base_items: tuple[str, ...] = ()
    """The command's own ``--set`` items, applied before each combination's."""
    sampler: str = "grid"
    trials: int | None = None
    seed: int = 0
    objective: str = "pnl"
    constraints: tuple[Constraint, ...] = ()
    jobs: int = 0
    """Worker processes; 0 = every core."""

    def combinations(self) -> list[dict[str, str]]:
        """The configurations grid or random search runs (optuna chooses its own as it goes)."""
        if self.sampler == "random":
            return sample(self.axes, self.trials or 0, self.seed)
        return grid(self.axes)

    def workers(self, tasks: int) -> int:
        cores = os.cpu_count() or 1
        return max(1, min(self.jobs or cores, tasks))


@dataclass(frozen=True)
class _Segment:
    """The bars one run replays: the whole file, or a walk-forward window."""

    request: ReplayRequest
    loaded: LoadedReplay
    warm_up: BarSeries | None = None


@dataclass
class _Context:
    """What every worker holds: inherited at fork, or sent once to a spawned worker."""

    spec: SweepSpec
    segments: list[_Segment] = field(default_factory=list)


_CONTEXT: _Context | None = None


def _set_context(context: _Context | None) -> None:
    global _CONTEXT  # the worker's state, set once per process
    _CONTEXT = context


def _context() -> _Context:
    if _CONTEXT is None:  # pragma: no cover - a worker always has it
        raise RuntimeError("sweep worker without context")
    return _CONTEXT


# --- one configuration -----------------------------------------------------------------------


def configuration_settings(spec: SweepSpec, params: Mapping[str, str]) -> Settings:
    """The settings of one combination, built exactly as ``cdb replay --set`` builds them;
    :class:`SweepInvalid` (one line naming the combination) when they are not valid."""
    from cdb_cli.kernel.strategies import strategy_factory
    from cdb_cli.services.strategy import command_settings

    items = [*spec.base_items, *(f"{name}={value}" for name, value in params.items())]
    try:
        settings = command_settings(spec.env_file, items, spec.strategy)
        strategy_factory(settings)
    except (ValueError, CdbError) as e:
        text = " ".join(f"{name}={value}" for name, value in params.items()) or "(no setting)"
        message = e.message if isinstance(e, CdbError) else str(e)
        details = e.details if isinstance(e, CdbError) else []
        reason = "; ".join([message, *details]) if details else message
        raise SweepInvalid(f"{text}: {reason}") from None
    return settings


def _validate(task: tuple[int, dict[str, str]]) -> tuple[int, Settings | None, str | None]:
    index, params = task
    try:
        return index, configuration_settings(_context().spec, params), None
    except SweepInvalid as e:
        return index, None, e.message


def row_metrics(result: ReplayResult) -> tuple[dict[str, Any], list[float]]:
    """The row's metrics of one run (:data:`cdb_cli.engine.sweep.METRICS`, taken from its
    report: the same numbers ``cdb replay --json`` gives) and its daily returns.

    Sharpe and Sortino come from the daily returns of the equity at each UTC day's close (the
    pipeline's day-roll snapshots), from the starting cash to the final equity.
    """
    report = result.report
    equities = [
        float(report["starting_cash"]),
        *(float(snapshot.equity) for snapshot in result.pipeline.snapshots),
        float(report["final_equity"]),
    ]
    returns = daily_returns(equities)
    trades = report["trades"]
    win_rate = trades["win_rate"]
    metrics = {
        "pnl": report["pnl"],
        "pnl_pct": report["pnl_pct"],
        "max_drawdown": report["max_drawdown_pct"],
        "trades": trades["closed"],
        "win_rate": round(win_rate * 100, 4) if win_rate is not None else None,
        "sharpe": sharpe(returns),
        "sortino": sortino(returns),
        "exposure": report["exposure"]["mean_pct"],
        "fees": report["fees"],
        "won": trades["won"],
        "open_trades": trades["open"],
        "fills": report["fills"],
        "bars": report["bars"],
        "final_equity": report["final_equity"],
        "starting_cash": report["starting_cash"],
    }
    return metrics, returns


@dataclass
class _Run:
    index: int
    segment: int
    metrics: dict[str, Any]
    returns: list[float]
    provenance: dict[str, str]


def _run(task: tuple[int, int, Settings]) -> _Run:
    from cdb_cli.services.replay import run_loaded

    index, segment_index, settings = task
    segment = _context().segments[segment_index]
    result = run_loaded(settings, segment.request, segment.loaded, warm_up=segment.warm_up)
    metrics, returns = row_metrics(result)
    provenance = result.report["provenance"]
    return _Run(
        index,
        segment_index,
        metrics,
        returns,
        {
            "run_id": provenance["run_id"],
            "settings_sha256": provenance["settings_sha256"],
            "data_sha256": provenance["data_sha256"],
        },
    )


# --- the workers -------------------------------------------------------------------------------


class _Workers:
    """A pool forked from this process (or spawned and sent the context), or this process alone
    for one job."""

    def __init__(self, context: _Context, jobs: int) -> None:
        self.jobs = jobs
        self._pool: Any = None
        _set_context(context)
        if jobs > 1:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            mp = multiprocessing.get_context(method)
            if method == "fork":
                self._pool = mp.Pool(jobs)  # the workers inherit _CONTEXT and the series
            else:  # pragma: no cover - Linux forks
                self._pool = mp.Pool(jobs, initializer=_set_context, initargs=(context,))

    def map(
        self,
        function: Callable[[Any], Any],
        tasks: Sequence[Any],
        done: Callable[[], None] | None = None,
    ) -> list[Any]:
        """``function`` over ``tasks``, results in task order; ``done`` after each one."""
        results: Iterable[Any]
        if self._pool is None:
            results = map(function, tasks)
        else:
            chunk = max(1, min(16, len(tasks) // (self.jobs * 8)))
            results = self._pool.imap(function, tasks, chunksize=chunk)
        out = []
        for result in results:
            out.append(result)
            if done is not None:
                done()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
        _set_context(None)

    def terminate(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
        _set_context(None)


@contextmanager
def _workers(context: _Context, jobs: int) -> Iterator[_Workers]:
    workers = _Workers(context, jobs)
    try:
        yield workers
    except BaseException:
        workers.terminate()
        raise
    workers.close()


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self._progress = total, 0, progress

    def __call__(self) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total)


def _validated(
    workers: _Workers, combos: Sequence[dict[str, str]], count: _Counter | None = None
) -> list[Settings]:
    """Every combination's settings; :class:`SweepInvalid` naming the first bad one (and how many
    more there are) before anything runs."""
    checked = workers.map(_validate, list(enumerate(combos)), count)
    errors = [error for _, _, error in checked if error is not None]
    if errors:
        more = f" (and {len(errors) - 1} more invalid combinations)" if len(errors) > 1 else ""
        raise SweepInvalid(errors[0] + more)
    return [settings for _, settings, _ in checked if settings is not None]


def _row(
    params: Mapping[str, str], run: _Run, reproduce: Reproduce, **window: int | None
) -> dict[str, Any]:
    return {
        "params": dict(params),
        "metrics": run.metrics,
        "provenance": run.provenance,
        "command": reproduce.command(params, **window),
    }


def _document(spec: SweepSpec, loaded: LoadedReplay, request: ReplayRequest) -> dict[str, Any]:
    return {
        "data": {
            "file": request.data.name,
            "sha256": loaded.data_sha256,
            "symbol": request.symbol,
            "rows": len(loaded.series),
        },
        "sampler": spec.sampler,
        "seed": spec.seed if spec.sampler != "grid" else None,
        "objective": spec.objective,
        "constraints": [str(c) for c in spec.constraints],
        "axes": {axis.name: list(axis.values) for axis in spec.axes},
    }


# --- the sweep ---------------------------------------------------------------------------------


def run_sweep(
    spec: SweepSpec,
    request: ReplayRequest,
    loaded: LoadedReplay,
    reproduce: Reproduce,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every configuration of ``spec`` on ``loaded`` and rank them (a JSON-able document:
    ``rows`` best first, each with its params, metrics, provenance and reproducing command)."""
    if spec.sampler == "optuna":
        return _run_optuna(spec, request, loaded, reproduce, progress=progress)
    combos = spec.combinations()
    context = _Context(spec, [_Segment(request, loaded)])
    count = _Counter(2 * len(combos), progress)
    with _workers(context, spec.workers(len(combos))) as workers:
        settings = _validated(workers, combos, count)
        runs = workers.map(_run, [(i, 0, s) for i, s in enumerate(settings)], count)
    rows = [_row(combos[run.index], run, reproduce) for run in runs]
    document = _document(spec, loaded, request)
    document["configurations"] = len(rows)
    document["rows"] = rank(rows, spec.objective, spec.constraints)
    return document


def _run_optuna(
    spec: SweepSpec,
    request: ReplayRequest,
    loaded: LoadedReplay,
    reproduce: Reproduce,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Optuna's TPE sampler (seeded) asks for ``trials`` configurations, a batch of one per job
    at a time; a trial that breaks a constraint is told as failed, so TPE steers away from it.
    Each axis value is validated up front; a combination still invalid is listed, not run."""
    from cdb_cli.engine.errors import DependencyError
    from cdb_cli.engine.sweep import METRICS, metric_value

    try:
        import optuna
    except ImportError:
        raise DependencyError(
            "--sampler optuna needs optuna: pip install 'cdb-cli[sweep]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if METRICS[spec.objective].higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
    )
    trials = spec.trials or 100
    context = _Context(spec, [_Segment(request, loaded)])
    count = _Counter(trials, progress)
    rows: list[dict[str, Any]] = []
    base = {axis.name: axis.values[0] for axis in spec.axes}
    singles = [{**base, axis.name: value} for axis in spec.axes for value in axis.values]
    with _workers(context, spec.workers(trials)) as workers:
        _validated(workers, singles)
        while len(rows) < trials:
            batch = [study.ask() for _ in range(min(workers.jobs, trials - len(rows)))]
            combos = [
                {axis.name: trial.suggest_categorical(axis.name, axis.values) for axis in spec.axes}
                for trial in batch
            ]
            checked = [_validate_or_none(spec, combo) for combo in combos]
            tasks = [(i, 0, s) for i, s in enumerate(checked) if s is not None]
            runs = {run.index: run for run in workers.map(_run, tasks, count)}
            for i, (trial, combo) in enumerate(zip(batch, combos, strict=True)):
                run = runs.get(i)
                if run is None:
                    count()
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    rows.append({"params": combo, "metrics": {}, "error": "invalid settings"})
                    continue
                value = metric_value(run.metrics, spec.objective)
                ok = value is not None and all(c.holds(run.metrics) for c in spec.constraints)
                if ok:
                    study.tell(trial, value)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                rows.append(_row(combo, run, reproduce))
    document = _document(spec, loaded, request)
    document["configurations"] = len(rows)
    document["rows"] = rank(rows, spec.objective, spec.constraints)
    return document


def _validate_or_none(spec: SweepSpec, params: Mapping[str, str]) -> Settings | None:
    try:
        return configuration_settings(spec, params)
    except SweepInvalid:
        return None


# --- walk-forward ------------------------------------------------------------------------------


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


def _summary(runs: Sequence[_Run]) -> dict[str, Any]:
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
    segments: list[_Segment] = []
    for step in steps:
        for (start, end), warm in ((step.train, None), (step.test, step.train)):
            since_ms, until_ms = _bounds_ms(series, start, end)
            window = replace(request, since_ms=since_ms, until_ms=until_ms)
            part = replace(loaded, series=_slice(series, start, end))
            segments.append(_Segment(window, part, _slice(series, *warm) if warm else None))
    context = _Context(spec, segments)
    count = _Counter(len(combos) * (1 + len(steps)) + len(steps), progress)
    with _workers(context, spec.workers(len(combos) * len(steps))) as workers:
        settings = _validated(workers, combos, count)
        train_tasks = [(i, 2 * w, s) for w in range(len(steps)) for i, s in enumerate(settings)]
        train_runs = workers.map(_run, train_tasks, count)
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
        test_runs = workers.map(_run, test_tasks, count)
    report_windows = []
    for w, (step, best, test) in enumerate(zip(steps, winners, test_runs, strict=True)):
        train_since, train_until = _bounds_ms(series, *step.train)
        train_run: _Run = best["run"]
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
    document = _document(spec, loaded, request)
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


# --- output files ------------------------------------------------------------------------------

_METRIC_COLUMNS = (
    "pnl",
    "pnl_pct",
    "max_drawdown",
    "trades",
    "win_rate",
    "sharpe",
    "sortino",
    "exposure",
    "fees",
    "won",
    "open_trades",
    "fills",
    "bars",
    "final_equity",
)


def _csv_rows(document: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    names = list(document["axes"])
    walk = document.get("walk_forward")
    if walk is None:
        header = ["rank", "passes", "violations", *names, *_METRIC_COLUMNS]
        header += ["run_id", "settings_sha256", "data_sha256", "command"]
        rows = [
            [
                row["rank"],
                row["passes"],
                "; ".join(row["violations"]),
                *(row["params"].get(name, "") for name in names),
                *(row["metrics"].get(metric) for metric in _METRIC_COLUMNS),
                *(row.get("provenance", {}).get(key, "") for key in header[-4:-1]),
                row.get("command", ""),
            ]
            for row in document["rows"]
        ]
        return header, rows
    header = ["window", "train_start", "train_end", "test_start", "test_end", "passes", *names]
    header += [f"in_sample_{m}" for m in _METRIC_COLUMNS]
    header += [f"out_of_sample_{m}" for m in _METRIC_COLUMNS]
    header += ["test_run_id", "command"]
    rows = [
        [
            window["window"],
            window["train"]["start"],
            window["train"]["end"],
            window["test"]["start"],
            window["test"]["end"],
            window["passes"],
            *(window["params"].get(name, "") for name in names),
            *(window["in_sample"].get(m) for m in _METRIC_COLUMNS),
            *(window["out_of_sample"].get(m) for m in _METRIC_COLUMNS),
            window["provenance"]["test"]["run_id"],
            window["command"],
        ]
        for window in walk["windows"]
    ]
    return header, rows


def write_csv(document: Mapping[str, Any], path: Path) -> None:
    """The sweep's rows (or the walk-forward's windows) as CSV with a header, every digit kept;
    written to a temporary file beside ``path`` and moved into place."""
    import csv
    import tempfile

    header, rows = _csv_rows(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".cdb-sweep-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def require_plot() -> None:
    """``DependencyError`` (the install command) when ``--heatmap`` cannot be drawn."""
    from cdb_cli.adapters.plot import require_matplotlib

    require_matplotlib()


def plot_sweep_heatmap(document: Mapping[str, Any], path: Path) -> None:
    """The objective over a two-setting sweep as a heatmap PNG (first setting across)."""
    from cdb_cli.adapters.plot import plot_heatmap
    from cdb_cli.engine.sweep import METRICS, metric_value

    (x_name, x_values), (y_name, y_values) = document["axes"].items()
    objective = document["objective"]
    cells = {
        (row["params"][x_name], row["params"][y_name]): metric_value(row["metrics"], objective)
        for row in document["rows"]
    }
    plot_heatmap(
        x_name,
        x_values,
        y_name,
        y_values,
        [[cells.get((x, y)) for x in x_values] for y in y_values],
        path,
        title=f"{document['data']['symbol']} sweep: {METRICS[objective].label}",
    )
