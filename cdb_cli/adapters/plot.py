"""The equity curve with its drawdown as a PNG (matplotlib, headless Agg backend).

matplotlib is an optional dependency (``pip install 'cdb-cli[plot]'``); without it, plotting
raises ``DependencyError`` with the install command instead of an import trace.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdb_cli.engine.errors import DependencyError

__all__ = ["MAX_POINTS", "plot_equity", "plot_heatmap", "plot_parity", "require_matplotlib"]

MAX_POINTS = 4000
"""Longer curves are thinned to about this many points (each kept point is a bucket's low)."""


def _thin(curve: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(curve) <= MAX_POINTS:
        return list(curve)
    step = -(-len(curve) // MAX_POINTS)
    # Keep each bucket's lowest equity, so thinning never hides a drawdown.
    return [
        min(curve[i : i + step], key=lambda point: point[1]) for i in range(0, len(curve), step)
    ]


def require_matplotlib() -> None:
    """``DependencyError`` with the install command when matplotlib is missing (checked before a
    long run, not after it)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise DependencyError("Plotting needs matplotlib: pip install 'cdb-cli[plot]'")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyError("Plotting needs matplotlib: pip install 'cdb-cli[plot]'") from None
    return plt


def _save(figure: Any, plt: Any, path: Path) -> None:
    """Write ``figure`` to ``path`` atomically (0666 less the umask), then close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".cdb-plot-", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(temp, dpi=100, format="png")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it 0600; a plot is not a secret
        os.replace(temp, path)
    finally:
        plt.close(figure)
        if os.path.exists(temp):
            os.unlink(temp)


def plot_heatmap(
    x_name: str,
    x_values: Sequence[str],
    y_name: str,
    y_values: Sequence[str],
    cells: Sequence[Sequence[float | None]],
    path: Path,
    *,
    title: str,
) -> None:
    """A two-setting sweep's objective as a heatmap PNG: ``cells[y][x]`` (None: no value, drawn
    blank), each cell labelled with its value."""
    plt = _pyplot()
    nan = float("nan")
    grid = [[nan if value is None else value for value in row] for row in cells]
    width = min(4 + 0.6 * len(x_values), 24)
    height = min(3 + 0.4 * len(y_values), 18)
    figure, axes = plt.subplots(figsize=(width, height), layout="constrained")
    image = axes.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
    axes.set_xticks(range(len(x_values)), labels=list(x_values))
    axes.set_yticks(range(len(y_values)), labels=list(y_values))
    axes.set_xlabel(x_name)
    axes.set_ylabel(y_name)
    axes.set_title(title)
    if len(x_values) * len(y_values) <= 400:
        for y, row in enumerate(cells):
            for x, value in enumerate(row):
                if value is not None:
                    axes.text(x, y, f"{value:.4g}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axes)
    _save(figure, plt, path)


def plot_equity(curve: Sequence[tuple[int, float]], path: Path, *, title: str) -> None:
    """Write ``curve`` ((ts ns, equity) pairs) and its drawdown from the peak to ``path``."""
    plt = _pyplot()
    import matplotlib.dates as mdates

    if not curve:
        raise ValueError("Nothing to plot: the run saw no prices")
    points = _thin(curve)
    times = [datetime.fromtimestamp(ts / 1e9, tz=UTC) for ts, _ in points]
    equity = [value for _, value in points]
    peak = float("-inf")
    drawdown = []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(-(1.0 - value / peak) * 100.0 if peak > 0 else 0.0)
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 1), layout="constrained"
    )
    top.plot(times, equity, color="tab:blue", linewidth=1.0)
    top.set_ylabel("equity")
    top.set_title(title)
    top.grid(alpha=0.3)
    bottom.fill_between(times, drawdown, 0.0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_formatter(formatter)
    _save(figure, plt, path)


def plot_parity(
    curve: Sequence[tuple[int, float, float, float]], path: Path, *, title: str
) -> None:
    """Write ``cdb parity``'s curves to ``path``: both sides' PnL (the run and its re-run), and
    their difference with the part of it attributed to a cause, over time."""
    plt = _pyplot()
    import matplotlib.dates as mdates

    if not curve:
        raise ValueError("Nothing to plot: neither side filled an order")
    times = [datetime.fromtimestamp(ts / 1e9, tz=UTC) for ts, *_ in curve]
    run = [point[1] for point in curve]
    replay = [point[2] for point in curve]
    difference = [a - b for a, b in zip(run, replay, strict=True)]
    explained = [point[3] for point in curve]
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 2), layout="constrained"
    )
    top.step(times, run, where="post", color="tab:blue", linewidth=1.0, label="run")
    top.step(times, replay, where="post", color="tab:orange", linewidth=1.0, label="re-run")
    top.set_ylabel("PnL")
    top.set_title(title)
    top.grid(alpha=0.3)
    top.legend(loc="best")
    bottom.step(times, difference, where="post", color="tab:red", linewidth=1.0,
                label="difference (run - re-run)")  # fmt: skip
    bottom.step(times, explained, where="post", color="tab:green", linewidth=1.0,
                linestyle="--", label="attributed to a cause")  # fmt: skip
    bottom.set_ylabel("difference")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="best")
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_formatter(formatter)
    _save(figure, plt, path)
