"""The breaker-state and full-path rows, against a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdb_cli.adapters.sql import SqlStore, upgrade
from cdb_cli.engine.records import AuditRecord
from cdb_cli.engine.runs import RESET_ACTION, STATE_ACTION
from cdb_cli.services.systemcheck import CheckContext, Status
from cdb_cli.services.systemcheck.trading import check_breaker, check_full_path
from cdb_cli.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T0 = 1_763_900_000_000_000_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    upgrade(url)
    return Settings(database_url=url)


def _audit(settings: Settings, action: str, ts: int, **detail: str) -> None:
    store = SqlStore(settings.database_url)
    try:
        store.add_audit(
            AuditRecord(ts_event=ts, action=action, actor="test", run_id="run-1", detail=detail)
        )
    finally:
        store.close()


def test_breaker_without_state_changes_is_active(settings: Settings) -> None:
    outcome = check_breaker(CheckContext(settings=settings, now=NOW))
    assert outcome.status is Status.OK
    assert outcome.value == "active"


def test_breaker_halted_fails_with_reason_since_and_the_reset_hint(settings: Settings) -> None:
    _audit(settings, STATE_ACTION, T0, state="halted", reason="loss from peak 11 % (breaker)")
    outcome = check_breaker(CheckContext(settings=settings, now=NOW))
    assert outcome.status is Status.FAIL
    assert outcome.value.startswith("halted since 2025-11-23T")
    assert "loss from peak 11 %" in outcome.hint
    assert "cdb risk reset --reason" in outcome.hint


def test_breaker_reducing_warns(settings: Settings) -> None:
    _audit(settings, STATE_ACTION, T0, state="reducing", reason="daily drawdown")
    outcome = check_breaker(CheckContext(settings=settings, now=NOW))
    assert outcome.status is Status.WARN
    assert "daily drawdown" in outcome.hint


def test_breaker_reset_after_a_halt_is_active_again(settings: Settings) -> None:
    _audit(settings, STATE_ACTION, T0, state="halted", reason="breaker")
    _audit(settings, RESET_ACTION, T0 + 1, reason="checked", previous="halted")
    outcome = check_breaker(CheckContext(settings=settings, now=NOW))
    assert outcome.status is Status.OK
    assert outcome.value.startswith("active since")


def test_full_path_row_ok_and_fail(settings: Settings) -> None:
    ok = check_full_path(CheckContext(settings=settings, now=NOW))
    assert ok.status is Status.OK
    assert ok.value.endswith(" ms")
    blocked = settings.model_copy(update={"min_position_quote": 5000})
    failed = check_full_path(CheckContext(settings=blocked, now=NOW))
    assert failed.status is Status.FAIL
    assert failed.value == "broken at decision"
    assert "position_size_min" in failed.hint
