"""The systemcheck runner: prerequisites, --quick, and errors turned into rows."""

from __future__ import annotations

from datetime import UTC, datetime

from cdb_cli.engine.errors import DependencyError
from cdb_cli.services.systemcheck import Check, CheckContext, Outcome, Status, run_checks
from cdb_cli.settings import Settings


def _context(*, quick: bool = False) -> CheckContext:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return CheckContext(settings=Settings(), now=now, quick=quick)


def _ok(_: CheckContext) -> Outcome:
    return Outcome(Status.OK, "fine")


def _unreachable(_: CheckContext) -> Outcome:
    raise DependencyError("Cannot connect to db://user:hunter2@host")


def _bug(_: CheckContext) -> Outcome:
    raise ZeroDivisionError("division by zero")


def test_every_check_yields_one_row_even_when_one_raises() -> None:
    checks = [
        Check("first", _unreachable),
        Check("second", _bug),
        Check("third", _ok),
    ]
    rows = run_checks(checks, _context(), secrets=["hunter2"])
    assert [(row.name, row.status) for row in rows] == [
        ("first", Status.FAIL),
        ("second", Status.FAIL),
        ("third", Status.OK),
    ]
    assert rows[0].value == "unreachable"
    assert "hunter2" not in rows[0].hint
    assert rows[1].hint == "ZeroDivisionError: division by zero"


def test_a_check_whose_prerequisite_did_not_pass_is_skipped() -> None:
    checks = [
        Check("base", _unreachable),
        Check("dependent", _ok, needs=("base",)),
        Check("independent", _ok),
    ]
    rows = run_checks(checks, _context())
    assert rows[1].status is Status.SKIP
    assert rows[1].hint == "needs base to pass first"
    assert rows[2].status is Status.OK


def test_quick_skips_network_checks_only() -> None:
    rows = run_checks([Check("net", _ok, network=True), Check("local", _ok)], _context(quick=True))
    assert [row.status for row in rows] == [Status.SKIP, Status.OK]
    assert rows[0].to_dict()["status"] == "skip"


def test_checks_using_settings_are_skipped_while_settings_do_not_load() -> None:
    context = CheckContext(settings=None, now=datetime(2026, 1, 1, tzinfo=UTC))
    rows = run_checks([Check("settings", _ok, uses_settings=False), Check("db", _ok)], context)
    assert [row.status for row in rows] == [Status.OK, Status.SKIP]
    assert rows[1].hint == "needs valid settings"


def test_secret_values_cover_url_passwords_and_api_keys() -> None:
    from cdb_cli.services.systemcheck import secret_values

    settings = Settings(
        database_url="postgresql://cdb:dbpass@h/cdb",
        bus_url="redis://:buspass@h:6379/0",
        mexc_api_key="mx0abcdefgh12",
        mexc_api_secret="0" * 32,
    )
    assert sorted(secret_values(settings)) == sorted(
        ["dbpass", "buspass", "mx0abcdefgh12", "0" * 32]
    )
    assert secret_values(None) == []
