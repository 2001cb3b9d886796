"""Benchmarks with targets, run on demand (not in the test suite): ``python benchmarks/run.py``.

Prints one table: `cdb --help` wall time (median of repeated runs of the installed console script)
and market-data insert rates of the store on a SQLite file and on the real PostgreSQL (a throw-away
database; skipped with a note when the server is not reachable). Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_insert import (  # sibling module: benchmarks/ is not a package
    measure_insert_rate,
    postgres_scratch_database,
    sqlite_scratch_database,
)

HELP_TARGET_S = 0.25
INSERT_TARGET_ROWS_S = 20_000.0


def help_time(runs: int) -> float:
    """Median wall time of `cdb --help` as a user runs it (a fresh process each time)."""
    cdb = shutil.which("cdb", path=str(Path(sys.executable).parent)) or shutil.which("cdb")
    if cdb is None:
        raise SystemExit("cdb is not installed in this environment: pip install -e .")
    subprocess.run([cdb, "--help"], capture_output=True, check=True)  # warm the file cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([cdb, "--help"], capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="cdb --help runs (default 15)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per store (default 100k)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CDB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="admin URL of the PostgreSQL server for the throw-away database",
    )
    args = parser.parse_args()

    rows: list[tuple[str, str, str, str]] = []
    failed = False

    def record(
        name: str, value: float, target: float, fmt: Callable[[float], str], ok: bool
    ) -> None:
        nonlocal failed
        failed |= not ok
        rows.append((name, fmt(value), fmt(target), "ok" if ok else "MISSED"))

    seconds = help_time(args.runs)
    record(
        "cdb --help (median)",
        seconds,
        HELP_TARGET_S,
        lambda v: f"{v:.3f} s",
        seconds <= HELP_TARGET_S,
    )

    with sqlite_scratch_database() as url:
        rate = measure_insert_rate(url, args.rows)
    record(
        "insert rows/s, SQLite file",
        rate,
        INSERT_TARGET_ROWS_S,
        lambda v: f"{v:,.0f}",
        rate >= INSERT_TARGET_ROWS_S,
    )

    try:
        with postgres_scratch_database(args.postgres) as url:
            rate = measure_insert_rate(url, args.rows)
        record(
            "insert rows/s, PostgreSQL",
            rate,
            INSERT_TARGET_ROWS_S,
            lambda v: f"{v:,.0f}",
            rate >= INSERT_TARGET_ROWS_S,
        )
    except Exception as e:  # report, do not hide: the row says why
        rows.append(
            ("insert rows/s, PostgreSQL", "n/a", f"{INSERT_TARGET_ROWS_S:,.0f}", f"SKIPPED: {e}")
        )
        failed = True

    widths = [
        max(len(row[i]) for row in [("benchmark", "measured", "target", "result"), *rows])
        for i in range(4)
    ]
    for row in [("benchmark", "measured", "target", "result"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
