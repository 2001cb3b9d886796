"""Live-loop latency and memory, run on demand: ``python benchmarks/latency.py``.

Drives the real ``TradingLoop`` (SQLite store in a temp dir, in-process bus) with three hours of
trades for ten symbols replayed at speed (a seeded random walk, one trade per symbol every 500 ms
of simulated time, the clock moving with the trades). The strategy runs on 10-second bars with a
fast cross (EMA 2/4, RSI 3, volume SMA 5) and small orders (1 % risk / 50 % position risk, up to
100 % exposure), so about 2,300 orders are placed: the p99 rests on some twenty samples above it,
not on the one maximum a few dozen orders would give. Measured:

* tick → order: from the moment the loop takes the market event off its queue (``_on_event``) to
  the moment the order is handed to the execution client (``execution.submit``), for every event
  that leads to an order (the bar close whose signal the risk engine approved); p50 / p99 / max
  and the sample count. Target p99 ≤ 200 µs in one process. A bar closed by the clock (no event)
  is not counted.
* the same span in CPU time of the loop's thread (``time.thread_time_ns``): what the path costs
  without the time other processes take the CPU away. On a shared machine the wall p99 mostly
  measures the neighbours; this row is the one to compare changes with. The machine's load
  average is printed with the table.
* memory: the process's RSS every simulated 10 minutes, over three hours. The first two warm
  the caches (SQLite's page cache, the allocator's arenas): measured on 2026-12-05 over six
  hours, RSS went 82 -> 110 -> 112.1 MB in the first two hours, then 112.3, 112.5, 112.8 and
  113.5 MB at the end of the next four (+0.2 to +0.7 MB an hour). Judged on the hour after one
  warm hour, as until then, the same code grew 1.6-5.8 MB from run to run: the warm-up was not
  over. Over the third hour RSS must stay flat (growth ≤ 5 MB); the row prints RSS at the start
  and at each hour, and the growth of the Python heap (``sys.getallocatedblocks``) over the
  measured hour. What the heap gains in those hours is not objects the loop keeps: the
  collector's tracked objects differ by about 1,000 between the first and the third hour
  (counted by type with ``gc.get_objects``), none of them a growing table.

``--webhook=hang`` (or ``=fail``) posts every fill (``CDB_NOTIFY_FILLS``) to a local webhook
receiver that never answers (or answers 500): the alerts must not reach the tick → order path,
so the p99 must stay within the same target (issue 28). ``python benchmarks/latency.py 30
--webhook=hang`` runs 30 simulated minutes.

The multi-process figure (components over Redis, target p99 ≤ 5 ms) comes from
``latency_components.py`` (five ``cdb run --paper --component`` processes, real Redis and
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import math
import os
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
WARM_MINUTES = 120
SYMBOLS = tuple(
    f"{base}USDT"
    for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "TRX", "DOT", "LTC", "LINK")
)
TRADE_EVERY_NS = 1_000_000_000 // 2
BAR_NS = 10 * 1_000_000_000
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


def webhook_receiver(behaviour: str) -> str:
    """A local webhook receiver that hangs on every POST (``hang``) or answers 500 (``fail``);
    returns its URL. For ``--webhook``: the loop's alerts must never wait on it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if behaviour == "hang":
                time.sleep(3600)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


async def drive(minutes: int, seed: int, webhook: str | None = None) -> dict[str, Any]:
    from cdb_cli.engine.bus import InMemoryBus
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.events import Side, TradeTick
    from cdb_cli.kernel import open_store
    from cdb_cli.runtime.loop import TradingLoop
    from cdb_cli.runtime.paper import PaperVenue
    from cdb_cli.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="cdb-latency-"))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        paper_latency_ms=0,
        circuit_breaker_pct=Decimal(100),
        daily_drawdown_pct=Decimal(100),
        # A fast cross on 10 s bars trades often: over a thousand orders for a real p99.
        ema_fast=2,
        ema_slow=4,
        rsi_period=3,
        volume_period=5,
        volume_factor=0.5,
        # Small orders and room for all of them, so the exposure rule seldom rejects.
        max_exposure_pct=Decimal(100),
        risk_per_trade_pct=Decimal(1),
        position_risk_pct=Decimal(50),
    )
    alert = None
    if webhook is not None:  # every fill posted to a receiver that hangs or fails
        from pydantic import SecretStr

        from cdb_cli.kernel import notifier

        url = webhook_receiver(webhook)
        settings = settings.model_copy(
            update={"webhook_urls": SecretStr(f"json:{url}"), "notify_fills": True}
        )
        channels = notifier(settings)
        if channels is None:
            raise SystemExit("the webhook setting made no notifier")
        alert = channels.send_async
    store = open_store(settings, create_if_new=True)
    clock = TestClock(T0)
    feed = QueueFeed()
    runtime = TradingLoop(
        settings,
        venue=PaperVenue(),
        store=store,
        bus=InMemoryBus(),
        feed=feed,
        clock=clock,
        symbols=list(SYMBOLS),
        bar_interval_ns=BAR_NS,
        flush_interval_s=0.01,
        alert=alert,
    )
    taken: list[int] = [0, 0]  # wall, thread CPU; 0: outside _on_event
    latencies: list[float] = []
    cpu_times: list[float] = []
    original_on_event = runtime._on_event
    wall_ns, cpu_ns = time.perf_counter_ns, time.thread_time_ns

    def on_event(pipeline: Any, event: Any) -> None:
        taken[1] = cpu_ns()
        taken[0] = wall_ns()
        original_on_event(pipeline, event)
        taken[0] = 0

    runtime._on_event = on_event  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await runtime.started.wait()
    if runtime.pipeline is None:
        raise SystemExit("the runtime started without a pipeline")
    execution = runtime.pipeline.execution
    original_submit = execution.submit

    def submit(order: Any, **kwargs: Any) -> Any:
        if taken[0]:
            wall = wall_ns()
            cpu_times.append((cpu_ns() - taken[1]) / 1000)
            latencies.append((wall - taken[0]) / 1000)
        return original_submit(order, **kwargs)

    execution.submit = submit  # type: ignore[method-assign]
    rng = random.Random(seed)
    prices = dict.fromkeys(SYMBOLS, 100.0)
    memory: list[float] = []
    blocks: list[int] = []  # the Python heap (allocated blocks), sampled with RSS
    steps = minutes * 60 * SECOND // TRADE_EVERY_NS
    sample_every = 10 * 60 * SECOND // TRADE_EVERY_NS
    for step in range(steps):
        ts = T0 + step * TRADE_EVERY_NS
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
        if step % sample_every == 0:
            memory.append(rss_mb())
            blocks.append(sys.getallocatedblocks())
    memory.append(rss_mb())
    blocks.append(sys.getallocatedblocks())
    stop.set()
    summary = await task
    store.close()
    return {
        "latencies": latencies,
        "cpu": cpu_times,
        "memory": memory,
        "blocks": blocks,
        "summary": summary,
    }


async def drained(feed: QueueFeed) -> None:
    """Yield to the loop until it has taken every queued event (the producer keeps pace)."""
    while not feed.events.empty():  # noqa: ASYNC110 - pacing a producer, not waiting on a flag
        await asyncio.sleep(0)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def reference_us(runs: int = 200) -> float:
    """p50 of a fixed pure-Python workload (``sum(range(10_000))``) in µs: how fast this machine
    runs Python today. Shared VMs differ by 2-3x from day to day; compare figures taken on
    different days through this one."""
    times = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        sum(range(10_000))
        times.append((time.perf_counter_ns() - started) / 1000)
    return percentile(times, 0.5)


def main() -> int:
    reference = reference_us()
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--webhook=")]
    webhook = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--webhook=")), None)
    minutes = int(args[0]) if args else WARM_MINUTES + 60
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = asyncio.run(drive(minutes, seed=11, webhook=webhook))
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    latencies, memory, summary = result["latencies"], result["memory"], result["summary"]
    cpu_times = result["cpu"]
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
        rows.append(
            (
                "  the same, loop thread's CPU time",
                f"p50 {percentile(cpu_times, 0.5):.0f} us, "
                f"p99 {percentile(cpu_times, 0.99):.0f} us, max {max(cpu_times):.0f} us",
                "",
                "",
            )
        )
    else:
        failed = True
        rows.append(("tick -> order, one process", "no order was placed", "", "MISSED"))
    from latency_components import components_row, host_stalls  # the multi-process row

    stalls = host_stalls()
    row, ok = components_row()
    failed |= not ok
    rows.append(row)
    warm_at = min(len(memory) - 1, WARM_MINUTES // 10)
    warm = memory[warm_at]
    growth = memory[-1] - warm
    blocks = result["blocks"]
    heap_growth = (blocks[-1] - blocks[warm_at]) / blocks[warm_at] * 100
    ok = growth <= TARGET_GROWTH_MB
    failed |= not ok
    rows.append(
        (
            f"RSS, hour after two warm hours ({summary.market_events:,} events)",
            f"{' -> '.join(f'{mb:.1f}' for mb in memory[::6])} MB by the hour (+{growth:.1f} in "
            f"the last; Python heap {heap_growth:+.1f} %), wall {elapsed:.0f} s",
            f"+<= {TARGET_GROWTH_MB:.0f} MB",
            "ok" if ok else "MISSED",
        )
    )
    header = ("benchmark", "measured", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    cores = os.cpu_count() or 1
    print(
        f"load average {load_before:.2f} -> {load_after:.2f} on {cores} cores; "
        f"reference workload {reference:.0f} us (sum(range(10_000)), p50)"
    )
    print(stalls)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
