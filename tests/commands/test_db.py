"""``cdb db status`` / ``cdb db upgrade`` on a SQLite file and the real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.errors import ExitCode


def test_status_on_new_file_reports_pending_then_upgrade_makes_it_current(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{tmp_path / 'new' / 'cdb.db'}")
    before = cdb("db", "status", "--json")
    assert before.exit_code == ExitCode.CHECK_FAILED, before.output
    document = json.loads(before.stdout)
    assert document["current"] is None
    assert document["up_to_date"] is False
    assert document["pending"]

    upgraded = cdb("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "->" in upgraded.stderr

    after = cdb("--json", "db", "status")
    assert after.exit_code == 0, after.output
    document = json.loads(after.stdout)
    assert document["up_to_date"] is True
    assert document["current"] == document["head"]
    assert document["pending"] == []

    again = cdb("db", "upgrade")  # idempotent
    assert again.exit_code == 0, again.output


def test_status_rich_output_names_revision(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cdb.db'}")
    assert cdb("db", "upgrade").exit_code == 0
    result = cdb("db", "status")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_unreachable_database_is_one_line_without_password(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", "postgresql+psycopg://cdb:Hunter2Secret@127.0.0.1:1/cdb")
    for args in (["db", "status"], ["db", "upgrade"]):
        result = cdb(*args)
        assert result.exit_code == ExitCode.FAILURE, result.output
        assert "127.0.0.1:1" in result.stderr
        assert "Hunter2Secret" not in result.stderr + result.stdout
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_upgrade_to_an_unknown_revision_is_a_usage_error(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cdb.db'}")
    result = cdb("db", "upgrade", "nosuchrev")
    assert result.exit_code == ExitCode.USAGE, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == [
        "Error: Invalid value for REVISION: 'nosuchrev' is not a revision of cdb's schema "
        "(cdb db status shows its head)"
    ]
    assert "Unexpected" not in result.output
    assert "CommandError" not in result.output


@pytest.mark.infra
def test_upgrade_on_real_postgres(
    cdb: Callable[..., Result], postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    assert cdb("db", "status").exit_code == ExitCode.CHECK_FAILED
    result = cdb("db", "upgrade")
    assert result.exit_code == 0, result.output
    status = cdb("--json", "db", "status")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["up_to_date"] is True
