"""``cdb events publish / tail``: validated injection, and a live tail in another process, over
the real Redis; one-line errors for bad input and for a bus no other process can see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import Result

from cdb_cli.errors import ExitCode

TRADE = {"symbol": "BTCUSDT", "price": "64000.5", "quantity": "0.01", "aggressor": "BUY"}


@pytest.fixture
def redis_bus(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """CDB_BUS_URL on the real Redis with this test's own prefix; its keys deleted afterwards."""
    prefix = f"cdbtest:{uuid.uuid4().hex}"
    monkeypatch.setenv("CDB_BUS_URL", redis_url)
    monkeypatch.setenv("CDB_BUS_PREFIX", prefix)
    yield redis_url, prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def groups(url: str, key: str) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        if not client.exists(key):
            return []
        return [g["name"].decode() for g in client.xinfo_groups(key)]
    finally:
        client.close()


@pytest.mark.infra
def test_tail_in_another_process_sees_a_published_event(
    cdb: Callable[..., Result], redis_bus: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis_bus
    env = {**os.environ, "CDB_BUS_URL": url, "CDB_BUS_PREFIX": prefix, "NO_COLOR": "1"}
    tail = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "cdb"),
            "events",
            "tail",
            "market_data",
            "risk_events",
            "--count",
            "2",
            "--timeout",
            "30",
            "--json",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        key = f"{prefix}:market_data"
        deadline = time.monotonic() + 20
        while not groups(url, key) and time.monotonic() < deadline and tail.poll() is None:
            time.sleep(0.05)
        if not groups(url, key):
            tail.kill()
            out, err = tail.communicate()
            pytest.fail(f"the tail never joined: rc={tail.returncode} out={out!r} err={err!r}")
        first = cdb(
            "events",
            "publish",
            "market_data",
            "--type",
            "market.trade",
            "--data",
            json.dumps(TRADE),
            "--json",
        )
        assert first.exit_code == 0, first.output
        event_file = tmp_path / "trade.json"
        event_file.write_text(json.dumps({"type": "market.trade", "v": 1, "data": TRADE}))
        second = cdb("events", "publish", "market_data", "--data", f"@{event_file}")
        assert second.exit_code == 0, second.output
        assert "Published market.trade" in second.stdout
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["data"]["price"] for line in lines] == ["64000.5", "64000.5"]
    assert lines[0]["data"]["event_id"] == json.loads(first.stdout)["event_id"]
    assert {line["topic"] for line in lines} == {"market_data"}
    assert groups(url, key) == []  # the tail removed its consumer group


@pytest.mark.infra
def test_tail_stops_at_its_timeout(cdb: Callable[..., Result], redis_bus: tuple[str, str]) -> None:
    result = cdb("events", "tail", "system_health", "--timeout", "0.5")
    assert result.exit_code == 0, result.output
    assert "0 events" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere", "--data", "{}"], "is not a topic"),
        (["market_data", "--data", "{nope"], "is not valid JSON"),
        (["market_data", "--data", json.dumps(TRADE)], "name one with --type"),
        (
            [
                "trading_signals",
                "--data",
                json.dumps({"type": "market.trade", "v": 1, "data": TRADE}),
            ],
            "does not carry 'market.trade'",
        ),
        (
            [
                "market_data",
                "--type",
                "market.trade",
                "--data",
                json.dumps({**TRADE, "price": "-1"}),
            ],
            "invalid at price",
        ),
        (["market_data", "--data", "@/no/such/file.json"], "cannot read"),
    ],
)
def test_bad_events_are_usage_errors(
    cdb: Callable[..., Result], args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_BUS_URL", "redis://127.0.0.1:1/0")  # never reached: input is bad
    result = cdb("events", "publish", *args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_an_in_process_bus_is_refused(cdb: Callable[..., Result]) -> None:
    result = cdb(
        "events", "publish", "market_data", "--type", "market.trade", "--data", json.dumps(TRADE)
    )
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "memory://" in result.stderr


def test_dead_redis_is_one_line(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_BUS_URL", "redis://:hunter2@127.0.0.1:1/0")
    result = cdb(
        "events", "publish", "market_data", "--type", "market.trade", "--data", json.dumps(TRADE)
    )
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "hunter2" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
