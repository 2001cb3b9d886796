"""Sweep throughput, run on demand (not in the test suite): ``python benchmarks/sweep.py``.

Writes seeded 1-minute bars (``generate()`` of ``benchmarks/replay.py``) to a kline file, then
times the real command on it, as an operator runs it::

    cdb replay BTCUSDT-1m.json --sweep ema_fast=5..14 --sweep ema_slow=20..38:2 \\
        --sweep volume_factor=1.2..2.1:0.1 --jobs 2 --json

1,000 configurations x 43,200 bars (a month) by default: the data loaded and parsed once, every
configuration validated and then replayed through the kernel's pipeline in forked workers, every
row's report built and ranked, the JSON written. The time is the command's wall clock, interpreter
start included; the JSON is checked to hold one row per configuration. Target (issue 24): ≤ 60 s
on a 2-core machine. Exit 1 when it is missed.

``benchmarks/replay.py`` can print the same row in its table::

    from sweep import sweep_row  # benchmarks/ on sys.path, as when running a script there
    rows.append(sweep_row(configs=1000, bars=43_200, jobs=2, seed=7))
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 60.0
HEADER = ("benchmark", "time", "bars/s", "peak", "detail", "target", "result")
"""The columns of ``benchmarks/replay.py``'s table; :func:`sweep_row` fills them."""


def axes(configs: int) -> list[str]:
    """``--sweep`` items of about ``configs`` combinations of the seed rule's settings (fast EMA
    always below the slow one): 10 x 10 x 10 for 1,000."""
    side = max(1, round(configs ** (1 / 3)))
    third = max(1, math.ceil(configs / (side * side)))
    return [
        f"ema_fast=5..{4 + side}",
        f"ema_slow=20..{20 + 2 * (side - 1)}:2",
        "volume_factor=" + ",".join(f"{1.2 + 0.1 * i:.1f}" for i in range(third)),
    ]


def write_bars(path: Path, bars: int, seed: int) -> None:
    """The seeded bars of ``benchmarks/replay.py`` as a kline file ``[ts_ms, o, h, l, c, v]``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from replay import generate  # benchmarks/replay.py; imported here, not copied

    data = generate(bars, seed)
    rows = [
        [ts // 1_000_000, o, h, low, c, v]
        for ts, o, h, low, c, v in zip(
            data["ts"],
            data["open"],
            data["high"],
            data["low"],
            data["close"],
            data["volume"],
            strict=True,
        )
    ]
    path.write_text(json.dumps(rows))


def _cdb() -> str:
    beside = Path(sys.executable).parent / "cdb"
    return str(beside) if beside.exists() else "cdb"


def run_sweep(
    configs: int = 1000, bars: int = 43_200, jobs: int = 2, seed: int = 7
) -> dict[str, Any]:
    """Time ``cdb replay DATA --sweep ... --jobs JOBS --json`` on generated bars."""
    with tempfile.TemporaryDirectory(prefix="cdb-bench-sweep-") as folder:
        data = Path(folder) / "BTCUSDT-1m.json"
        write_bars(data, bars, seed)
        sweeps = [arg for item in axes(configs) for arg in ("--sweep", item)]
        command = [_cdb(), "replay", str(data), *sweeps, "--jobs", str(jobs), "--json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"cdb replay --sweep failed ({out.returncode}):\n{out.stderr}")
    document = json.loads(out.stdout)
    rows = document["rows"]
    if len(rows) != document["configurations"] or not rows:
        raise SystemExit(f"expected one row per configuration, received {len(rows)}")
    return {
        "configs": len(rows),
        "bars": bars,
        "jobs": jobs,
        "seconds": seconds,
        # the command and its workers (reaped by it): on a busy machine the wall clock is not
        # the whole story; CPU seconds per configuration are
        "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "trades": sum(row["metrics"]["trades"] for row in rows),
        "best": rows[0]["command"].split(" --sweep")[0],
    }


def sweep_row(
    configs: int = 1000, bars: int = 43_200, jobs: int = 2, seed: int = 7
) -> tuple[str, ...]:
    """One row of ``benchmarks/replay.py``'s table (:data:`HEADER`): the sweep's time, bars/s
    over all configurations, the largest process's peak, configurations per second, the target
    and ``ok`` / ``MISSED``."""
    result = run_sweep(configs, bars, jobs, seed)
    seconds = result["seconds"]
    ok = seconds <= TARGET_SECONDS * configs / 1000 * bars / 43_200
    return (
        f"cdb replay --sweep, {result['configs']:,} configs x {bars:,} bars, --jobs {jobs}",
        f"{seconds:.2f} s",
        f"{result['configs'] * bars / seconds:,.0f}",
        f"{result['peak_mb']:.0f} MB",
        f"{result['configs'] / seconds:.1f} configs/s, "
        f"{result['cpu_seconds'] / result['configs'] * 1000:.0f} CPU-ms/config, "
        f"{result['trades']:,} trades",
        f"<= {TARGET_SECONDS:.0f} s for 1,000 x 43,200",
        "ok" if ok else "MISSED",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=1000, help="configurations (default 1000)")
    parser.add_argument("--bars", type=int, default=43_200, help="1-minute bars (default 43200)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated bars")
    args = parser.parse_args()
    row = sweep_row(args.configs, args.bars, args.jobs, args.seed)
    widths = [max(len(a), len(b)) for a, b in zip(HEADER, row, strict=True)]
    for line in (HEADER, row):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return 0 if row[-1] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
