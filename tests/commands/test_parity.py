"""``cdb parity`` through the CLI on a real paper run against the MEXC simulator: the summary,
--json, --csv TABLE, --plot, the exit codes (0 explained, 4 not, 1 no run, 2 usage), and a run
whose settings record was changed."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from parity_testkit import StoredRun, delete_trade_at, parity_settings, stored_paper_run
from sqlalchemy import create_engine, text
from typer.testing import Result

from cdb_cli.errors import ExitCode
from cdb_cli.kernel import open_store


def rewrite_starts(database: str, change: Callable[[dict[str, str]], object]) -> None:
    """Change each stored start audit's detail in place (``change`` edits it)."""
    engine = create_engine(database)
    with engine.begin() as connection:
        for row_id, raw in connection.execute(
            text("SELECT id, detail FROM audits WHERE action = 'run_start'")
        ).all():
            detail = json.loads(raw)
            change(detail)
            connection.execute(
                text("UPDATE audits SET detail = :detail WHERE id = :id"),
                {"detail": json.dumps(detail), "id": row_id},
            )
    engine.dispose()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoredRun]:
    path = tmp_path_factory.mktemp("parity-cli") / "paper.db"
    return path, stored_paper_run(parity_settings(f"sqlite:///{path}"), segments=1, fills=4)


@pytest.fixture
def database(
    stored: tuple[Path, StoredRun], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A copy of the stored run for this test (it may tamper with it), in CDB_DATABASE_URL."""
    copy = tmp_path / "paper.db"
    shutil.copy(stored[0], copy)
    url = f"sqlite:///{copy}"
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    return url


def test_a_run_in_parity_exits_0_with_its_summary(
    cdb: Callable[..., Result], database: str, stored: tuple[Path, StoredRun]
) -> None:
    result = cdb("parity")
    assert result.exit_code == ExitCode.OK, result.output
    run_id = stored[1].run_ids[0]
    assert f"Parity of paper run {run_id} (BTCUSDT)" in result.stdout
    assert "parity 100.00 %" in result.stdout
    assert "No differences." in result.stdout


def test_json_has_every_count_and_amount(cdb: Callable[..., Result], database: str) -> None:
    result = cdb("parity", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    document = json.loads(result.stdout)
    decisions = document["decisions"]
    assert decisions["equal"] == decisions["run"] == decisions["replay"] > 0
    assert decisions["parity_pct"] == "100"
    assert document["fills"]["both_sides"] >= 4
    assert document["pnl"]["run"] == document["pnl"]["replay"]
    assert document["differences"] == []
    assert document["mode"] == "paper"
    assert document["curve"]
    assert document["fill_rows"]


def test_csv_prints_one_table(cdb: Callable[..., Result], database: str) -> None:
    result = cdb("parity", "--csv", "decisions")
    assert result.exit_code == ExitCode.OK, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows
    assert {row["outcome"] for row in rows} == {"equal"}
    assert all(row["run_verdict"] == row["replay_verdict"] for row in rows)


@pytest.mark.parametrize(
    "args", [("--csv", "nope"), ("--csv", "fills", "--json"), ("--since", "yesterday-ish")]
)
def test_usage_errors_exit_2(cdb: Callable[..., Result], database: str, args: tuple[str]) -> None:
    assert cdb("parity", *args).exit_code == ExitCode.USAGE


def test_plot_writes_a_png(cdb: Callable[..., Result], database: str, tmp_path: Path) -> None:
    path = tmp_path / "parity.png"
    result = cdb("parity", "--plot", str(path))
    assert result.exit_code == ExitCode.OK, result.output
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_tampered_run_exits_4_and_lists_the_unexplained_first(
    cdb: Callable[..., Result], database: str
) -> None:
    store = open_store(parity_settings(database))
    try:
        fill = store.fills()[1]
    finally:
        store.close()
    assert delete_trade_at(database, fill.ts_event) >= 1
    result = cdb("parity")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "unexplained" in result.stdout
    rows = list(csv.DictReader(io.StringIO(cdb("parity", "--csv", "differences").stdout)))
    causes = {row["cause"] for row in rows}
    assert {"unexplained", "market_data"} <= causes


def test_a_changed_settings_record_is_refused(cdb: Callable[..., Result], database: str) -> None:
    def change(detail: dict[str, str]) -> None:
        settings = json.loads(detail["settings"])
        settings["ema_fast"] = 3  # the hash still says 2
        detail["settings"] = json.dumps(settings, sort_keys=True, separators=(",", ":"))

    rewrite_starts(database, change)
    result = cdb("parity")
    assert result.exit_code == ExitCode.FAILURE
    assert "the audit record was changed" in result.output


def test_no_run_in_the_database_is_one_line_exit_1(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(parity_settings(url), create_if_new=True).close()
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    result = cdb("parity", "p0000000000")
    assert result.exit_code == ExitCode.FAILURE
    assert result.output.strip().splitlines() == [
        "Error: No paper or live run p0000000000 in this database (CDB_DATABASE_URL)"
    ]


def test_a_run_that_recorded_only_its_settings_hash_needs_the_same_settings(
    cdb: Callable[..., Result], database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite_starts(database, lambda detail: detail.pop("settings"))  # as runs before parity
    monkeypatch.setenv("CDB_EMA_FAST", "5")
    result = cdb("parity")
    assert result.exit_code == ExitCode.CONFIGURATION
    assert "recorded only its settings' hash" in result.output
