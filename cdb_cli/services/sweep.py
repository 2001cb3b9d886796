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

Walk-forward, which runs the sweep per window on these same workers, is
:mod:`cdb_cli.services.walkforward`.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.sweep import (
    Axis,
    Constraint,
    Reproduce,
    grid,
    rank,
    report_metrics,
    sample,
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
]

SAMPLERS = ("grid", "random", "optuna")
OPTUNA_MISSING = "--sampler optuna needs optuna: pip install 'cdb-cli[sweep]'"

Progress = Callable[[int, int], None]
"""Called with (configurations done, total) as runs finish."""


class SweepInvalid(CdbError):
    """A swept combination is not valid settings; the message names it (a usage error)."""


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
        """Processes to start for ``tasks`` runs: ``jobs``, or every core this process may use."""
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
        return max(1, min(self.jobs or cores, tasks))


@dataclass(frozen=True)
class Segment:
    """The bars one run replays: the whole file, or a walk-forward window."""

    request: ReplayRequest
    loaded: LoadedReplay
    warm_up: BarSeries | None = None


@dataclass
class Context:
    """What every worker holds: inherited at fork, or sent once to a spawned worker."""

    spec: SweepSpec
    segments: list[Segment] = field(default_factory=list)


_CONTEXT: Context | None = None


def _set_context(context: Context | None) -> None:
    global _CONTEXT  # the worker's state, set once per process
    _CONTEXT = context


def _context() -> Context:
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
    closes = [float(snapshot.equity) for snapshot in result.pipeline.snapshots]
    return report_metrics(result.report, closes)


@dataclass
class Run:
    index: int
    segment: int
    metrics: dict[str, Any]
    returns: list[float]
    provenance: dict[str, str]


def release_run(result: ReplayResult) -> None:
    """Break the finished run's reference cycles, so reference counting frees it at once.

    The pipeline and the parts that point back at it (decisions, operator, the state machine's
    callbacks) form cycles, and the replay loop freezes what it made at its end
    (``cdb_cli.engine.replay.paused_gc`` → ``gc.freeze``), so the collector never frees them: a
    process that replays a thousand configurations kept every one (~13 MB each at 43,200 bars,
    GBs per worker). A full collection per run would cost more than the replay's own loop; the
    run is done and only its metrics are kept, so its objects let go of each other here.
    """
    pipeline = result.pipeline
    for part in list(vars(pipeline).values()):
        if hasattr(part, "__dict__"):
            vars(part).clear()
    vars(pipeline).clear()


def run_configuration(task: tuple[int, int, Settings]) -> Run:
    from cdb_cli.services.replay import run_loaded

    index, segment_index, settings = task
    segment = _context().segments[segment_index]
    result = run_loaded(settings, segment.request, segment.loaded, warm_up=segment.warm_up)
    metrics, returns = row_metrics(result)
    provenance = result.report["provenance"]
    release_run(result)
    return Run(
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

    def __init__(self, context: Context, jobs: int) -> None:
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
def worker_pool(context: Context, jobs: int) -> Iterator[_Workers]:
    workers = _Workers(context, jobs)
    try:
        yield workers
    except BaseException:
        workers.terminate()
        raise
    workers.close()


class Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self._progress = total, 0, progress

    def __call__(self) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total)


def validated_settings(
    workers: _Workers, combos: Sequence[dict[str, str]], count: Counter | None = None
) -> list[Settings]:
    """Every combination's settings; :class:`SweepInvalid` naming the first bad one (and how many
    more there are) before anything runs."""
    checked = workers.map(_validate, list(enumerate(combos)), count)
    errors = [error for _, _, error in checked if error is not None]
    if errors:
        more = f" (and {len(errors) - 1} more invalid combinations)" if len(errors) > 1 else ""
        raise SweepInvalid(errors[0] + more)
    return [settings for _, settings, _ in checked if settings is not None]


def make_row(
    params: Mapping[str, str], run: Run, reproduce: Reproduce, **window: int | None
) -> dict[str, Any]:
    return {
        "params": dict(params),
        "metrics": run.metrics,
        "provenance": run.provenance,
        "command": reproduce.command(params, **window),
    }


def document_head(spec: SweepSpec, loaded: LoadedReplay, request: ReplayRequest) -> dict[str, Any]:
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
    context = Context(spec, [Segment(request, loaded)])
    count = Counter(len(combos), progress)  # the replays; validating is quick
    with worker_pool(context, spec.workers(len(combos))) as workers:
        settings = validated_settings(workers, combos)
        runs = workers.map(run_configuration, [(i, 0, s) for i, s in enumerate(settings)], count)
    rows = [make_row(combos[run.index], run, reproduce) for run in runs]
    document = document_head(spec, loaded, request)
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
    A combination asked for again is told its first result, not replayed: the rows are distinct.
    Each axis value is validated up front; a combination still invalid is listed, not run."""
    from cdb_cli.engine.sweep import METRICS

    try:
        import optuna
    except ImportError:
        raise SweepInvalid(OPTUNA_MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if METRICS[spec.objective].higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
    )
    trials = spec.trials or 100
    count = Counter(trials, progress)
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    base = {axis.name: axis.values[0] for axis in spec.axes}
    singles = [{**base, axis.name: value} for axis in spec.axes for value in axis.values]
    context = Context(spec, [Segment(request, loaded)])
    with worker_pool(context, spec.workers(trials)) as workers:
        validated_settings(workers, singles)
        asked = 0
        while asked < trials:
            batch = [study.ask() for _ in range(min(workers.jobs, trials - asked))]
            asked += len(batch)
            combos = [
                {axis.name: trial.suggest_categorical(axis.name, axis.values) for axis in spec.axes}
                for trial in batch
            ]
            fresh = {tuple(c.values()): c for c in combos if tuple(c.values()) not in rows}
            checked = {key: _validate_or_none(spec, combo) for key, combo in fresh.items()}
            keys = list(fresh)
            tasks = [(i, 0, checked[key]) for i, key in enumerate(keys) if checked[key]]
            for run in workers.map(run_configuration, tasks):
                rows[keys[run.index]] = make_row(fresh[keys[run.index]], run, reproduce)
            for key in keys:
                if checked[key] is None:
                    rows[key] = {"params": fresh[key], "metrics": {}, "error": "invalid settings"}
            for trial, combo in zip(batch, combos, strict=True):
                _tell(study, trial, rows[tuple(combo.values())], spec)
                count()
    document = document_head(spec, loaded, request)
    document["configurations"] = len(rows)
    document["rows"] = rank(list(rows.values()), spec.objective, spec.constraints)
    return document


def _tell(study: Any, trial: Any, row: Mapping[str, Any], spec: SweepSpec) -> None:
    """Tell Optuna a trial's objective, or that it failed (invalid, or a constraint broken)."""
    import optuna

    from cdb_cli.engine.sweep import metric_value

    metrics = row["metrics"]
    value = metric_value(metrics, spec.objective) if not row.get("error") else None
    if value is not None and all(c.holds(metrics) for c in spec.constraints):
        study.tell(trial, value)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _validate_or_none(spec: SweepSpec, params: Mapping[str, str]) -> Settings | None:
    try:
        return configuration_settings(spec, params)
    except SweepInvalid:
        return None


def write_csv(document: Mapping[str, Any], path: Path) -> None:
    """The sweep's rows (or the walk-forward's windows) as CSV with a header, every digit kept;
    written to a temporary file beside ``path`` and moved into place."""
    import csv
    import tempfile

    from cdb_cli.engine.sweep import csv_rows

    header, rows = csv_rows(document)
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
