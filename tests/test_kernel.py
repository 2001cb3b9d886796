"""The kernel picks implementations from settings: store, bus and the engine's configs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio
from pydantic import BaseModel

from cdb_cli.adapters.redis_bus import RedisBus
from cdb_cli.adapters.sql.migrations import upgrade
from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.config import PaperExecutionConfig, RiskLimits, SignalConfig
from cdb_cli.engine.errors import DependencyError, SchemaOutOfDate
from cdb_cli.engine.events import Side, Topic, TradeTick
from cdb_cli.kernel import (
    open_bus,
    open_store,
    paper_execution_config,
    risk_limits,
    signal_config,
)
from cdb_cli.settings import ENGINE_CONFIGS, Settings


def tick() -> TradeTick:
    return TradeTick(
        symbol="BTCUSDT",
        ts_event=1,
        source="test",
        price=Decimal("1.5"),
        quantity=Decimal("2"),
        aggressor=Side.BUY,
    )


def test_new_embedded_database_is_created_at_head(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fresh' / 'cdb.db'}")
    store = open_store(settings, create_if_new=True)
    try:
        assert store.append_events([tick()]) == 1
    finally:
        store.close()


def test_existing_database_behind_head_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    settings = Settings(database_url=url)
    with pytest.raises(SchemaOutOfDate, match="cdb db upgrade"):
        open_store(settings)  # empty file, not created: not at head
    upgrade(url, "base")
    with pytest.raises(SchemaOutOfDate):
        open_store(settings)


def test_memory_bus_by_default() -> None:
    assert isinstance(open_bus(Settings()), InMemoryBus)


@pytest.mark.infra
def test_redis_bus_from_url(redis_url: str) -> None:
    prefix = f"cdbtest:{secrets.token_hex(6)}"
    bus = open_bus(Settings(bus_url=redis_url, bus_prefix=prefix))
    assert isinstance(bus, RedisBus)

    async def roundtrip() -> list[str]:
        async with bus:
            subscription = await bus.subscribe(Topic.MARKET_DATA, "kernel-test", "c1")
            await bus.publish(Topic.MARKET_DATA, tick())
            deliveries = await subscription.fetch(10, timeout_s=2)
            await subscription.ack(*deliveries)
        client = redis.asyncio.from_url(redis_url)
        try:
            keys = [key.decode() async for key in client.scan_iter(f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
        return keys

    assert f"{prefix}:market_data" in asyncio.run(roundtrip())


def test_redis_bus_down_is_one_line_error() -> None:
    bus = open_bus(Settings(bus_url="redis://:Hunter2Secret@127.0.0.1:1/0"))

    async def enter() -> None:
        async with bus:
            pass

    with pytest.raises(DependencyError) as caught:
        asyncio.run(enter())
    assert "127.0.0.1:1" in str(caught.value)
    assert "Hunter2Secret" not in str(caught.value)


def test_risk_limits_follow_settings() -> None:
    settings = Settings(max_spread_pct=Decimal("0.15"), stale_data_seconds=12)
    limits = risk_limits(settings)
    assert limits.max_spread_pct == Decimal("0.15")
    assert limits.stale_data_seconds == 12
    assert risk_limits(Settings()) == RiskLimits()


@pytest.mark.parametrize(
    ("mapper", "config", "values"),
    [
        (
            risk_limits,
            RiskLimits,
            {"max_exposure_pct": Decimal("45"), "min_position_quote": Decimal("20")},
        ),
        (signal_config, SignalConfig, {"ema_fast": 5, "ema_slow": 9, "trend_filter": True}),
        (
            paper_execution_config,
            PaperExecutionConfig,
            {"latency_ms": 7, "slippage_max_pct": Decimal("2"), "partial_fill_pct": Decimal(10)},
        ),
    ],
)
def test_engine_config_from_settings_equals_the_model_built_from_the_same_values(
    mapper: Callable[[Settings], BaseModel], config: type[BaseModel], values: dict[str, object]
) -> None:
    prefix = ENGINE_CONFIGS[config]
    settings = Settings(**{prefix + name: value for name, value in values.items()})
    assert mapper(settings) == config(**values)
    assert mapper(settings) != config()
    assert mapper(Settings()) == config()


def test_build_pipeline_wires_settings_into_the_engine() -> None:
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import build_pipeline

    settings = Settings(ema_fast=5, ema_slow=9, paper_fee_pct=Decimal("0.1"), starting_cash=500)
    pipeline = build_pipeline(
        settings,
        Mode.REPLAY,
        symbols=["ETHUSDT"],
        clock=TestClock(),
        recorder=MemoryRecorder(),
        run_id="r-1",
    )
    assert pipeline.portfolio.starting_cash == 500
    assert pipeline.portfolio.quote_currency == "USDT"
    assert pipeline.execution.instruments["ETHUSDT"].taker_fee == Decimal("0.001")
    assert pipeline.execution.id_prefix == "r_1"


@pytest.mark.parametrize(
    ("environment", "symbols", "message"),
    [
        ("live", ["BTCUSDT"], "Live trading needs the venue.s instruments"),
        ("paper", ["BTCUSDT", "ETHBTC"], "one quote currency"),
        ("paper", ["FOOBAR"], "quote currency of 'FOOBAR'"),
    ],
)
def test_build_pipeline_refuses_bad_combinations(
    environment: str, symbols: list[str], message: str
) -> None:
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import build_pipeline

    with pytest.raises(ConfigurationError, match=message):
        build_pipeline(
            Settings(),
            Mode(environment),
            symbols=symbols,
            clock=TestClock(),
            recorder=MemoryRecorder(),
            run_id="r",
        )


def test_mexc_http_client_uses_the_configured_url_and_masks_the_key() -> None:
    from pydantic import SecretStr

    from cdb_cli.kernel import mexc_http_client
    from cdb_cli.settings import Settings

    secret = "0123456789abcdef0123456789abcdef"
    settings = Settings(
        mexc_rest_url="http://127.0.0.1:9/",
        mexc_api_key=SecretStr("mx0vglKernelKey1"),
        mexc_api_secret=SecretStr(secret),
    )
    client = mexc_http_client(settings)
    assert client.base_url == "http://127.0.0.1:9"
    assert client.api_key_masked == "mx0v…ey1"
    assert secret not in repr(client)
    assert mexc_http_client(Settings()).api_key_masked is None


def test_live_picks_the_live_venue_with_the_entry_settings() -> None:
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.instruments import default_instrument
    from cdb_cli.engine.live_execution import LiveExecution
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import build_pipeline

    pipeline = build_pipeline(
        Settings(live_entry_order="limit", live_limit_timeout_seconds=5),
        Mode.LIVE,
        symbols=["BTCUSDT"],
        clock=TestClock(0),
        recorder=MemoryRecorder(),
        run_id="l0123456789a",
        instruments={"BTCUSDT": default_instrument("BTCUSDT")},
    )
    assert isinstance(pipeline.execution, LiveExecution)
    assert pipeline.execution.id_prefix == "l0123456789a"
    assert pipeline.execution._entry == "LIMIT"
    assert pipeline.execution._limit_timeout_ns == 5_000_000_000


def test_the_kernel_picks_each_modes_clock() -> None:
    import time

    from cdb_cli.adapters.clock import LiveClock
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import clock_for

    replay = clock_for(Mode.REPLAY, start_ns=42)
    assert isinstance(replay, TestClock)
    assert replay.timestamp_ns() == 42  # moved by the data only
    for mode in (Mode.PAPER, Mode.LIVE):
        clock = clock_for(mode)
        assert isinstance(clock, LiveClock)
        before = time.time_ns()
        assert before <= clock.timestamp_ns() <= time.time_ns()
