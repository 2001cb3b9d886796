"""``cdb systemcheck``: every row reported, exit 4 on any failure, no trace left behind."""

from __future__ import annotations

import json
import socket
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from smtp_testkit import SmtpServer
from typer.testing import Result
from webhook_testkit import Receiver

from cdb_cli.adapters.sql import upgrade
from cdb_cli.errors import ExitCode

ROWS = [
    "settings",
    "database",
    "schema",
    "database write",
    "database auth",
    "redis",
    "smtp",
    "disk (database)",
    "disk (backups)",
    "file modes",
    "backup tools",
    "backup",
    "mexc rest",
    "mexc clock",
    "mexc keys",
    "mexc trading",
    "mexc websocket",
    "breaker",
    "full path",
]


def _rows(result: Result) -> dict[str, dict[str, Any]]:
    document = json.loads(result.stdout)
    rows = {row["name"]: row for row in document["checks"]}
    assert list(rows) == ROWS  # every row, in order, whatever failed
    assert document["ok"] is (result.exit_code == 0)
    return rows


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    upgrade(url)
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))
    return url


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens there


def test_all_ok_on_sqlite_without_redis(
    cdb: Callable[..., Result], database: str, seed_store: Callable[..., int]
) -> None:
    seed_store(database)
    created = cdb("backup", "create", "--verify")
    assert created.exit_code == 0, created.output

    result = cdb("systemcheck", "--json")

    assert result.exit_code == 0, result.output
    rows = _rows(result)
    for name in ("settings", "database", "schema", "database write", "backup"):
        assert rows[name]["status"] == "ok", rows[name]
    assert rows["redis"]["status"] == "skip"
    assert "memory://" in rows["redis"]["hint"]
    assert rows["backup"]["value"].endswith(f"({Path(created.stdout.strip()).name})")


def test_redis_down_fails_its_row_exit_4_and_reports_the_others(
    cdb: Callable[..., Result], database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_BUS_URL", f"redis://:Sup3rSecret@127.0.0.1:{_dead_port()}/0")

    result = cdb("systemcheck", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    rows = _rows(result)
    assert rows["redis"]["status"] == "fail"
    assert "unreachable" in rows["redis"]["hint"]
    assert rows["database write"]["status"] == "ok"
    assert rows["backup"]["status"] == "warn"  # no verified backup yet: a warning, not a failure
    assert "redis" in result.stderr
    assert "Sup3rSecret" not in result.stdout + result.stderr


@pytest.mark.infra
@pytest.mark.usefixtures("pg_client_tools")
def test_real_redis_and_postgres_are_ok(
    cdb: Callable[..., Result],
    postgres_database: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upgrade(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    monkeypatch.setenv("CDB_BUS_URL", redis_url)
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))
    assert cdb("backup", "create", "--verify").exit_code == 0

    result = cdb("systemcheck", "--json")

    assert result.exit_code == 0, result.output
    rows = _rows(result)
    assert {name: row["status"] for name, row in rows.items()} == {
        "settings": "ok",
        "database": "ok",
        "schema": "ok",
        "database write": "ok",
        "database auth": "warn",  # the test server trusts local connections: no password asked
        "redis": "warn",  # the test Redis takes commands without a password
        "smtp": "skip",  # CDB_SMTP_HOST unset
        "disk (database)": "ok",  # a local server's data directory (we run as a superuser)
        "disk (backups)": "ok",
        "file modes": "ok",  # cdb made the backup folder 0700; the database is on the server
        "backup tools": "ok",
        "backup": "ok",
        "mexc rest": "warn",  # MEXC is unreachable here: a warning in paper mode
        "mexc clock": "skip",
        "mexc keys": "skip",
        "mexc trading": "skip",
        "mexc websocket": "warn",
        "breaker": "ok",
        "full path": "ok",
    }
    assert rows["backup tools"]["value"].startswith("pg_dump ")
    assert rows["redis"]["value"].endswith(" ms")
    assert rows["database"]["value"].startswith("PostgreSQL ")
    from sqlalchemy import create_engine

    engine = create_engine(postgres_database)
    try:
        with engine.connect() as connection:  # the write/read round trip was rolled back
            left = connection.exec_driver_sql("SELECT count(*) FROM user_config").scalar()
    finally:
        engine.dispose()
    assert left == 0


def test_quick_skips_network_checks(
    cdb: Callable[..., Result], database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_BUS_URL", f"redis://127.0.0.1:{_dead_port()}/0")
    result = cdb("systemcheck", "--quick", "--json")
    assert result.exit_code == 0, result.output
    rows = _rows(result)
    assert rows["redis"]["status"] == "skip"
    assert rows["full path"]["status"] == "ok"  # in memory: runs under --quick too
    assert rows["breaker"]["status"] == "ok"


def test_quick_help_names_every_check_it_skips(cdb: Callable[..., Result], database: str) -> None:
    from cdb_cli.services.systemcheck import CHECKS

    result = cdb("systemcheck", "--help")
    assert result.exit_code == 0, result.output
    quick = " ".join(result.stdout.split("--quick", 1)[1].split("--daily", 1)[0].split()).lower()
    network = [check.name for check in CHECKS if check.network]
    assert {"redis", "smtp", "mexc rest", "mexc websocket"} <= set(network)
    for name in network:  # "mexc rest" → MEXC (REST, …)
        service, _, part = name.partition(" ")
        assert service in quick, f"--quick skips {name}; its help does not say so"
        assert part in quick, f"--quick skips {name}; its help does not say so"
    rows = _rows(cdb("systemcheck", "--quick", "--json"))
    assert {name for name, row in rows.items() if row["status"] == "skip"} >= set(network)


def test_full_path_and_breaker_leave_every_table_empty(
    cdb: Callable[..., Result], database: str
) -> None:
    from sqlalchemy import create_engine, inspect

    result = cdb("systemcheck", "--json")

    assert result.exit_code == 0, result.output
    rows = _rows(result)
    assert rows["full path"]["status"] == "ok", rows["full path"]
    assert rows["breaker"]["value"] == "active"
    engine = create_engine(database)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        with engine.connect() as connection:
            counts = {
                table: connection.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar()  # noqa: S608
                for table in tables
            }
    finally:
        engine.dispose()
    assert "trading_signals" in counts
    assert set(counts.values()) == {0}, counts


def test_halted_breaker_fails_the_check_with_exit_4(
    cdb: Callable[..., Result], database: str
) -> None:
    from cdb_cli.adapters.sql import SqlStore
    from cdb_cli.engine.records import AuditRecord
    from cdb_cli.engine.runs import STATE_ACTION

    store = SqlStore(database)
    try:
        store.add_audit(
            AuditRecord(ts_event=1_763_900_000_000_000_000, action=STATE_ACTION, actor="run",
                        detail={"state": "halted", "reason": "loss from peak 12 %"})
        )  # fmt: skip
    finally:
        store.close()

    result = cdb("systemcheck", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    row = _rows(result)["breaker"]
    assert row["status"] == "fail"
    assert "cdb risk reset --reason" in row["hint"]
    assert "breaker" in result.stderr


def test_round_trip_leaves_no_trace(cdb: Callable[..., Result], database: str) -> None:
    from sqlalchemy import create_engine

    result = cdb("systemcheck", "--json")

    assert result.exit_code == 0, result.output
    assert _rows(result)["database write"]["status"] == "ok"
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT count(*) FROM user_config").scalar()
    finally:
        engine.dispose()
    assert rows == 0


def test_outdated_schema_fails_and_skips_the_write(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
    engine.dispose()
    monkeypatch.setenv("CDB_DATABASE_URL", url)

    result = cdb("systemcheck", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    rows = _rows(result)
    assert rows["schema"]["status"] == "fail"
    assert "cdb db upgrade" in rows["schema"]["hint"]
    assert rows["database write"]["status"] == "skip"


def test_missing_sqlite_file_is_a_warning_and_not_created(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{tmp_path / 'new' / 'cdb.db'}")
    result = cdb("systemcheck", "--json")
    assert result.exit_code == 0, result.output
    rows = _rows(result)
    assert rows["database"]["status"] == "warn"
    assert rows["schema"]["status"] == "skip"
    assert not (tmp_path / "new" / "cdb.db").exists()


def test_invalid_settings_fail_the_first_row_and_skip_the_rest(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_HTTP_PORT", "99999")
    result = cdb("systemcheck", "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    rows = _rows(result)
    assert rows["settings"]["status"] == "fail"
    assert "CDB_HTTP_PORT" in rows["settings"]["hint"]
    assert {row["status"] for name, row in rows.items() if name != "settings"} == {"skip"}


def test_table_output_names_every_check(cdb: Callable[..., Result], database: str) -> None:
    result = cdb("systemcheck")
    assert result.exit_code == 0, result.output
    for name in ROWS:
        assert name in result.stdout


def test_failed_verify_makes_the_backup_row_fail(
    cdb: Callable[..., Result], database: str, seed_store: Callable[..., int]
) -> None:
    seed_store(database)
    created = cdb("backup", "create")
    path = Path(created.stdout.strip())
    with tarfile.open(path) as archive:
        dump = archive.getmembers()[1]
    data = bytearray(path.read_bytes())
    data[dump.offset_data + dump.size - 1] ^= 0xFF  # the last byte of the dump
    path.write_bytes(bytes(data))
    assert cdb("backup", "verify").exit_code == ExitCode.CHECK_FAILED

    result = cdb("systemcheck", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert _rows(result)["backup"]["status"] == "fail"


def test_env_validate_problems_fail_the_settings_row_but_not_the_others(
    cdb: Callable[..., Result], database: str, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CDB_MODE=paper\nCDB_DATABSE_URL=sqlite:///typo.db\n", encoding="utf-8")
    env_file.chmod(0o644)  # readable by others, and a typo: env-validate finds both

    result = cdb("--env-file", str(env_file), "systemcheck", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    rows = _rows(result)
    assert rows["settings"]["status"] == "fail"
    assert "CDB_DATABSE_URL" in rows["settings"]["hint"]
    assert rows["database write"]["status"] == "ok"  # the settings still load


@pytest.mark.infra
def test_old_pg_dump_fails_the_backup_tools_row(
    cdb: Callable[..., Result],
    postgres_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "pg11"
    bin_dir.mkdir()
    for name in ("pg_dump", "pg_restore"):
        program = bin_dir / name
        program.write_text(f'#!/bin/sh\necho "{name} (PostgreSQL) 11.22"\n', encoding="utf-8")
        program.chmod(0o755)
    upgrade(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    monkeypatch.setenv("CDB_PG_BIN_DIR", str(bin_dir))

    result = cdb("systemcheck", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    row = _rows(result)["backup tools"]
    assert row["status"] == "fail"
    assert "postgresql-client-1" in row["hint"]


# --- --daily ---------------------------------------------------------------------------------

DAY = "2026-11-22"
DAY_NS = 1_795_305_600_000_000_000  # 2026-11-22T00:00:00Z


def _seed_day(url: str) -> None:
    from decimal import Decimal

    from cdb_cli.adapters.sql import SqlStore
    from cdb_cli.engine.events import CheckResult, RiskDecision, SignalSide

    store = SqlStore(url)
    try:
        store.append_events(
            [
                RiskDecision(
                    event_id=f"d-{i}", symbol="BTCUSDT", ts_event=DAY_NS + i, source="risk",
                    signal_id=f"s-{i}", verdict="rejected", side=SignalSide.BUY,
                    requested_quote=Decimal(50), final_quote=Decimal(0),
                    checks=(CheckResult(rule="position_size", code="position_size_min",
                                        passed=False, observed=Decimal(50), limit=Decimal(100)),),
                )
                for i in range(3)
            ]
        )  # fmt: skip
    finally:
        store.close()


def _smtp_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("CDB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CDB_SMTP_PORT", str(port))
    monkeypatch.setenv("CDB_SMTP_TLS", "none")
    monkeypatch.setenv("CDB_SMTP_FROM", "cdb@bot.example.org")
    monkeypatch.setenv("CDB_SMTP_TO", "ops@example.org")


def test_daily_mails_the_checks_and_the_summary(
    cdb: Callable[..., Result],
    database: str,
    smtp_server: Callable[..., SmtpServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed_day(database)
    server = smtp_server()
    _smtp_env(monkeypatch, server.port)

    result = cdb("systemcheck", "--daily", "--day", DAY, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert _rows(result)["smtp"]["status"] == "ok"
    assert document["daily"]["day"] == DAY
    assert document["daily"]["decisions"]["rejections_by_reason"] == {"position_size_min": 3}
    assert document["mail"]["sent"] is True
    [mail] = server.inbox.mails
    assert mail.rcpt_tos == ["ops@example.org"]
    assert mail.message["Subject"].startswith(f"cdb daily check {DAY} on ")
    assert mail.message["Subject"].endswith(": all ok")
    body = mail.message.get_content()
    assert "OK    full path" in body
    assert "3 rejected: position_size_min 3)" in body
    assert document["mail"]["subject"] == mail.message["Subject"]


def test_daily_without_smtp_prints_the_summary_and_sends_nothing(
    cdb: Callable[..., Result], database: str
) -> None:
    _seed_day(database)

    result = cdb("systemcheck", "--daily", "--day", DAY)

    assert result.exit_code == 0, result.output
    assert f"Summary of {DAY} (UTC)" in result.stdout
    assert "3 rejected: position_size_min 3)" in result.stdout
    assert "feed BTCUSDT: 0 bars, 1440 minutes missing" in result.stdout
    as_json = cdb("systemcheck", "--daily", "--json")  # yesterday by default
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["mail"] == {"sent": False, "reason": "CDB_SMTP_HOST is unset"}


def test_daily_mail_that_cannot_be_sent_exits_4_without_the_password(
    cdb: Callable[..., Result], database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _smtp_env(monkeypatch, _dead_port())
    monkeypatch.setenv("CDB_SMTP_USER", "ops")
    monkeypatch.setenv("CDB_SMTP_PASSWORD", "Sm7pPassw0rd")

    result = cdb("systemcheck", "--daily", "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    document = json.loads(result.stdout)
    assert _rows(result)["smtp"]["status"] == "fail"
    assert document["mail"]["sent"] is False
    assert document["mail"]["error"].startswith("SMTP 127.0.0.1:")
    assert "Daily mail not sent: SMTP 127.0.0.1:" in result.stderr
    assert "Sm7pPassw0rd" not in result.stdout + result.stderr


def test_daily_with_a_bad_day_is_a_usage_error(cdb: Callable[..., Result], database: str) -> None:
    result = cdb("systemcheck", "--daily", "--day", "yesterday")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--day" in result.stderr
    alone = cdb("systemcheck", "--day", DAY)
    assert alone.exit_code == ExitCode.USAGE, alone.output
    assert "only with --daily" in alone.stderr


def test_daily_posts_the_report_to_each_webhook(
    cdb: Callable[..., Result],
    database: str,
    webhook_receiver: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed_day(database)
    good, failing = webhook_receiver(), webhook_receiver(fail=-1)
    token = "DailyT0kenQWERTYUIOP12345"
    monkeypatch.setenv(
        "CDB_WEBHOOK_URLS", f"json:{good.base}/d/{token},slack:{failing.base}/s/{token}"
    )

    result = cdb("systemcheck", "--daily", "--day", DAY, "--json")

    assert result.exit_code == 0, result.output  # a webhook is not the check: its result is
    mail = json.loads(result.stdout)["mail"]
    assert (mail["sent"], mail["reason"]) == (False, "CDB_SMTP_HOST is unset")
    assert [(w["channel"], w["ok"]) for w in mail["webhooks"]] == [
        ("json #1 (127.0.0.1)", True),
        ("slack #2 (127.0.0.1)", False),
    ]
    [post] = good.posts
    document = post.json()
    assert (document["event"], document["severity"]) == ("daily_summary", "info")
    assert document["title"].startswith(f"cdb daily check {DAY} on ")
    assert "3 rejected: position_size_min 3)" in document["text"]
    assert token not in result.stdout + result.stderr
