"""kill -9 of `cdb run --live` at random points, 20 times, against `cdb sim-exchange` in its own
process: after every restart no order is duplicated, no fill is lost, the ledger's invariants
hold, and the store and the simulator agree to the last unit.

Odd trials kill the moment the run has saved a new order (it sends it right after, to a venue
that answers 20 ms late): between save and send, or between send and answer. Even trials kill at
a random time. The last run is stopped with SIGTERM after it has settled what the kills left."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from market_testkit import free_port, wait_until

from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState
from cdb_cli.engine.records import OPEN_ORDER_STATUSES
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION
from cdb_cli.services.restore import LIVE_STARTING_CASH_KEY
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
KEY = "mx0vglKillTest001"
SECRET = "fedcba9876543210fedcba9876543210"
TRIALS = 20
CDB = str(Path(sys.executable).parent / "cdb")


def starts(url: str) -> int:
    try:
        store = open_store(Settings(database_url=url))
    except Exception:  # the first run creates the database
        return 0
    try:
        return sum(1 for a in store.audits() if a.action == START_ACTION)
    except Exception:
        return 0
    finally:
        store.close()


def wait_started(process: subprocess.Popen[bytes], log: Path, url: str, count: int) -> None:
    def started() -> bool:
        if process.poll() is not None:
            err = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"cdb run --live exited {process.returncode}: {err}")
        return starts(url) >= count

    wait_until(started, 60, "cdb run --live to start")


def start_live(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [CDB, "run", "--live", "--confirm-live"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def order_count(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
        (count,) = con.execute("SELECT count(*) FROM orders").fetchone()
        return int(count)


def wait_for_new_order(db: Path, *, timeout_s: float) -> None:
    """Return as soon as the run has saved one more order (it sends it right after)."""
    before = order_count(db)
    deadline = time.monotonic() + timeout_s
    while order_count(db) == before and time.monotonic() < deadline:
        time.sleep(0.002)


async def venue_state(
    rest_url: str,
) -> tuple[list[VenueFill], dict[str, Decimal], list[VenueOrderState]]:
    async with MexcHttpClient(rest_url, Credentials(KEY, SECRET)) as http:
        client = MexcExecutionClient(http)
        return (
            await client.fills(SYMBOL),
            await client.balances(),
            await client.open_orders([SYMBOL]),
        )


def store_matches_venue(url: str, rest_url: str) -> bool:
    """Nothing is left in doubt: every venue trade is a stored fill, no order is PENDING_NEW,
    and the orders open in the store are the ones open at the venue."""
    trades, _, venue_open = asyncio.run(venue_state(rest_url))
    store = open_store(Settings(database_url=url))
    try:
        orders, fills = store.orders(), store.fills()
    finally:
        store.close()
    still_open = {o.client_order_id for o in orders if o.status in OPEN_ORDER_STATUSES}
    return (
        {f.fill_id for f in fills} == {t.fill_id for t in trades}
        and not [o for o in orders if o.status == "PENDING_NEW"]
        and still_open == {o.client_order_id for o in venue_open}
    )


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    sim_port, http_port = free_port(), free_port()
    db = tmp_path / "live.db"
    url = f"sqlite:///{db}"
    rest_url, ws_url = f"http://127.0.0.1:{sim_port}", f"ws://127.0.0.1:{sim_port}/ws"
    base_env = {
        **os.environ,
        "NO_COLOR": "1",
        "CDB_MEXC_API_KEY": KEY,
        "CDB_MEXC_API_SECRET": SECRET,
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    sim_log = (logs / "sim.log").open("wb")
    sim = subprocess.Popen(
        [
            CDB,
            "sim-exchange",
            "--port",
            str(sim_port),
            "-s",
            SYMBOL,
            "--seed",
            "5",
            "--balance",
            "USDT=10000",
            "--tick-interval",
            "0.05",
            "--history-days",
            "0.2",
            "--delay",
            "0.02",  # a slower venue: kills land inside requests more often
        ],
        env=base_env,
        stdout=subprocess.DEVNULL,
        stderr=sim_log,
        cwd=tmp_path,
    )
    env = {
        **base_env,
        "CDB_DATABASE_URL": url,
        "CDB_MEXC_REST_URL": rest_url,
        "CDB_MEXC_WS_URL": ws_url,
        "CDB_HTTP_PORT": str(http_port),
        "CDB_SYMBOLS": SYMBOL,
        "CDB_BAR_SECONDS": "1",
        "CDB_EMA_FAST": "2",
        "CDB_EMA_SLOW": "3",
        "CDB_RSI_PERIOD": "2",
        "CDB_RSI_THRESHOLD": "0",
        "CDB_VOLUME_PERIOD": "2",
        "CDB_VOLUME_FACTOR": "0.01",
        "CDB_STALE_DATA_SECONDS": "10",
        "CDB_MAX_SPREAD_PCT": "1",
        "CDB_DAILY_DRAWDOWN_PCT": "50",
        "CDB_CIRCUIT_BREAKER_PCT": "60",
        "CDB_MAX_EXPOSURE_PCT": "20",
        "CDB_MIN_POSITION_QUOTE": "20",
        "CDB_MAX_POSITION_QUOTE": "500",
        "CDB_RISK_PER_TRADE_PCT": "2",
        "CDB_POSITION_RISK_PCT": "5",
    }
    rng = random.Random(20261123)
    try:

        def sim_up() -> bool:
            assert sim.poll() is None, "the simulator exited"
            try:
                return httpx.get(f"{rest_url}/api/v3/ping", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(sim_up, 30, "the simulator to start")
        for trial in range(1, TRIALS + 1):
            log = logs / f"run-{trial}.log"
            process = start_live(env, tmp_path, log)
            try:
                wait_started(process, log, url, trial)
                if trial % 2:  # the dangerous moment: an order was just saved, not yet answered
                    # a cross-up on 1-second bars can take a while: once, 20 s was not enough
                    wait_for_new_order(db, timeout_s=45)
                else:
                    time.sleep(rng.uniform(0.3, 5.0))  # a random point: paces the kills only
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
        log = logs / "final.log"
        final = start_live(env, tmp_path, log)
        try:
            wait_started(final, log, url, TRIALS + 1)
            # the stream and polling settle what the kills left open
            wait_until(
                lambda: store_matches_venue(url, rest_url), 60, "the store to match the venue"
            )
            final.send_signal(signal.SIGTERM)
            final.wait(20)
        finally:
            final.kill()
        assert final.returncode == 0, log.read_text(errors="replace")[-3000:]
        trades, balances, venue_open = asyncio.run(venue_state(rest_url))
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(10)
        sim_log.close()

    store = open_store(Settings(database_url=url))
    try:
        orders = {o.client_order_id: o for o in store.orders()}
        fills = store.fills()
        cash = Decimal(store.get_config(LIVE_STARTING_CASH_KEY) or "0")
        settled = [
            (int(a.detail.get("reconciled_orders", "0")), int(a.detail.get("booked_fills", "0")))
            for a in store.audits()
            if a.action == START_ACTION
        ]
    finally:
        store.close()
    print(
        f"kill -9 trials: {TRIALS}, orders {len(orders)}, fills {len(fills)}, starts that "
        f"settled orders {sum(1 for o, _ in settled if o)}, booked missing fills "
        f"{sum(f for _, f in settled)}"
    )
    assert len(orders) >= TRIALS // 2, "too few orders for the kills to land among them"
    assert trades, "no order was filled in 20 trials: the scenario does not trade"
    # no order duplicated: one venue order per client order id, and every one is ours
    venue_orders: dict[str, set[str]] = defaultdict(set)
    for trade in trades:
        venue_orders[trade.client_order_id].add(trade.venue_order_id)
    assert all(len(ids) == 1 for ids in venue_orders.values()), venue_orders
    assert set(venue_orders) <= set(orders)
    # no fill lost, none invented: the store's fills are the venue's trades, unit for unit
    by_id = {f.fill_id: f for f in fills}
    assert len(by_id) == len(fills)
    assert set(by_id) == {t.fill_id for t in trades}
    for trade in trades:
        fill = by_id[trade.fill_id]
        assert (fill.quantity, fill.price, fill.fee, fill.fee_asset, fill.client_order_id) == (
            trade.quantity,
            trade.price,
            trade.fee,
            trade.fee_asset,
            trade.client_order_id,
        )
    # nothing left in doubt: no order is PENDING_NEW, open ones are open at the venue too
    assert not [o for o in orders.values() if o.status == "PENDING_NEW"]
    still_open = {o.client_order_id for o in orders.values() if o.status in OPEN_ORDER_STATUSES}
    assert still_open == {o.client_order_id for o in venue_open}
    # the ledger from the stored fills: its invariants hold and it equals the account
    portfolio = Portfolio.restore(cash, [], None, fills)
    assert portfolio.cash == balances.get("USDT", Decimal(0))
    assert portfolio.quantity(SYMBOL) == balances.get("BTC", Decimal(0))
    assert portfolio.cash >= 0
    assert portfolio.quantity(SYMBOL) >= 0
