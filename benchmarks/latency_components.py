"""Tick → order latency with the components in separate processes over the real Redis.

``python benchmarks/latency_components.py [SECONDS]`` (``latency.py`` prints it as its
multi-process row). Needs Redis and PostgreSQL (``CDB_TEST_REDIS_URL`` /
``CDB_TEST_POSTGRES_URL``, loopback by default); a fresh database is created and dropped.

Set-up: ``cdb sim-exchange`` (three symbols, each trading on its own random clock, a trade every
50 ms on average, as a real market's symbols do not trade in the same instant: until 2026-12 the
simulator stepped them in lockstep and all three bars closed in one burst) and the five
``cdb run --paper --component`` processes with 1-second bars and EMA(1)/EMA(2), so that many bars
end in an approved order (small orders and 100 % exposure, as in the one-process row); three
minutes give about 180 orders, so the p99 is not just the slowest one. The simulator stands in
for MEXC, which runs on other machines: it runs at the lowest CPU priority (``nice -n 19``) so it
does not take one of this host's CPUs from the components at the very moments it sends. Measured,
for each approved order: from the moment the ``marketdata`` process takes the trade that closes
the bar off its feed queue to the moment the ``execution`` process receives the approval (both
write ``time.time_ns()`` stamps by bar, ``--latency-log``; same host, same clock). That path is
marketdata → Redis → signals → Redis → risk → Redis → execution. Target p99 ≤ 5 ms.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_P99_MS = 5.0
DEFAULT_SECONDS = 180.0
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
CONSUMERS = ("signals", "risk", "execution", "portfolio")
REDIS_URL = os.environ.get("CDB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "CDB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CDB = str(Path(sys.executable).parent / "cdb")


def _free_port(size: int = 1) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        try:
            for offset in range(size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _stamps(path: Path) -> dict[str, int]:
    stamps: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            bar_id, _, ns = line.partition(" ")
            stamps.setdefault(bar_id, int(ns))
    return stamps


def measure(seconds: float = DEFAULT_SECONDS) -> dict[str, list[float]]:
    """Run the components for ``seconds``; return the latencies in ms from the tick to the
    ``signals`` and ``risk`` publications and to the order (``execution``), by approved bar."""
    from sqlalchemy import create_engine, make_url

    from cdb_cli.kernel import open_store
    from cdb_cli.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="cdb-latency-components-"))
    name = f"cdb_bench_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    database = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        open_store(Settings(database_url=database), create_if_new=True).close()
        port = _free_port()
        symbols = [arg for symbol in SYMBOLS for arg in ("--symbol", symbol)]
        processes.append(
            subprocess.Popen(
                [
                    *("nice", "-n", "19"),
                    CDB,
                    "sim-exchange",
                    "--port",
                    str(port),
                    *symbols,
                    "--tick-interval",
                    "0.05",
                    "--history-days",
                    "0.05",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=folder,
            )
        )
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "CDB_DATABASE_URL": database,
            "CDB_BUS_URL": REDIS_URL,
            "CDB_BUS_PREFIX": f"cdbbench{secrets.token_hex(4)}",
            "CDB_MEXC_REST_URL": f"http://127.0.0.1:{port}",
            "CDB_MEXC_WS_URL": f"ws://127.0.0.1:{port}/ws",
            "CDB_SYMBOLS": ",".join(SYMBOLS),
            "CDB_HTTP_PORT": str(_free_port(5)),
            "CDB_BAR_SECONDS": "1",
            "CDB_EMA_FAST": "1",
            "CDB_EMA_SLOW": "2",
            "CDB_RSI_PERIOD": "2",
            "CDB_VOLUME_PERIOD": "2",
            "CDB_VOLUME_FACTOR": "0.01",
            "CDB_CIRCUIT_BREAKER_PCT": "100",
            "CDB_DAILY_DRAWDOWN_PCT": "100",
            # Small orders and room for all of them (as the one-process row): more samples.
            "CDB_MAX_EXPOSURE_PCT": "100",
            "CDB_RISK_PER_TRADE_PCT": "1",
            "CDB_POSITION_RISK_PCT": "50",
        }
        time.sleep(2.0)  # the simulator binds
        logs = {c: folder / f"{c}.stamps" for c in ("marketdata", "signals", "risk", "execution")}

        def start(component: str) -> None:
            command = [CDB, "run", "--paper", "--component", component]
            if component in logs:
                command += ["--latency-log", str(logs[component])]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    cwd=folder,
                    stdout=subprocess.DEVNULL,
                    stderr=(folder / f"{component}.log").open("w"),
                )
            )

        for component in CONSUMERS:
            start(component)
        time.sleep(8.0)  # the consumer groups exist before the first market event
        start("marketdata")
        time.sleep(seconds)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    ticks, orders = _stamps(logs["marketdata"]), _stamps(logs["execution"])
    result: dict[str, list[float]] = {}
    for name in ("signals", "risk", "execution"):
        stamps = _stamps(logs[name])
        result[name] = [(stamps[b] - ticks[b]) / 1e6 for b in orders if b in ticks and b in stamps]
    return result


_HOP = """
import asyncio, sys, time
from cdb_cli.adapters.redis_wire import WireConnection
url, prefix, role = sys.argv[1], sys.argv[2], sys.argv[3]
reads = {"1": ["s0"], "2": ["s0", "s1"], "3": ["s0", "s2"], "x": ["s0"]}[role]
async def pump(topic, queue, wake):
    wire = WireConnection(url)
    while True:
        reply = await wire.execute("XREADGROUP", "GROUP", role, "c", "COUNT", 200, "BLOCK", 250,
                                   "STREAMS", prefix + topic, ">", timeout_s=5)
        for _, flat in reply[0][1] if reply else ():
            queue.append((topic, dict(zip(flat[::2], flat[1::2]))))
        if reply:
            wake.set()
async def main():
    publisher, queue, wake = WireConnection(url), [], asyncio.Event()
    tasks = [asyncio.create_task(pump(topic, queue, wake)) for topic in reads]
    while all(not t.done() for t in tasks):
        wake.clear()
        if not queue:
            try:
                await asyncio.wait_for(wake.wait(), 0.2)
            except TimeoutError:
                continue
        items, queue[:] = list(queue), []
        out = [(f"s{role}", fields) for topic, fields in items
               if topic == f"s{int(role) - 1}" and b"t" in fields] if role in "12" else []
        for topic, fields in items:
            if role == "3" and topic == "s2" and b"t" in fields:
                print((time.time_ns() - int(fields[b"t"])) / 1e6, flush=True)
        if out:
            commands = [("MULTI",)]
            for topic, fields in out:
                add = ("XADD", prefix + topic, "MAXLEN", "~", 10000, "*")
                commands += [(*add, "t", fields[b"t"]), (*add, "progress", 1)]
            await publisher.pipeline([*commands, ("EXEC",)])
try:
    asyncio.run(main())
except Exception:
    pass  # stopped, its streams deleted
"""


def bare_chain(seconds: float = 30.0) -> list[float]:
    """Latencies in ms through the same three Redis hops with no component code: a source
    process XADDs five entries every 50 ms and, every second, three "bars"; four bare Python
    processes (asyncio, the bus's own lean connection, one blocking pump per stream, as the
    components) read that stream; the first passes each bar on (two XADDs in MULTI/EXEC, as
    ``signals``), the second passes that on, the third takes it. What this host gives the
    components' path before any component work."""
    import asyncio

    import redis.asyncio as aioredis

    prefix = f"cdbbench{secrets.token_hex(4)}:"

    async def run() -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            for key, group in (
                ("s0", "1"),
                ("s0", "2"),
                ("s0", "3"),
                ("s0", "x"),
                ("s1", "2"),
                ("s2", "3"),
            ):
                await client.xgroup_create(prefix + key, group, id="$", mkstream=True)
            await asyncio.sleep(3.0)  # the hops import and start reading
            loop = asyncio.get_running_loop()
            end, tick = loop.time() + seconds, 0
            while loop.time() < end:
                tick += 1
                async with client.pipeline(transaction=True) as pipe:
                    if tick % 20 == 0:
                        for _ in SYMBOLS:
                            pipe.xadd(prefix + "s0", {"t": time.time_ns()}, maxlen=10000)
                    for _ in range(5):
                        pipe.xadd(prefix + "s0", {"trade": "x" * 200}, maxlen=10000)
                    await pipe.execute()
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
        finally:
            await client.delete(*(prefix + f"s{n}" for n in range(3)))
            await client.aclose()

    hops = [
        subprocess.Popen(
            [sys.executable, "-c", _HOP, REDIS_URL, prefix, role],
            stdout=subprocess.PIPE if role == "3" else subprocess.DEVNULL,
        )
        for role in ("1", "2", "3", "x")
    ]
    try:
        asyncio.run(run())
    finally:
        for hop in hops:
            hop.terminate()
        output = hops[2].communicate(timeout=10)[0]
        for hop in hops:
            hop.wait(10)
    return [float(line) for line in output.split()]


_SLEEPER = """
import os, sys, time
cpu, seconds = int(sys.argv[1]), float(sys.argv[2])
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {cpu})
overs, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    started = time.perf_counter_ns()
    time.sleep(0.001)
    overs.append(time.perf_counter_ns() - started - 1_000_000)
print(sum(1 for o in overs if o > 1_000_000), max(overs) / 1e6)
"""


def host_stalls(seconds: float = 20.0) -> str:
    """How often this host itself holds a process back: one sleeper per CPU (pinned), asleep
    1 ms at a time for ``seconds`` with nothing else of ours running; how many of its sleeps
    overran by more than 1 ms, and the longest overrun (20 s by default). On the 2-vCPU VM of
    2026-12-05 this was 57 and 4 (max 18 and 11 ms) in a 30-s run while idle: stalls of the VM
    that land on the components' three hops now and then, whatever the components do."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    sleepers = [
        subprocess.Popen(
            [sys.executable, "-c", _SLEEPER, str(cpu), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for cpu in cpus
    ]
    parts = []
    for cpu, sleeper in zip(cpus, sleepers, strict=True):
        try:
            count, longest = sleeper.communicate(timeout=seconds + 30)[0].split()
            parts.append(f"CPU{cpu} {count} (max {float(longest):.1f} ms)")
        except (subprocess.TimeoutExpired, ValueError):  # the sleeper failed: say so, go on
            sleeper.kill()
            parts.append(f"CPU{cpu} not measured (sleeper exit {sleeper.wait()})")
    return (
        f"host stalls: sleeps of 1 ms that overran by > 1 ms in {seconds:.0f} s, idle: "
        + ", ".join(parts)
    )


def _over(latencies: list[float]) -> str:
    """How many are above the target: with ~170 orders, the p99 is the second slowest, so one or
    two host stalls decide it; the count says how many orders that was."""
    over = sum(1 for latency in latencies if latency > TARGET_P99_MS)
    return f"{over} above {TARGET_P99_MS:.0f} ms"


def components_row(seconds: float = DEFAULT_SECONDS) -> tuple[tuple[str, str, str, str], bool]:
    """The benchmark table's row for the components over Redis, and whether the target held."""
    try:
        measured = measure(seconds)
        latencies = measured["execution"]
    except Exception as e:  # no Redis or PostgreSQL here: say so in the row
        message = f"not measured: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        return ("tick -> order, components over Redis", message, "p99 <= 5 ms", "MISSED"), False
    if not latencies:
        row = ("tick -> order, components over Redis", "no order", "p99 <= 5 ms", "MISSED")
        return row, False
    p99 = _percentile(latencies, 0.99)
    ok = p99 <= TARGET_P99_MS
    floor = bare_chain() or [0.0]
    signal = _percentile(measured["signals"] or [0.0], 0.5)
    approval = _percentile(measured["risk"] or [0.0], 0.5)
    return (
        f"tick -> order, components over Redis ({len(latencies)} orders; trades at random "
        "times per symbol)",
        f"p50 {_percentile(latencies, 0.5):.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms"
        f" ({_over(latencies)}); p50 to the signal {signal:.2f} ms, to the approval "
        f"{approval:.2f} ms (the same three hops with no component code on this host, "
        f"{len(floor)} bars: p50 {_percentile(floor, 0.5):.2f} ms, p99 "
        f"{_percentile(floor, 0.99):.2f} ms, {_over(floor)})",
        f"p99 <= {TARGET_P99_MS:.0f} ms",
        "ok" if ok else "MISSED",
    ), ok


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SECONDS
    stalls = host_stalls()
    row, ok = components_row(seconds)
    print("  ".join(row))
    print(stalls)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
