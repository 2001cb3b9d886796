"""`cdb run` under systemd (Type=notify): READY=1 once it trades, WATCHDOG=1 while its loop makes
progress, STOPPING=1 on SIGTERM — heard on a real datagram socket set as NOTIFY_SOCKET, from the
real process against the simulated market; and no watchdog for a loop that stopped moving."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from market_testkit import free_port

from cdb_cli.adapters.systemd import ServiceNotifier
from cdb_cli.runtime.service import tell_service_manager


def messages(sock: socket.socket, until: str, timeout_s: float = 60.0) -> list[dict[str, str]]:
    """Every datagram until one holds ``until`` (``KEY=value``), or fail after ``timeout_s``."""
    got: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout_s
    key, value = until.split("=", 1)
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            break
        got.append(dict(line.split("=", 1) for line in data.split("\n")))
        if got[-1].get(key) == value:
            return got
    raise AssertionError(f"no {until} in {got}")


def test_cdb_run_tells_systemd_it_is_ready_alive_and_stopping(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = {
        **os.environ,
        "CDB_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "CDB_HTTP_PORT": str(free_port()),
        "NO_COLOR": "1",
        "NOTIFY_SOCKET": path,
        "WATCHDOG_USEC": "1000000",  # a ping at least every second, so twice a second
    }
    cdb = str(Path(sys.executable).parent / "cdb")
    process = subprocess.Popen(
        [cdb, "run", "--paper", "--feed", "sim", "--symbols", "BTCUSDT"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = messages(sock, "READY=1")
        assert "trading BTCUSDT (paper)" in first[-1]["STATUS"]
        assert not any("WATCHDOG" in m for m in first[:-1])  # no ping before it is ready
        pings = [messages(sock, "WATCHDOG=1", 5.0) for _ in range(3)]
        assert len(pings) == 3
        process.send_signal(signal.SIGTERM)
        last = messages(sock, "STOPPING=1", 15.0)
        assert last[-1]["STATUS"].startswith("stopping run p")
        _out, err = process.communicate(timeout=15)
    finally:
        process.kill()
        sock.close()
    assert process.returncode == 0, err


def test_a_loop_that_stopped_moving_gets_no_watchdog(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The loop's last pass (``last_beat``) is older than WatchdogSec: no WATCHDOG=1 is sent, one
    error says why, and systemd will restart the service."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)

    async def scenario() -> list[str]:
        manager = ServiceNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
        loop = asyncio.get_running_loop()
        started, stop = asyncio.Event(), asyncio.Event()
        started.set()
        stuck = SimpleNamespace(
            started=started,
            symbols=["BTCUSDT"],
            venue=SimpleNamespace(mode="paper"),
            run_id="p-test",
            last_beat=loop.time() - 60.0,  # its last pass a minute ago
            readiness=lambda: [],
        )
        task = asyncio.create_task(tell_service_manager(manager, stuck, stop))  # type: ignore[arg-type]
        heard: list[str] = []
        while "stopping" not in " ".join(heard):
            data = await loop.sock_recv(sock, 4096)
            heard.append(data.decode())
            if any("STATUS=trading, ready" in h for h in heard):
                stop.set()
        await task
        return heard

    sock.setblocking(False)
    try:
        heard = asyncio.run(scenario())
    finally:
        sock.close()
    assert heard[0].startswith("READY=1")
    assert not any("WATCHDOG=1" in h for h in heard)
    assert "no progress for 60 s" in caplog.text
