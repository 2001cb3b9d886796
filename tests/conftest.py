"""Shared fixtures: isolation from the operator's environment, and the real-service rule.

Real services (../shared/SERVICES.md): tests of the Redis bus and the PostgreSQL store talk to the
real servers. Locally they skip with a clear reason when a server is absent; with
``CDB_REQUIRE_SERVICES=1`` (set by .ci/run) they fail instead, so CI can never skip them unnoticed.
Addresses come from ``CDB_TEST_REDIS_URL`` / ``CDB_TEST_POSTGRES_URL`` (defaults: loopback).

Tests clean up the shared servers: Redis keys come from ``redis_prefix`` (``cdbtest:<run>:<hex>``)
and databases from ``postgres_database`` (``cdb_test_<run>_<hex>``), both removed afterwards. At the
end of the run ``_shared_services_left_clean`` fails the run when a key matching ``cdbtest*`` or a
database ``cdb_test_*`` is left that was not there when the run began (other runs' names, which
carry another ``<run>``, are not this run's to answer for; unmarked names get 5 s to go).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from outage_testkit import private_postgres, private_redis  # noqa: F401 - shared fixtures
from services_testkit import (
    OTHER_RUN,
    POSTGRES_TEST_DATABASES,
    REDIS_TEST_KEYS,
    RUN,
    delete_keys,
    new_database_name,
    new_key_prefix,
)
from smtp_testkit import certificate, smtp_server  # noqa: F401 - fixtures shared by all tests
from sqlalchemy import create_engine, make_url
from typer.testing import CliRunner, Result
from webhook_testkit import webhook_receiver  # noqa: F401 - a fixture shared by all tests

TEST_REDIS_URL = os.environ.get("CDB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_POSTGRES_URL = os.environ.get(
    "CDB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("CDB_REQUIRE_SERVICES", "") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        address = (parts.hostname or "127.0.0.1", parts.port or default_port)
        with socket.create_connection(address, 1):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip (or, with CDB_REQUIRE_SERVICES=1, fail) when the real service is not reachable."""
    if _reachable(url, default_port):
        return
    host = urlsplit(url).hostname
    reason = f"{name} is not reachable at {host}:{urlsplit(url).port or default_port}"
    if services_required():
        pytest.fail(f"{reason} and CDB_REQUIRE_SERVICES=1 (start it: see ../shared/SERVICES.md)")
    pytest.skip(f"{reason}; set CDB_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture
def redis_url() -> str:
    """URL of the real Redis; skips or fails per the real-service rule."""
    require_service("Redis", TEST_REDIS_URL, 6379)
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own (``cdbtest:<run>:<hex>``); its keys are deleted after."""
    prefix = new_key_prefix()
    yield prefix
    delete_keys(redis_url, prefix)


@pytest.fixture
def postgres_url() -> str:
    """URL of the real PostgreSQL server (admin database); skips or fails per the rule."""
    require_service("PostgreSQL", TEST_POSTGRES_URL, 5432)
    return TEST_POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """URL of a new empty database ``cdb_test_<hex>`` on the real server, dropped afterwards."""
    name = new_database_name()
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _redis_test_keys() -> set[str] | None:
    """The keys named like a test's in the shared Redis, or None when it is not reachable."""
    if not _reachable(TEST_REDIS_URL, 6379):
        return None
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        return {key.decode() for key in client.scan_iter(match=REDIS_TEST_KEYS, count=1000)}
    finally:
        client.close()


def _postgres_test_databases() -> set[str] | None:
    """The databases named like a test's on the shared server, or None when it is not reachable."""
    if not _reachable(TEST_POSTGRES_URL, 5432):
        return None
    admin = create_engine(TEST_POSTGRES_URL)
    try:
        with admin.connect() as connection:
            names = connection.exec_driver_sql("SELECT datname FROM pg_database").scalars()
            return {name for name in names if name.startswith(POSTGRES_TEST_DATABASES)}
    finally:
        admin.dispose()


def _left_by_this_run(before: set[str] | None, after: set[str] | None) -> list[str]:
    if after is None:
        return []
    new = after - (before or set())
    return sorted(name for name in new if (m := OTHER_RUN.match(name)) is None or m.group(1) == RUN)


@pytest.fixture(scope="session", autouse=True)
def _shared_services_left_clean() -> Iterator[None]:
    """Fail the run when its tests left keys in the shared Redis or databases in PostgreSQL.

    A name without a run's mark may be another run's on the same servers, still at work: such
    names get a few seconds to go before they count."""
    keys, databases = _redis_test_keys(), _postgres_test_databases()
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked_keys = _left_by_this_run(keys, _redis_test_keys())
        leaked_databases = _left_by_this_run(databases, _postgres_test_databases())
        leaked = leaked_keys + leaked_databases
        marked = [name for name in leaked if (m := OTHER_RUN.match(name)) and m.group(1) == RUN]
        if not leaked or marked or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if leaked:
        unmarked = (
            ""
            if marked
            else (
                f" (none carries this run's mark {RUN}: a test that does not use the fixtures, or "
                "another test run on the same servers that left them)"
            )
        )
        pytest.fail(
            "tests left data in the shared services (every test removes its own: use the "
            f"redis_prefix and postgres_database fixtures): Redis keys {leaked_keys[:20]} "
            f"({len(leaked_keys)}), PostgreSQL databases {leaked_databases}{unmarked}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _restore_loggers() -> Iterator[None]:
    """The root callback configures process-wide loggers; put them back after every test."""
    saved = [
        (logger, logger.handlers[:], logger.level, logger.propagate)
        for logger in (logging.getLogger("cdb_cli"), logging.getLogger("dotenv"))
    ]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture(autouse=True)
def _isolate_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the operator's CDB_* variables or writes into the real user data dir."""
    kept = ("CDB_TEST_", "CDB_REQUIRE_SERVICES")
    for name in list(os.environ):
        if name.startswith("CDB_") and not name.startswith(kept):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.chdir(home)  # no stray ./.env of the checkout is picked up


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CliRunner; stdout and stderr stay apart (Click >= 8.2)."""
    return CliRunner()


@pytest.fixture
def cdb(runner: CliRunner) -> Callable[..., Result]:
    """Invoke the real root app in process: ``cdb("env-validate", "--json")``."""
    from cdb_cli.app import app

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), prog_name="cdb")

    return invoke


@pytest.fixture
def pg_client_tools() -> None:
    """pg_dump and pg_restore on PATH; skips (fails with CDB_REQUIRE_SERVICES=1) without them."""
    import shutil

    missing = [name for name in ("pg_dump", "pg_restore") if shutil.which(name) is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not on PATH (install postgresql-client-15)"
    if services_required():
        pytest.fail(f"{reason} and CDB_REQUIRE_SERVICES=1")
    pytest.skip(f"{reason}; set CDB_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture
def seed_store() -> Callable[..., int]:
    """Write real rows into the migrated database at ``url`` through the Store port (SqlStore).

    ``seed_store(url, trades=40)`` returns the number of rows written; money uses 18 decimal
    places so a restore that rounds would be caught by the content hashes.
    """
    from decimal import Decimal

    from cdb_cli.adapters.sql import SqlStore
    from cdb_cli.engine.events import Bar, RiskDecision, Side, SignalSide, TradeTick, TradingSignal
    from cdb_cli.engine.records import (
        AuditRecord,
        EquitySnapshot,
        FillRecord,
        OrderRecord,
        PositionRecord,
    )

    def seed(url: str, *, trades: int = 40) -> int:
        t0, tiny = 1_700_000_000_000_000_000, Decimal("0.000000012345678901")
        store = SqlStore(url)
        try:
            events = [
                TradeTick(symbol="BTCUSDT", ts_event=t0 + i, source="seed", aggressor=Side.BUY,
                          price=Decimal("43000.5") + i, quantity=tiny * (i + 1), trade_id=str(i))
                for i in range(trades)
            ] + [
                Bar(symbol="ETHUSDT", ts_event=t0, source="seed", open=Decimal(100),
                    high=Decimal(110), low=Decimal(90), close=Decimal("105.25"),
                    volume=Decimal("12.5")),
                TradingSignal(symbol="BTCUSDT", ts_event=t0, source="seed", side=SignalSide.BUY,
                              strategy="ema", price=Decimal("43000.5"), strength=0.75,
                              indicators={"rsi": 61.5}),
                RiskDecision(symbol="BTCUSDT", ts_event=t0, source="seed", signal_id="s-1",
                             verdict="rejected", side=SignalSide.BUY,
                             requested_quote=Decimal(500), final_quote=Decimal(0),
                             state={"equity": "1000"}),
            ]  # fmt: skip
            written = store.append_events(events)
            store.save_order(
                OrderRecord(client_order_id="cdb-1", decision_id="d-1", symbol="BTCUSDT",
                            side=Side.BUY, order_type="MARKET", quote_amount=Decimal("300.5"),
                            status="FILLED", ts_created=t0, ts_updated=t0, mode="paper")
            )  # fmt: skip
            store.add_fill(
                FillRecord(fill_id="f-1", client_order_id="cdb-1", symbol="BTCUSDT",
                           side=Side.BUY, quantity=tiny, price=Decimal("43000.5"),
                           ts_event=t0, liquidity="taker")
            )  # fmt: skip
            store.save_position(
                PositionRecord(symbol="BTCUSDT", quantity=tiny, average_price=Decimal("43000.5"),
                               realized_pnl=Decimal("-1.5"), ts_updated=t0)
            )  # fmt: skip
            store.add_equity_snapshot(
                EquitySnapshot(ts_event=t0, cash=Decimal(1000), position_value=Decimal(0),
                               equity=Decimal(1000), day_start_equity=Decimal(1000),
                               peak_equity=Decimal(1000))
            )  # fmt: skip
            store.add_audit(AuditRecord(ts_event=t0, action="seed", actor="test"))
            store.set_config("greeting", "grüezi")
            return written + 6
        finally:
            store.close()

    return seed
