"""What the tests of components as OS processes share (``cdb run --paper --component NAME``
over a real Redis and PostgreSQL, against `cdb sim-exchange`): starting them, waiting while they
run (failing with a component's log when one exits), stopping them, and whether the streams are
drained. ``pythonpath`` in pyproject.toml makes this module importable from every test."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from market_testkit import wait_until

from cdb_cli.kernel import open_store
from cdb_cli.settings import Settings

CDB = str(Path(sys.executable).parent / "cdb")
CONSUMERS = ("signals", "risk", "execution", "portfolio")
TUNING = {
    "CDB_BAR_SECONDS": "1",
    "CDB_EMA_FAST": "2",
    "CDB_EMA_SLOW": "4",
    "CDB_RSI_PERIOD": "2",
    "CDB_VOLUME_PERIOD": "3",
    "CDB_VOLUME_FACTOR": "0.01",  # the simulator's volumes are its own: let the cross decide
    "CDB_PAPER_LATENCY_MS": "120",
    "CDB_STALE_DATA_SECONDS": "5",
}


def free_port_block(size: int) -> int:
    """A base port with ``size`` free ports after it (the components' health servers), below the
    kernel's ephemeral range: a port found free there can be taken by any outgoing connection
    before the component binds it (seen once in CI)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            ephemeral_low = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, max(20001, ephemeral_low - size))
        try:
            for offset in range(size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no block of free ports")


def audits(url: str, action: str) -> list[dict[str, str]]:
    store = open_store(Settings(database_url=url))
    try:
        return [record.detail for record in store.audits(action=action)]
    finally:
        store.close()


def wait_while_running(
    condition: Callable[[], bool], timeout_s: float, what: str, processes: list[Any]
) -> None:
    """``wait_until``, failing at once (with its log) when one of ``processes`` exits."""

    def check() -> bool:
        for process in processes:
            if process.poll() is not None:
                _, err = process.communicate()
                if err is None:  # a component: its log is a file named after it
                    log = Path(process.args[-1] + ".log")
                    err = log.read_text(encoding="utf-8") if log.exists() else ""
                pytest.fail(f"{process.args} exited {process.returncode}: {err[-3000:]}")
        return condition()

    wait_until(check, timeout_s, what)


def stop(process: subprocess.Popen[str], log: Path) -> str:
    """SIGTERM, then the process's log (a file: at INFO a pipe nobody reads could fill up)."""
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        process.wait(timeout=15)
    finally:
        process.kill()
    elapsed = time.monotonic() - started
    err = log.read_text(encoding="utf-8")
    assert process.returncode == 0, err[-3000:]
    assert elapsed < 10, f"{process.args} took {elapsed:.1f} s to stop"
    return err


def drained(redis_url: str, prefix: str) -> bool:
    """Every consumer group has read its stream to the end and acknowledged it all."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for key in client.scan_iter(f"{prefix}:*"):
            if ":dead:" in key:
                continue
            for group in client.xinfo_groups(key):
                if group["lag"] or group["pending"]:
                    return False
        return True
    finally:
        client.close()


def sim_exchange(port: int, symbols: tuple[str, ...], cwd: Path) -> subprocess.Popen[str]:
    """`cdb sim-exchange` on ``port``: a seeded market, a step every 50 ms."""
    pairs = [arg for symbol in symbols for arg in ("-s", symbol)]
    return subprocess.Popen(
        [CDB, "sim-exchange", "--port", str(port), *pairs, "--seed", "11",
         "--tick-interval", "0.05", "--history-days", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )  # fmt: skip


def sim_up(rest: str) -> bool:
    try:
        return httpx.get(f"{rest}/api/v3/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Components:
    """The component processes of one test, each logging to ``NAME.log`` in ``cwd``."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, component: str) -> None:
        with (self.cwd / f"{component}.log").open("w") as log:
            self.processes[component] = subprocess.Popen(
                [CDB, "run", "--paper", "--component", component],
                env=self.env, cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=log, text=True,
            )  # fmt: skip

    def running(self) -> list[subprocess.Popen[str]]:
        return list(self.processes.values())

    def stop(self, component: str) -> str:
        """SIGTERM it (exit 0 within 10 s); its log."""
        return stop(self.processes.pop(component), self.cwd / f"{component}.log")

    def log(self, component: str) -> str:
        return (self.cwd / f"{component}.log").read_text(encoding="utf-8")

    def kill_all(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.communicate()
        self.processes.clear()
