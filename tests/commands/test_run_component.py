"""`cdb run --paper --component NAME`: what it refuses before it starts (exit 3, one line)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import Result


def test_component_mode_needs_a_redis_bus(cdb: Callable[..., Result]) -> None:
    result = cdb("run", "--paper", "--component", "risk")
    assert result.exit_code == 3, result.output
    assert "CDB_BUS_URL=redis://" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_component_is_named(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_BUS_URL", "redis://127.0.0.1:6379/0")
    result = cdb("run", "--paper", "--component", "strategy")
    assert result.exit_code == 3, result.output
    assert "Unknown component 'strategy'" in result.stderr
    assert "marketdata, signals, risk, execution, portfolio" in result.stderr


def test_the_in_process_simulator_is_refused_in_component_mode(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_BUS_URL", "redis://127.0.0.1:6379/0")
    result = cdb("run", "--paper", "--feed", "sim", "--component", "marketdata")
    assert result.exit_code == 3, result.output
    assert "cdb sim-exchange" in result.stderr
