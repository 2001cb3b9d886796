"""The paper loop end to end against the MEXC simulator: the real WebSocket and REST clients,
protobuf frames, a real SQLite store; and `cdb run --paper` as a process that SIGTERM stops
cleanly and a restart resumes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from market_testkit import eventually, free_port, wait_until
from paper_testkit import simulator_session

from cdb_cli.engine.events import RiskDecision, TradingSignal
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
SECOND = 1_000_000_000


def test_paper_loop_trades_against_the_simulator(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'sim.db'}",
        ema_fast=2,
        ema_slow=4,
        rsi_period=2,
        volume_period=3,
        volume_factor=0.01,  # the simulator's volumes are its own: let the EMA cross decide
        paper_latency_ms=0,
        stale_data_seconds=5,
    )

    async def scenario() -> None:
        async with simulator_session(settings) as sim:
            store = sim.store
            # down, up (the buy), down (the exit): one price per bar
            moves = [-1, -1, -1, -1, -1, -1, 2, 2, 2, 2, 2, -2, -2, -2, -2, -2]
            price = Decimal(sim.server.exchange.markets[SYMBOL].price)
            for move in moves:
                price = price * (1 + Decimal(move) / 1000)
                await sim.server.step({SYMBOL: price})
                await asyncio.sleep(0.55)  # paces the market: one price per bar
            await eventually(lambda: bool(store.fills()), what="a fill stored")
            signals = store.events(TradingSignal)
            decisions = store.events(RiskDecision)
            orders, fills = store.orders(), store.fills()
        summary = sim.summary
        assert summary is not None
        assert summary.market_events > 0
        assert summary.bars >= len(moves) - 2
        assert signals
        assert len(decisions) == len(signals)
        assert any(d.verdict in ("approved", "reduced") for d in decisions), [
            [c.code for c in d.checks if not c.passed] for d in decisions
        ]
        assert orders
        assert fills

    asyncio.run(scenario())


def audits(url: str) -> list[str]:
    store = open_store(Settings(database_url=url))
    try:
        return [record.action for record in store.audits()]
    finally:
        store.close()


SEED_METRICS = (
    "trades_total",
    "trades_successful_total",
    "daily_drawdown_percent",
    "total_exposure_percent",
    "risk_checks_passed_total",
    "websocket_latency_ms",
    "redis_latency_ms",
    "database_connections_active",
)


def check_endpoints(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    health = httpx.get(f"{base}/health", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json()["run_id"].startswith("p")
    ready = httpx.get(f"{base}/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert metrics.status_code == 200
    names = {
        line.split("{")[0].split(" ")[0]
        for line in metrics.text.splitlines()
        if line and not line.startswith("#")
    }
    assert set(SEED_METRICS) <= names, set(SEED_METRICS) - names
    assert "market_events_total" in names


@pytest.mark.slow
def test_cdb_run_paper_stops_on_sigterm_and_restarts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'run.db'}"
    port = free_port()
    env = {
        **os.environ,
        "CDB_DATABASE_URL": url,
        "NO_COLOR": "1",
        "CDB_HTTP_PORT": str(port),
    }
    cdb = str(Path(sys.executable).parent / "cdb")
    for round_ in (1, 2):
        process = subprocess.Popen(
            [cdb, "run", "--paper", "--feed", "sim", "--symbols", SYMBOL],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            begun = lambda r=round_: audits_count(url, START_ACTION) == r  # noqa: E731
            wait_running(process, begun, "the start")
            wait_running(process, lambda: trading(port), "market events and /ready")  # a little
            check_endpoints(port)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            _out, err = process.communicate(timeout=15)
            assert time.monotonic() - started < 10
        finally:
            process.kill()
        assert process.returncode == 0, err
        # Off a terminal the log is JSON at INFO, every line with the run id, ending in the stop.
        lines = [json.loads(line) for line in err.splitlines()]
        run_id = lines[-1]["run_id"]
        assert run_id.startswith("p")
        assert all(line["run_id"] == run_id for line in lines), err
        assert lines[-1]["message"].startswith(f"Stopped run {run_id}: ")
        assert any(line["message"].startswith("Warmed BTCUSDT") for line in lines)
        assert audits(url).count(STOP_ACTION) == round_


def test_a_stop_while_mexc_is_unreachable_is_a_clean_exit(tmp_path: Path) -> None:
    """SIGTERM while the start waits for MEXC (nothing listens at its URL): exit 0, and the last
    line is a JSON log line like the rest, saying what the run still waited for."""
    port, nowhere = free_port(), free_port()
    env = {
        **os.environ,
        "CDB_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "CDB_MEXC_REST_URL": f"http://127.0.0.1:{nowhere}",
        "CDB_MEXC_WS_URL": f"ws://127.0.0.1:{nowhere}/ws",
        "NO_COLOR": "1",
        "CDB_HTTP_PORT": str(port),
    }
    cdb = str(Path(sys.executable).parent / "cdb")
    process = subprocess.Popen(
        [cdb, "run", "--paper", "--symbols", SYMBOL],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_running(process, lambda: starting(port), "/ready saying it is starting")
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    assert any("MEXC exchangeInfo failed" in line["message"] for line in lines), err
    run_id = lines[-1]["run_id"]
    assert lines[-1]["message"] == (
        f"Stopped run {run_id} before trading began, while waiting for MEXC exchangeInfo"
    )


def starting(port: int) -> bool:
    """The run's health server answers, and /ready says it is still starting."""
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
    except httpx.HTTPError:
        return False
    return ready.status_code == 503 and "starting" in ready.text


def wait_running(process: subprocess.Popen[str], check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` (60 s at most); fail at once if ``process`` exits."""

    def running_and_checked() -> bool:
        assert process.poll() is None, process.communicate()
        return check()

    wait_until(running_and_checked, 60, what)


def trading(port: int) -> bool:
    """The run has taken market events and says it is ready."""
    base = f"http://127.0.0.1:{port}"
    try:
        ready = httpx.get(f"{base}/ready", timeout=5)
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
    except httpx.HTTPError:
        return False
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("market_events_total{")
    ]
    return ready.status_code == 200 and sum(counted) > 0


def audits_count(url: str, action: str) -> int:
    try:
        return audits(url).count(action)
    except Exception:  # the database is created by the process itself
        return 0


@pytest.mark.slow
def test_sigusr1_halts_a_running_cdb_run_and_the_store_says_so(tmp_path: Path) -> None:
    from cdb_cli.engine.risk import TradingState
    from cdb_cli.engine.runs import HALT_ACTION, STATE_ACTION, trading_status

    url = f"sqlite:///{tmp_path / 'run.db'}"
    env = {
        **os.environ,
        "CDB_DATABASE_URL": url,
        "NO_COLOR": "1",
        "CDB_HTTP_PORT": str(free_port()),
    }
    cdb = str(Path(sys.executable).parent / "cdb")
    process = subprocess.Popen(
        [cdb, "run", "--paper", "--feed", "sim", "--symbols", SYMBOL],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_running(process, lambda: audits_count(url, START_ACTION) == 1, "the start")
        process.send_signal(signal.SIGUSR1)
        # halted, not stopped
        wait_running(process, lambda: audits_count(url, STATE_ACTION) == 1, "the halt stored")
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    store = open_store(Settings(database_url=url))
    try:
        (halt,) = store.audits(action=HALT_ACTION)
        (change,) = store.audits(action=STATE_ACTION)
        (start,) = store.audits(action=START_ACTION)
        status = trading_status(store)
    finally:
        store.close()
    assert halt.run_id == start.run_id
    assert halt.detail == {"reason": "SIGUSR1 from the operator", "flatten": "no", "via": "sigusr1"}
    assert change.detail["state"] == "halted"
    assert status.state is TradingState.HALTED
    assert f"SIGUSR1: halting run {start.run_id}" in err


def test_a_paper_run_with_a_loose_env_file_says_so_loudly(tmp_path: Path) -> None:
    """`cdb run --paper` starts with a `.env` others may read, but its first line says so and
    that the live gate would refuse it (issue 27)."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"CDB_DATABASE_URL=sqlite:///{tmp_path / 'run.db'}\n")
    env_file.chmod(0o644)
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1", "CDB_HTTP_PORT": str(port)}
    cdb = str(Path(sys.executable).parent / "cdb")
    process = subprocess.Popen(
        [cdb, "run", "--paper", "--feed", "sim", "--symbols", SYMBOL],
        env=env,
        cwd=tmp_path,  # the .env of the working folder is read, as for every command
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        wait_running(process, lambda: trading(port), "market events and /ready")
        process.send_signal(signal.SIGTERM)
        _out, _err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert first.startswith("WARNING: .env: readable by group/others (mode 0644)"), first
    assert "cdb run --live refuses to start with it" in first
    assert process.returncode == 0
