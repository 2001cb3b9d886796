"""The five components ride out outages (issue 22): as OS processes over a PostgreSQL and a Redis
of the test's own (the shared servers are never stopped), against `cdb sim-exchange`, the test
stops PostgreSQL for ``CDB_OUTAGE_SECONDS`` (60 by default) mid-trading, then Redis as long.

No component exits. During each outage every component's ``/ready`` answers 503 naming the
dependency and its metrics show it down; both recover afterwards. After the feed stops, every
stream drains within 60 s; every approval has exactly one order (placed, or expired by the
late-approval rule), every filled order its fills, and the positions table equals the ledger
recomputed from the fills.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from market_testkit import free_port
from outage_testkit import PrivatePostgres, PrivateRedis
from processes_testkit import (
    CONSUMERS,
    TUNING,
    Components,
    audits,
    drained,
    free_port_block,
    sim_exchange,
    sim_up,
    wait_while_running,
)

from cdb_cli.adapters.sql.migrations import upgrade
from cdb_cli.engine.events import OrderApproved, RiskDecision, TradingSignal
from cdb_cli.kernel import open_store
from cdb_cli.runtime.components import COMPONENTS
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.settings import Settings

SYMBOLS = ("BTCUSDT", "ETHUSDT")
OUTAGE_S = float(os.environ.get("CDB_OUTAGE_SECONDS", "60"))

pytestmark = [pytest.mark.infra, pytest.mark.slow]


class Health:
    """Each component's ``/ready`` and ``/metrics``."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports

    def ready(self, component: str) -> tuple[int, list[str]]:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.ports[component]}/ready", timeout=5)
        except httpx.HTTPError as e:
            return 0, [f"no answer: {e}"]
        return answer.status_code, list(answer.json().get("reasons", []))

    def dependency_up(self, component: str, dependency: str) -> float | None:
        answer = httpx.get(f"http://127.0.0.1:{self.ports[component]}/metrics", timeout=5)
        wanted = f'dependency_up{{dependency="{dependency}"}}'
        for line in answer.text.splitlines():
            if line.startswith(wanted):
                return float(line.split()[-1])
        return None

    def all_say(self, reason: str) -> bool:
        """Every component answers 503 with ``reason`` among its reasons."""
        for component in COMPONENTS:
            status, reasons = self.ready(component)
            if status != 503 or reason not in reasons:
                return False
        return True

    def all_ready(self) -> bool:
        return all(self.ready(component)[0] == 200 for component in COMPONENTS)


def outage(
    server: PrivatePostgres | PrivateRedis,
    dependency: str,
    reason: str,
    health: Health,
    running: Callable[[], list[Any]],
) -> None:
    """Stop ``server`` for OUTAGE_S: every component's ``/ready`` says ``reason`` and its
    ``dependency_up`` is 0 meanwhile, 200 and 1 once it is back; no process exits."""
    server.stop()
    went = time.monotonic()
    wait_while_running(lambda: health.all_say(reason), 30, f"/ready: {reason}", running())
    for component in COMPONENTS:
        assert health.dependency_up(component, dependency) == 0, component
    back = went + OUTAGE_S
    wait_while_running(lambda: time.monotonic() >= back, OUTAGE_S + 30, reason, running())
    for component in COMPONENTS:  # still down at the end
        assert health.ready(component)[0] == 503, component
    server.start()
    wait_while_running(health.all_ready, 60, f"ready after {dependency}", running())
    for component in COMPONENTS:
        assert health.dependency_up(component, dependency) == 1, component


def fills_count(url: str) -> int:
    store = open_store(Settings(database_url=url))
    try:
        return len(store.fills())
    finally:
        store.close()


def test_components_ride_out_postgres_then_redis_outages(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres, redis = private_postgres, private_redis
    monkeypatch.chdir(tmp_path)  # the components' logs and spill files
    upgrade(postgres.url)
    sim_port = free_port()
    sim = sim_exchange(sim_port, SYMBOLS, tmp_path)
    rest = f"http://127.0.0.1:{sim_port}"
    base_port = free_port_block(5)
    health = Health({name: base_port + i for i, name in enumerate(COMPONENTS)})
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "CDB_DATABASE_URL": postgres.url,
        "CDB_BUS_URL": redis.url,
        "CDB_MEXC_REST_URL": rest,
        "CDB_MEXC_WS_URL": f"ws://127.0.0.1:{sim_port}/ws",
        "CDB_SYMBOLS": ",".join(SYMBOLS),
        "CDB_HTTP_PORT": str(base_port),
        "CDB_SPILL_DIR": str(tmp_path / "unsaved"),
        **TUNING,
        # the simulator's market makes a cross every few bars: let its entries pass the limits
        "CDB_CIRCUIT_BREAKER_PCT": "100",
        "CDB_DAILY_DRAWDOWN_PCT": "100",
        "CDB_MAX_EXPOSURE_PCT": "100",
        "CDB_STALE_DATA_SECONDS": "600",  # the outage of Redis is not a stale feed
    }
    components = Components(env, tmp_path)

    def started() -> set[str]:
        return {detail.get("component", "") for detail in audits(postgres.url, START_ACTION)}

    def running() -> list[Any]:
        return [*components.running(), sim]

    try:
        wait_while_running(lambda: sim_up(rest), 20, "the simulator", [sim])
        for component in CONSUMERS:  # consumer groups first: they start at the stream's end
            components.start(component)
        wait_while_running(
            lambda: set(CONSUMERS) <= started(), 60, "the consumers", components.running()
        )
        components.start("marketdata")
        wait_while_running(health.all_ready, 60, "every component ready", running())
        wait_while_running(
            lambda: fills_count(postgres.url) >= 2, 90, "fills before the outage", running()
        )

        outage(postgres, "database", "database down", health, running)
        traded = fills_count(postgres.url)
        outage(redis, "redis", "bus down", health, running)
        wait_while_running(
            lambda: fills_count(postgres.url) > traded, 120, "fills after both", running()
        )

        logs = {"marketdata": components.stop("marketdata")}
        stopped = time.monotonic()
        wait_while_running(
            lambda: drained(redis.url, "cdb"), 60, "the streams drained", components.running()
        )
        drain_s = time.monotonic() - stopped
        for component in CONSUMERS:
            logs[component] = components.stop(component)
    finally:
        components.kill_all()
        sim.kill()
        sim.communicate()

    assert drain_s < 60
    for component, log in logs.items():
        assert f"Stopped component {component}" in log, log[-2000:]
        assert "Traceback" not in log, log[-3000:]
    assert {d.get("component") for d in audits(postgres.url, STOP_ACTION)} >= set(COMPONENTS)
    assert_nothing_lost_or_doubled(postgres.url)


def assert_nothing_lost_or_doubled(url: str) -> None:
    store = open_store(Settings(database_url=url))
    try:
        signals = store.events(TradingSignal)
        decisions = store.events(RiskDecision)
        approvals = store.events(OrderApproved)
        orders = store.orders()
        fills = store.fills()
        positions = {p.symbol: p.quantity for p in store.positions()}
    finally:
        store.close()
    assert approvals, "nothing was approved"
    # every signal decided; every approval exactly one order (placed, or expired late)
    assert {d.signal_id for d in decisions} >= {s.event_id for s in signals}
    per_approval: dict[str, int] = defaultdict(int)
    for order in orders:
        per_approval[order.client_order_id] += 1
    assert {a.event_id for a in approvals} == set(per_approval)
    assert set(per_approval.values()) == {1}
    # every filled order its fills; no fill twice
    filled: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        filled[fill.client_order_id] += fill.quantity
        held[fill.symbol] += fill.quantity if fill.side == "BUY" else -fill.quantity
    assert len({f.fill_id for f in fills}) == len(fills)
    for order in orders:
        if order.status in ("FILLED", "PARTIALLY_FILLED", "PARTIALLY_CANCELED"):
            assert filled[order.client_order_id] > 0, order
    # the positions table is the ledger the fills make
    for symbol in SYMBOLS:
        assert positions.get(symbol, Decimal(0)) == held[symbol], symbol
