"""``cdb parity``'s service on real paper runs against the MEXC simulator: a run with a restart
re-runs exactly (SQLite and PostgreSQL), a window in the middle carries what each side held, and
a run whose stored trades were tampered with shows unexplained differences."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from parity_testkit import StoredRun, delete_trade_at, parity_settings, stored_paper_run

from cdb_cli.engine.errors import StateError
from cdb_cli.kernel import open_store
from cdb_cli.services.parity import ParityResult, run_parity
from cdb_cli.settings import Settings


def _parity(settings: Settings, **options: object) -> ParityResult:
    store = open_store(settings)
    try:
        return run_parity(store, settings, **options)  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoredRun]:
    path = tmp_path_factory.mktemp("parity") / "paper.db"
    run = stored_paper_run(parity_settings(f"sqlite:///{path}"), operator=True)
    assert len(run.run_ids) == 2
    assert run.fills >= 12
    return path, run


def _assert_in_parity(result: ParityResult, run: StoredRun) -> None:
    report = result.report
    assert [s.run_id for s in result.segments] == run.run_ids
    assert len(report.decisions) >= run.fills  # every order came from a decision
    assert report.parity_pct(outside_windows=True) == 100
    # the re-run halts and resumes where the run did: even the operator's window is equal here
    assert all(d.outcome == "equal" for d in report.decisions)
    assert sum(1 for f in report.fills if f.run and f.replay) == run.fills
    assert all(f.unexplained_bp == 0 and f.difference == 0 for f in report.fills)
    assert report.pnl_run == report.pnl_replay != 0
    assert report.differences == []
    restart = [w for w in report.windows if w.cause == "restart"]
    assert len(restart) == 1
    assert run.run_ids[0] in restart[0].detail


def test_a_paper_run_with_a_restart_is_re_run_exactly(paper_run: tuple[Path, StoredRun]) -> None:
    path, run = paper_run
    result = _parity(parity_settings(f"sqlite:///{path}"))
    _assert_in_parity(result, run)
    assert result.settings_note.startswith("the run's own (sha256")
    assert not result.crosses_versions
    (operator,) = [w for w in result.report.windows if w.cause == "operator"]
    assert operator.detail == "halted by the operator (tester), then reset: parity test over"
    halted = [
        d for d in result.report.decisions if operator.start_ns <= d.bar_ns <= operator.end_ns
    ]
    assert halted  # the strategy went on while halted, the risk refused on both sides


def test_one_segment_is_re_run_from_the_account_it_started_with(
    paper_run: tuple[Path, StoredRun],
) -> None:
    path, run = paper_run
    result = _parity(parity_settings(f"sqlite:///{path}"), run_ids=[run.run_ids[1]])
    assert [s.run_id for s in result.segments] == [run.run_ids[1]]
    report = result.report
    assert report.decisions
    assert all(d.outcome == "equal" for d in report.decisions)
    assert report.pnl_run == report.pnl_replay


def test_a_window_in_the_middle_compares_only_its_decisions(
    paper_run: tuple[Path, StoredRun],
) -> None:
    path, _ = paper_run
    settings = parity_settings(f"sqlite:///{path}")
    whole = _parity(settings).report
    bars = sorted(d.bar_ns for d in whole.decisions)
    since = bars[len(bars) // 3]
    part = _parity(settings, since_ns=since).report
    assert part.decisions
    assert all(d.bar_ns >= since for d in part.decisions)
    assert len(part.decisions) < len(whole.decisions)
    assert all(d.outcome == "equal" for d in part.decisions)
    assert part.pnl_run == part.pnl_replay
    assert part.pnl_run != whole.pnl_run


def test_a_trade_removed_from_the_stored_run_shows_as_unexplained(
    paper_run: tuple[Path, StoredRun], tmp_path: Path
) -> None:
    path, _ = paper_run
    copy = tmp_path / "tampered.db"
    shutil.copy(path, copy)
    settings = parity_settings(f"sqlite:///{copy}")
    store = open_store(settings)
    try:
        fill = store.fills()[2]
    finally:
        store.close()
    assert delete_trade_at(settings.database_url, fill.ts_event) >= 1
    report = _parity(settings).report
    causes = {d.cause for d in report.differences}
    assert {"unexplained", "market_data"} <= causes
    unexplained = [d for d in report.differences if d.cause == "unexplained"]
    assert any("shows no trade" in d.detail for d in unexplained)
    assert report.unexplained != 0
    assert report.pnl_run != report.pnl_replay
    assert report.explained_pct < 100


def test_an_order_working_at_a_restart_is_matched_after_it(tmp_path: Path) -> None:
    # a second of latency: the first segment stops with a buy placed, not yet filled
    settings = parity_settings(f"sqlite:///{tmp_path / 'working.db'}", paper_latency_ms=1_000)
    run = stored_paper_run(settings, fills=2, seed=7, stop_working=True)
    store = open_store(settings)
    try:
        start = store.audits(action="run_start")[1].ts_event
        carried = [o for o in store.orders() if o.ts_created < start < o.ts_updated]
    finally:
        store.close()
    assert carried  # the restart took an order on
    result = _parity(settings)
    _assert_in_parity(result, run)
    ids = {o.client_order_id for o in carried}
    matched = [f for f in result.report.fills if f.run and f.run.order.client_order_id in ids]
    assert matched
    assert all(f.replay is not None and f.replay.fills for f in matched)


def test_a_database_without_runs_is_one_clear_error(tmp_path: Path) -> None:
    settings = parity_settings(f"sqlite:///{tmp_path / 'empty.db'}")
    open_store(settings, create_if_new=True).close()
    with pytest.raises(StateError, match="No paper or live run"):
        _parity(settings)


@pytest.mark.usefixtures("postgres_database")
def test_a_paper_run_on_postgresql_is_re_run_exactly(postgres_database: str) -> None:
    settings = parity_settings(postgres_database)
    run = stored_paper_run(settings, fills=4, seed=5)
    result = _parity(settings)
    _assert_in_parity(result, run)
    assert result.report.pnl_run == result.report.pnl_replay != Decimal(0)
