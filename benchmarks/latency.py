"""Live-loop latency and memory, run on demand: ``python benchmarks/latency.py``.

Drives the real ``PaperRuntime`` (SQLite store in a temp dir, in-process bus) with one hour of
trades for three symbols replayed at speed (a seeded random walk, one trade per symbol every
250 ms of simulated time, the clock moving with the trades). Measured:

* tick → order: from the moment the loop takes the market event off its queue to the moment the
  order is handed to the execution client, for every event that leads to an order (the bar close
  whose signal the risk engine approved); p50 / p99 / max. Target p99 ≤ 200 µs in one process.
* memory: the process's RSS every simulated 10 minutes. A first hour warms the caches (SQLite's
  page cache per pooled connection, the allocator's arenas: RSS rises by ~20 MB, then levels off);
  over the hour after it RSS must stay flat (growth ≤ 5 MB).

The multi-process figure (components over Redis, target p99 ≤ 5 ms) comes from
``latency_components.py`` (five ``cdb run --paper --component`` processes, real Redis and
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import math
import random
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

TARGET_P99_US = 200.0
TARGET_GROWTH_MB = 5.0
WARM_MINUTES = 60
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
SECOND = 1_000_000_000
T0 = 1_704_067_200 * SECOND


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class QueueFeed:
    def __init__(self) -> None:
        self.events: asyncio.Queue[Any] = asyncio.Queue()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def drive(minutes: int, seed: int) -> dict[str, Any]:
    from cdb_cli.engine.bus import InMemoryBus
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.events import Side, TradeTick
    from cdb_cli.kernel import open_store
    from cdb_cli.runtime.paper import PaperRuntime
    from cdb_cli.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="cdb-latency-"))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        paper_latency_ms=0,
        circuit_breaker_pct=Decimal(100),
        daily_drawdown_pct=Decimal(100),
        ema_fast=3,
        ema_slow=8,
        rsi_period=5,
        volume_factor=0.5,
    )
    store = open_store(settings, create_if_new=True)
    clock = TestClock(T0)
    feed = QueueFeed()
    runtime = PaperRuntime(
        settings,
        store=store,
        bus=InMemoryBus(),
        feed=feed,
        clock=clock,
        symbols=list(SYMBOLS),
        flush_interval_s=0.01,
    )
    taken: list[int] = [0]
    latencies: list[float] = []
    original_on_event = runtime._on_event

    def on_event(pipeline: Any, event: Any) -> None:
        taken[0] = time.perf_counter_ns()
        original_on_event(pipeline, event)

    runtime._on_event = on_event  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await runtime.started.wait()
    if runtime.pipeline is None:
        raise SystemExit("the runtime started without a pipeline")
    execution = runtime.pipeline.execution
    original_submit = execution.submit

    def submit(order: Any, **kwargs: Any) -> Any:
        latencies.append((time.perf_counter_ns() - taken[0]) / 1000)
        return original_submit(order, **kwargs)

    execution.submit = submit  # type: ignore[method-assign]
    rng = random.Random(seed)
    prices = dict.fromkeys(SYMBOLS, 100.0)
    memory: list[float] = []
    steps = minutes * 60 * 4
    for step in range(steps):
        ts = T0 + step * SECOND // 4
        clock.set_time(ts)
        for symbol in SYMBOLS:
            prices[symbol] *= math.exp(rng.gauss(0.0, 0.0008))
            feed.events.put_nowait(
                TradeTick(
                    symbol=symbol,
                    ts_event=ts,
                    source="bench",
                    price=Decimal(f"{prices[symbol]:.4f}"),
                    quantity=Decimal(f"{rng.lognormvariate(0.0, 1.0):.4f}"),
                    aggressor=Side.BUY,
                )
            )
        await drained(feed)
        if step % (10 * 60 * 4) == 0:
            memory.append(rss_mb())
    memory.append(rss_mb())
    stop.set()
    summary = await task
    store.close()
    return {"latencies": latencies, "memory": memory, "summary": summary}


async def drained(feed: QueueFeed) -> None:
    """Yield to the loop until it has taken every queued event (the producer keeps pace)."""
    while not feed.events.empty():  # noqa: ASYNC110 - pacing a producer, not waiting on a flag
        await asyncio.sleep(0)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> int:
    minutes = int(sys.argv[1]) if len(sys.argv) > 1 else 2 * WARM_MINUTES
    started = time.perf_counter()
    result = asyncio.run(drive(minutes, seed=11))
    elapsed = time.perf_counter() - started
    latencies, memory, summary = result["latencies"], result["memory"], result["summary"]
    rows: list[tuple[str, str, str, str]] = []
    failed = False
    if latencies:
        p99 = percentile(latencies, 0.99)
        ok = p99 <= TARGET_P99_US
        failed |= not ok
        rows.append(
            (
                f"tick -> order, one process ({len(latencies)} orders)",
                f"p50 {percentile(latencies, 0.5):.0f} us, p99 {p99:.0f} us, "
                f"max {max(latencies):.0f} us",
                f"p99 <= {TARGET_P99_US:.0f} us",
                "ok" if ok else "MISSED",
            )
        )
    else:
        failed = True
        rows.append(("tick -> order, one process", "no order was placed", "", "MISSED"))
    from latency_components import components_row  # the multi-process row (own module)

    row, ok = components_row()
    failed |= not ok
    rows.append(row)
    warm = memory[min(len(memory) - 1, WARM_MINUTES // 10)]
    growth = memory[-1] - warm
    ok = growth <= TARGET_GROWTH_MB
    failed |= not ok
    rows.append(
        (
            f"RSS, hour after a warm hour ({summary.market_events:,} events)",
            f"{memory[0]:.0f} -> {warm:.0f} -> {memory[-1]:.0f} MB (+{growth:.1f}), "
            f"wall {elapsed:.0f} s",
            f"+<= {TARGET_GROWTH_MB:.0f} MB",
            "ok" if ok else "MISSED",
        )
    )
    header = ("benchmark", "measured", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
