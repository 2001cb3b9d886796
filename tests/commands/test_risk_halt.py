"""``cdb risk status / halt / reset``: the breaker's halt and the operator's, audited with who
and why, on SQLite and once on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.errors import ExitCode
from cdb_cli.settings import Settings

from .risk_kit import explain_json, persisted, status_json


@pytest.fixture(scope="module")
def halted_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    # With the defaults the real candles end with the breaker tripped (loss from peak > 10 %).
    url = f"sqlite:///{tmp_path_factory.mktemp('halt') / 'halted.db'}"
    persisted(url)
    return url


def test_status_and_audited_reset(
    cdb: Callable[..., Result], halted_db: str, use_db: Callable[[str], None]
) -> None:
    use_db(halted_db)
    before = status_json(cdb)
    assert before["state"] == "halted"
    assert "circuit breaker" in str(before["reason"])
    equity = before["equity"]
    assert isinstance(equity, dict)
    assert Decimal(equity["drawdown_from_peak_pct"]) >= 0
    text = cdb("risk", "status")
    assert "Trading state: HALTED since" in text.stdout

    missing = cdb("risk", "reset")
    assert missing.exit_code == ExitCode.USAGE, missing.output
    reset = cdb("risk", "reset", "--reason", "drawdown reviewed", "--actor", "ops@desk")
    assert reset.exit_code == 0, reset.output
    assert "Ended the circuit breaker's halt (at " in reset.stdout
    assert f"{before['reason']}): reset by ops@desk: drawdown reviewed" in reset.stdout
    after = status_json(cdb)
    assert after["state"] == "active"
    assert (after["reason"], after["actor"]) == ("drawdown reviewed", "ops@desk")

    again = cdb("risk", "reset", "--reason", "twice")
    assert again.exit_code == 0, again.output
    assert "nothing to reset" in again.stderr

    from cdb_cli.engine.runs import RESET_ACTION
    from cdb_cli.kernel import open_store

    store = open_store(Settings(database_url=halted_db))
    try:
        (audit,) = store.audits(action=RESET_ACTION)
    finally:
        store.close()
    assert audit.actor == "ops@desk"
    assert audit.detail == {
        "reason": "drawdown reviewed",
        "previous": "halted",
        "ended": "circuit_breaker",
    }


@pytest.mark.infra
def test_explain_status_reset_on_postgres(
    cdb: Callable[..., Result], postgres_database: str, use_db: Callable[[str], None]
) -> None:
    run = persisted(postgres_database)
    use_db(postgres_database)
    doc = explain_json(cdb, "--run", run, "--what-if", "circuit_breaker_pct=50")
    assert doc["decisions"]["total"] > 0  # type: ignore[index]
    assert doc["by_reason"]["circuit_breaker"] > 0  # type: ignore[index]
    assert doc["what_if"]["flipped"] > 0  # type: ignore[index]
    assert status_json(cdb)["state"] == "halted"
    reset = cdb("risk", "reset", "--reason", "checked on postgres")
    assert reset.exit_code == 0, reset.output
    assert status_json(cdb)["state"] == "active"


def test_halt_is_audited_shown_by_status_and_ended_by_reset(
    cdb: Callable[..., Result], tmp_path: Path, use_db: Callable[[str], None]
) -> None:
    from cdb_cli.adapters.sql import upgrade
    from cdb_cli.engine.report import iso_utc
    from cdb_cli.engine.runs import HALT_ACTION
    from cdb_cli.kernel import open_store

    url = f"sqlite:///{tmp_path / 'halt.db'}"
    upgrade(url)
    use_db(url)
    assert status_json(cdb)["state"] == "active"

    missing = cdb("risk", "halt", "--reason", "  ")
    assert missing.exit_code == ExitCode.USAGE, missing.output
    halted = cdb("risk", "halt", "--reason", "exchange incident", "--actor", "ops@desk")
    assert halted.exit_code == 0, halted.output
    assert "Trading halted by ops@desk: exchange incident" in halted.stdout
    status = status_json(cdb)
    assert (status["state"], status["reason"], status["actor"]) == (
        "halted",
        "exchange incident",
        "ops@desk",
    )
    assert "Trading state: HALTED since" in cdb("risk", "status").stdout

    flatten = cdb("risk", "halt", "--reason", "close it all", "--flatten", "--actor", "ops@desk")
    assert flatten.exit_code == 0, flatten.output
    assert "sells every open position" in flatten.stdout
    assert "It was halted already: the operator's halt (by ops@desk at " in flatten.stdout

    store = open_store(Settings(database_url=url))
    try:
        first, second = store.audits(action=HALT_ACTION)
    finally:
        store.close()
    assert first.actor == "ops@desk"
    assert first.detail == {
        "reason": "exchange incident",
        "flatten": "no",
        "via": "cli",
        "previous": "active",
    }
    assert (second.detail["flatten"], second.detail["previous"]) == ("yes", "halted")

    reset = cdb("risk", "reset", "--reason", "incident over", "--actor", "ops@desk")
    assert reset.exit_code == 0, reset.output
    assert "Circuit breaker" not in reset.stdout
    assert reset.stdout.startswith(
        f"Ended the operator's halt (by ops@desk at {iso_utc(second.ts_event)}: close it all): "
        "reset by ops@desk: incident over\n"
    )
    assert status_json(cdb)["state"] == "active"


def test_reset_leaves_a_daily_reduction_and_status_shows_a_gain_as_no_drawdown(
    cdb: Callable[..., Result], tmp_path: Path, use_db: Callable[[str], None]
) -> None:
    from cdb_cli.adapters.sql import upgrade
    from cdb_cli.engine.records import AuditRecord, EquitySnapshot
    from cdb_cli.engine.runs import RESET_ACTION, STATE_ACTION
    from cdb_cli.kernel import open_store

    url = f"sqlite:///{tmp_path / 'reducing.db'}"
    upgrade(url)
    use_db(url)
    t0 = 1_772_409_600_000_000_000  # 2026-03-02T00:00:00Z
    store = open_store(Settings(database_url=url))
    try:
        reducing = {"state": "reducing", "reason": "loss since start of day 5.1 % is above 5 %"}
        store.add_audit(
            AuditRecord(ts_event=t0, action=STATE_ACTION, actor="cdb run", detail=reducing)
        )
        store.add_equity_snapshot(  # above the day's start and the peak: a gain
            EquitySnapshot(ts_event=t0, cash=Decimal("600.123456789012345678"),
                           position_value=Decimal("500.000000000000000001"),
                           equity=Decimal("1100.123456789012345679"),
                           day_start_equity=Decimal(1000), peak_equity=Decimal(1050))
        )  # fmt: skip
    finally:
        store.close()
    kept = cdb("risk", "reset", "--reason", "go on", "--actor", "ops@desk")
    assert kept.exit_code == 0, kept.output
    assert kept.stdout == ""
    assert "Trading is reducing (loss since start of day 5.1 % is above 5 %), not halted" in (
        kept.stderr
    )
    assert "the daily reduction ends at the next UTC day" in kept.stderr
    store = open_store(Settings(database_url=url))
    try:
        assert store.audits(action=RESET_ACTION) == []
    finally:
        store.close()

    equity = status_json(cdb)["equity"]
    assert isinstance(equity, dict)
    assert (equity["drawdown_from_peak_pct"], equity["daily_drawdown_pct"]) == ("0.0000", "0.0000")
    assert equity["exposure_pct"] == "45.4494"
    assert equity["equity"] == "1100.123456789012345679"  # JSON keeps every digit
    text = cdb("risk", "status")
    assert text.exit_code == 0, text.output
    assert (
        "equity 1100.12 USDT at 2026-03-02T00:00:00Z: drawdown from peak 0.00 % (breaker "
        in text.stdout
    )
    assert "today 0.00 % (limit" in text.stdout
    assert "exposure 45.45 % (limit" in text.stdout
    (equity_line,) = [line for line in text.stdout.splitlines() if "equity" in line]
    assert " -" not in equity_line  # a gain is no negative drawdown
