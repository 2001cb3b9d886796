"""Parameter sweeps: the search space, the metrics of a run, ranking, walk-forward windows.

Everything here is plain data and arithmetic; running the configurations is
:mod:`cdb_cli.services.sweep`, through the same pipeline as ``cdb replay``.

* :func:`parse_axis` — ``ema_fast=8..16:2`` (an inclusive range with a step), ``ema_fast=8..12``
  (whole numbers, step 1) or ``volume_factor=1.2,1.5,2`` (a list). Values stay text, exactly as
  ``--set NAME=VALUE`` takes them, so the reproducing command is the value as written.
* :func:`grid` (every combination, in order) and :func:`sample` (``trials`` distinct combinations
  drawn with a seeded generator: the same seed gives the same draw).
* :data:`METRICS`, :func:`parse_constraint`, :func:`rank` — the objective and constraints.
  Configurations that fail a constraint are ranked after all that pass, never dropped.
* :func:`sharpe`, :func:`sortino` — annualised from daily returns (365 days: crypto trades daily).
* :func:`parse_walk_forward`, :func:`windows` — rolling train/test windows by time or bar count.
* :class:`Reproduce` — the ``cdb replay ... --set NAME=VALUE`` line that gives a row's numbers.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import random
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

__all__ = [
    "CSV_METRICS",
    "METRICS",
    "Axis",
    "Constraint",
    "Metric",
    "Reproduce",
    "WalkForward",
    "Window",
    "csv_rows",
    "daily_returns",
    "grid",
    "parse_axis",
    "parse_constraint",
    "parse_walk_forward",
    "rank",
    "report_metrics",
    "sample",
    "sharpe",
    "size",
    "sortino",
    "windows",
]

MAX_VALUES: Final = 100_000
"""The most values one axis may expand to (a typo like ``1..1000000:1`` is refused early)."""

DAYS_PER_YEAR: Final = 365
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept setting and its values (as ``--set`` text)."""

    name: str
    values: tuple[str, ...]


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{what} {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text.strip()!r} is not a finite number")
    return value


def _range(name: str, spec: str) -> tuple[str, ...]:
    bounds, _, step_text = spec.partition(":")
    low_text, _, high_text = bounds.partition("..")
    low, high = _number(low_text, "start"), _number(high_text, "end")
    whole = all(
        value == value.to_integral_value() and "." not in text and "e" not in text.lower()
        for value, text in ((low, low_text), (high, high_text))
    )
    if step_text:
        step = _number(step_text, "step")
        whole = whole and step == step.to_integral_value() and "." not in step_text
    elif whole:
        step = Decimal(1)
    else:
        raise ValueError(f"{name}: a range of decimals needs a step, e.g. {spec}:0.1")
    if step <= 0:
        raise ValueError(f"{name}: the step must be above 0")
    if high < low:
        raise ValueError(f"{name}: the range ends ({high}) before it starts ({low})")
    count = int((high - low) / step) + 1
    if count > MAX_VALUES:
        raise ValueError(f"{name}: {count:,} values; at most {MAX_VALUES:,} per setting")
    values = (low + i * step for i in range(count))
    return tuple(str(int(value)) if whole else str(value) for value in values)


def parse_axis(text: str) -> Axis:
    """``NAME=START..END:STEP``, ``NAME=START..END`` (whole numbers) or ``NAME=V1,V2,...``.

    ``ValueError`` with a one-line reason for anything else.
    """
    name, sep, spec = text.partition("=")
    name = name.strip().lower()
    spec = spec.strip()
    if not sep or not _NAME.match(name) or not spec:
        raise ValueError(
            f"{text!r} is not NAME=START..END:STEP or NAME=V1,V2,... (e.g. ema_fast=8..16:2)"
        )
    if ".." in spec:
        values = _range(name, spec)
    else:
        values = tuple(part.strip() for part in spec.split(","))
        if any(not value for value in values):
            raise ValueError(f"{name}: an empty value in {spec!r}")
    return Axis(name, tuple(dict.fromkeys(values)))  # each value once, in order


def size(axes: Sequence[Axis]) -> int:
    """How many combinations the grid of ``axes`` has."""
    return math.prod(len(axis.values) for axis in axes) if axes else 0


def _combination(axes: Sequence[Axis], index: int) -> dict[str, str]:
    """The ``index``-th combination of the grid (the last axis varies fastest)."""
    params: dict[str, str] = {}
    for axis in reversed(axes):
        index, at = divmod(index, len(axis.values))
        params[axis.name] = axis.values[at]
    return {axis.name: params[axis.name] for axis in axes}


def grid(axes: Sequence[Axis]) -> list[dict[str, str]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    names = [axis.name for axis in axes]
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(axis.values for axis in axes))
    ]


def sample(axes: Sequence[Axis], trials: int, seed: int) -> list[dict[str, str]]:
    """``trials`` distinct combinations drawn at random (seeded: the same seed, the same list),
    or the whole grid when it is no larger."""
    total = size(axes)
    if trials >= total:
        return grid(axes)
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    return [_combination(axes, index) for index in rng.sample(range(total), trials)]


# --- the command that reproduces a row -------------------------------------------------------


@dataclass(frozen=True)
class Reproduce:
    """The ``cdb replay`` command line a row's numbers come from (``params`` as ``--set``)."""

    prefix: tuple[str, ...]
    """``cdb [--env-file F] replay DATA`` and the options every run shares."""
    since_ms: int | None = None
    until_ms: int | None = None

    def command(
        self, params: Mapping[str, str], *, since_ms: int | None = None, until_ms: int | None = None
    ) -> str:
        """The command line (``shlex``-quoted), in ``[since_ms, until_ms)`` when given."""
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


# --- metrics, objective and constraints --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    """A number a run is judged by: its label for the table and which way is better."""

    label: str
    higher_is_better: bool
    unit: str = ""


METRICS: Final[Mapping[str, Metric]] = {
    "pnl": Metric("PnL", True, "quote"),
    "pnl_pct": Metric("PnL %", True, "%"),
    "max_drawdown": Metric("max DD %", False, "%"),
    "trades": Metric("trades", True),
    "win_rate": Metric("win %", True, "%"),
    "sharpe": Metric("Sharpe", True),
    "sortino": Metric("Sortino", True),
    "exposure": Metric("exposure %", False, "%"),
    "fees": Metric("fees", False, "quote"),
}
"""The metrics of a row (``row["metrics"]``), each usable as ``--objective`` and in
``--constraint``. Percentages are in percent (``max_drawdown<=10`` is 10 %); ``exposure`` is the
mean share of equity held; ``pnl`` and ``fees`` are in the quote currency."""

_OPERATORS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


def metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    """A metric as a float (money is kept as ``Decimal`` text in a row); None when undefined."""
    value = metrics.get(name)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


@dataclass(frozen=True, slots=True)
class Constraint:
    """``metric op limit``, e.g. ``max_drawdown <= 10``; an undefined metric fails it."""

    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"

    def holds(self, metrics: Mapping[str, Any]) -> bool:
        value = metric_value(metrics, self.metric)
        return value is not None and _OPERATORS[self.op](value, self.limit)


def parse_constraint(text: str) -> Constraint:
    """``max_drawdown<=10``, ``trades>=20``, ``sharpe>0``… (:data:`METRICS` names)."""
    match = _CONSTRAINT.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not METRIC<=NUMBER (or >=, <, >, ==, !=)")
    name, op, limit = match.groups()
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return Constraint(name, op, float(_number(limit, "limit")))


def rank(
    rows: Sequence[Mapping[str, Any]], objective: str, constraints: Sequence[Constraint] = ()
) -> list[dict[str, Any]]:
    """The rows best first by ``objective`` (``row["metrics"][objective]``), those that meet every
    constraint before those that do not; an undefined objective ranks last in its group, ties keep
    the rows' order. Each returned row gains ``rank`` (1 = best), ``passes`` and ``violations``
    (the constraints it fails, as text)."""
    if objective not in METRICS:
        raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(METRICS)}")
    sign = -1.0 if METRICS[objective].higher_is_better else 1.0
    marked = []
    for index, row in enumerate(rows):
        metrics = row.get("metrics") or {}
        failed = [str(c) for c in constraints if not c.holds(metrics)]
        if row.get("error"):
            failed.insert(0, "invalid")
        value = metric_value(metrics, objective)
        key = (bool(failed), value is None, sign * value if value is not None else 0.0, index)
        marked.append((key, {**row, "passes": not failed, "violations": failed}))
    marked.sort(key=lambda pair: pair[0])
    return [{"rank": n, **row} for n, (_, row) in enumerate(marked, start=1)]


def daily_returns(equities: Sequence[float]) -> list[float]:
    """Period-on-period returns of an equity series (a zero or negative equity ends it)."""
    returns = []
    for before, after in itertools.pairwise(equities):
        if before <= 0:
            break
        returns.append(after / before - 1.0)
    return returns


def _annualised(mean: float, deviation: float) -> float | None:
    if deviation <= 0 or math.isnan(deviation):
        return None
    return round(mean / deviation * math.sqrt(DAYS_PER_YEAR), 6)


def sharpe(returns: Sequence[float]) -> float | None:
    """Annualised Sharpe ratio of daily returns (risk-free rate 0, sample deviation); None with
    fewer than two returns or none that vary."""
    if len(returns) < 2:
        return None
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return _annualised(mean, math.sqrt(variance))


def sortino(returns: Sequence[float]) -> float | None:
    """Annualised Sortino ratio of daily returns (target 0: only losing days count as risk);
    None with fewer than two returns or no losing day."""
    if len(returns) < 2:
        return None
    mean = math.fsum(returns) / len(returns)
    downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return _annualised(mean, downside)


def report_metrics(
    report: Mapping[str, Any], day_closes: Sequence[float]
) -> tuple[dict[str, Any], list[float]]:
    """A sweep row's metrics (:data:`METRICS` and counts) from a replay report — the same
    numbers ``cdb replay --json`` gives — and the run's daily returns: from the starting cash
    through the equity at each UTC day's close (``day_closes``) to the final equity."""
    equities = [float(report["starting_cash"]), *day_closes, float(report["final_equity"])]
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


# --- the CSV table -------------------------------------------------------------------------------

CSV_METRICS = (
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


def csv_rows(document: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A sweep document's rows (or a walk-forward's windows) as a CSV header and rows."""
    names = list(document["axes"])
    walk = document.get("walk_forward")
    if walk is None:
        header = ["rank", "passes", "violations", *names, *CSV_METRICS]
        header += ["run_id", "settings_sha256", "data_sha256", "command"]
        rows = [
            [
                row["rank"],
                row["passes"],
                "; ".join(row["violations"]),
                *(row["params"].get(name, "") for name in names),
                *(row["metrics"].get(metric) for metric in CSV_METRICS),
                *(row.get("provenance", {}).get(key, "") for key in header[-4:-1]),
                row.get("command", ""),
            ]
            for row in document["rows"]
        ]
        return header, rows
    header = ["window", "train_start", "train_end", "test_start", "test_end", "passes", *names]
    header += [f"in_sample_{m}" for m in CSV_METRICS]
    header += [f"out_of_sample_{m}" for m in CSV_METRICS]
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
            *(window["in_sample"].get(m) for m in CSV_METRICS),
            *(window["out_of_sample"].get(m) for m in CSV_METRICS),
            window["provenance"]["test"]["run_id"],
            window["command"],
        ]
        for window in walk["windows"]
    ]
    return header, rows


# --- walk-forward ------------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True, slots=True)
class WalkForward:
    """Train and test window lengths, both in ns of time or both in bars."""

    train: int
    test: int
    by_bars: bool
    text: str


def _length(part: str) -> tuple[int, bool]:
    if part.isdigit():
        return int(part), True
    match = _DURATION.match(part)
    if match is None:
        raise ValueError(f"{part!r} is neither a duration (30d, 12h, 90m) nor a bar count")
    return int(match.group(1)) * _SECONDS[match.group(2)] * 1_000_000_000, False


def parse_walk_forward(text: str) -> WalkForward:
    """``train=30d,test=7d`` (durations: s, m, h, d, w) or ``train=43200,test=10080`` (bars)."""
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key.strip().lower() not in ("train", "test"):
            raise ValueError(f"{text!r} is not train=LENGTH,test=LENGTH (e.g. train=30d,test=7d)")
        parts[key.strip().lower()] = value.strip().lower()
    if set(parts) != {"train", "test"}:
        raise ValueError(f"{text!r} needs both train= and test=")
    (train, train_bars), (test, test_bars) = _length(parts["train"]), _length(parts["test"])
    if train_bars != test_bars:
        raise ValueError("train and test must both be durations or both bar counts")
    if train <= 0 or test <= 0:
        raise ValueError("train and test must be above 0")
    return WalkForward(train, test, train_bars, f"train={parts['train']},test={parts['test']}")


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward step as index ranges ``[start, end)`` into the series."""

    train: tuple[int, int]
    test: tuple[int, int]


def windows(ts: Sequence[int], spec: WalkForward) -> list[Window]:
    """Rolling windows over bars opening at ``ts`` (ns, increasing): train, then the test window
    right after it; the next step starts one test length later, so the test windows follow each
    other without gap or overlap. The last test window may be shorter (the data end); windows
    whose train or test part holds no bar are left out."""
    n = len(ts)
    found: list[Window] = []
    step = 0
    while n:
        if spec.by_bars:
            train_start = step * spec.test
            train_end = train_start + spec.train
            test_end = min(train_end + spec.test, n)
            train_end = min(train_end, n)
        else:
            start_ns = ts[0] + step * spec.test
            train_start = bisect.bisect_left(ts, start_ns)
            train_end = bisect.bisect_left(ts, start_ns + spec.train)
            test_end = bisect.bisect_left(ts, start_ns + spec.train + spec.test)
        if train_end >= n:
            break
        if train_end > train_start and test_end > train_end:
            found.append(Window((train_start, train_end), (train_end, test_end)))
        step += 1
    return found
