"""``cdb risk explain / status / reset`` on a store written by a real replay: the seed's failure
reproduced and explained, what-if against a fresh replay, the breaker's status and audited reset,
on SQLite and once on the real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, require_data
from typer.testing import Result

from cdb_cli.errors import ExitCode
from cdb_cli.replay import ReplayRequest, persist_replay, run_replay
from cdb_cli.settings import Settings

SEED_FAILURE = {"assumed_spread_pct": "0.12", "max_spread_pct": "0.1"}


def persisted(url: str, **settings: str) -> str:
    """Replay the real candles with ``settings`` into ``url``; return the run id."""
    chosen = Settings(database_url=url, **settings)  # type: ignore[arg-type]
    result = run_replay(chosen, ReplayRequest(data=require_data(CANDLES), symbol="UNITTESTBTC"))
    persist_replay(chosen, result)
    return result.run_id


@pytest.fixture(scope="module")
def seed_failure_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('risk') / 'seed.db'}"
    return url, persisted(url, **SEED_FAILURE)


@pytest.fixture
def use_db(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    return lambda url: monkeypatch.setenv("CDB_DATABASE_URL", url)


def explain_json(cdb: Callable[..., Result], *args: str) -> dict[str, object]:
    result = cdb("risk", "explain", *args, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_seed_failure_is_explained_with_spread_as_top_blocker(
    cdb: Callable[..., Result], seed_failure_db: tuple[str, str], use_db: Callable[[str], None]
) -> None:
    url, run = seed_failure_db
    use_db(url)
    doc = explain_json(cdb, "--run", run)
    decisions = doc["decisions"]
    assert isinstance(decisions, dict)
    assert decisions["total"] > 0
    assert decisions["rejected"] == decisions["total"]  # signals, and zero orders
    assert doc["top_blocker"] == {"rule": "spread", "count": decisions["total"], "share": 1.0}
    spread = doc["rules"]["spread"]  # type: ignore[index]
    assert spread["limit"] == "0.1"
    assert spread["observed"]["median"] == "0.12"
    # the table says the same for a person
    table = cdb("risk", "explain", "--run", run)
    assert table.exit_code == 0, table.output
    assert "Top blocker: spread" in table.stdout
    assert "max_spread_pct is 0.1; half of the" in table.stdout


def test_what_if_shows_the_signals_that_would_pass(
    cdb: Callable[..., Result], seed_failure_db: tuple[str, str], use_db: Callable[[str], None]
) -> None:
    url, run = seed_failure_db
    use_db(url)
    doc = explain_json(cdb, "--run", run, "--what-if", "max_spread_pct=0.15", "--show", "1000")
    what = doc["what_if"]
    assert isinstance(what, dict)
    buys = doc["decisions"]["buy"]  # type: ignore[index]
    assert what["flipped"] == buys > 0  # every entry passes; exits still have nothing to sell
    assert {flip["side"] for flip in what["flips"]} == {"buy"}
    assert {flip["after"] for flip in what["flips"]} <= {"approved", "reduced"}
    text = cdb("risk", "explain", "--run", run, "--what-if", "max_spread_pct=0.15")
    assert f"What if max_spread_pct=0.15: {buys} decisions flip" in text.stdout


def decisions_of(url: str, run: str) -> list[object]:
    from cdb_cli.engine.runs import select_decisions
    from cdb_cli.kernel import open_store

    store = open_store(Settings(database_url=url))
    try:
        return list(select_decisions(store, run_id=run))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("base", "change"),
    [
        ({}, {"max_spread_pct": "0.04"}),  # tightening: every entry and exit now fails
        (SEED_FAILURE, {"max_spread_pct": "0.15"}),  # loosening the seed's failure
    ],
)
def test_what_if_verdicts_equal_a_fresh_replay_with_the_changed_limits(
    cdb: Callable[..., Result],
    tmp_path: Path,
    use_db: Callable[[str], None],
    base: dict[str, str],
    change: dict[str, str],
) -> None:
    url = f"sqlite:///{tmp_path / 'whatif.db'}"
    run = persisted(url, **base)
    use_db(url)
    name, value = next(iter(change.items()))
    doc = explain_json(cdb, "--run", run, "--what-if", f"{name}={value}", "--show", "100000")
    flips = {flip["decision_id"]: flip["after"] for flip in doc["what_if"]["flips"]}  # type: ignore[index]
    fresh_run = persisted(url, **{**base, **change})
    stored = decisions_of(url, run)
    fresh = {(d.ts_event, d.side): d for d in decisions_of(url, fresh_run)}  # type: ignore[attr-defined]
    assert len(fresh) == len(stored)  # the strategy does not depend on the fills
    compared = 0
    for decision in stored:
        again = fresh[(decision.ts_event, decision.side)]  # type: ignore[attr-defined]
        if again.state != decision.state:  # type: ignore[attr-defined]
            continue  # the fresh run's fills changed what this decision saw
        compared += 1
        expected = flips.get(decision.event_id, decision.verdict)  # type: ignore[attr-defined]
        assert (again.verdict == "rejected") == (expected == "rejected"), decision
    assert compared >= 1
    if not base:  # tightened: the fresh run rejects everything, and so does the what-if
        assert all(d.verdict == "rejected" for d in fresh.values())  # type: ignore[attr-defined]
        assert doc["what_if"]["after"] == {"rejected": len(stored)}  # type: ignore[index]


def test_one_decision_trace(
    cdb: Callable[..., Result], seed_failure_db: tuple[str, str], use_db: Callable[[str], None]
) -> None:
    url, run = seed_failure_db
    use_db(url)
    decision_id = f"{run}-2"  # the first signal's decision
    doc = explain_json(cdb, decision_id)
    assert doc["trace"]["decision_id"] == decision_id  # type: ignore[index]
    assert len(doc["trace"]["checks"]) == 6  # type: ignore[index]
    assert doc["signal"]["signal_id"] == f"{run}-1"  # type: ignore[index]
    text = cdb("risk", "explain", decision_id)
    assert text.exit_code == 0, text.output
    assert "FAIL" in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["no-such-decision"], ExitCode.FAILURE, "No risk decision 'no-such-decision'"),
        (["--symbol", "NOPEUSDT"], ExitCode.FAILURE, "No risk decisions in the window"),
        (["--since", "2030-01-01"], ExitCode.FAILURE, "No risk decisions in the window"),
        (["--what-if", "max_spred_pct=1"], ExitCode.USAGE, "unknown risk limit"),
        (["--what-if", "max_spread_pct=-1"], ExitCode.USAGE, "max_spread_pct"),
        (["--what-if", "max_spread_pct"], ExitCode.USAGE, "is not LIMIT=VALUE"),
        (["--since", "last tuesday"], ExitCode.USAGE, "is not a duration"),
    ],
)
def test_bad_requests_are_one_line_errors(
    cdb: Callable[..., Result],
    seed_failure_db: tuple[str, str],
    use_db: Callable[[str], None],
    args: list[str],
    code: int,
    message: str,
) -> None:
    use_db(seed_failure_db[0])
    result = cdb("risk", "explain", *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def halted_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    # With the defaults the real candles end with the breaker tripped (loss from peak > 10 %).
    url = f"sqlite:///{tmp_path_factory.mktemp('halt') / 'halted.db'}"
    persisted(url)
    return url


def status_json(cdb: Callable[..., Result]) -> dict[str, object]:
    result = cdb("risk", "status", "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


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


def test_explain_leaves_a_flatten_out_of_the_rules_but_traces_it(
    cdb: Callable[..., Result], tmp_path: Path, use_db: Callable[[str], None]
) -> None:
    """An operator's flatten is not the rules' decision: explain's statistics and what-ifs skip
    it, and its id still shows its trace."""
    import random

    from cdb_cli.adapters.sql import upgrade
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.events import RiskDecision, SignalSide
    from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.pipeline import MemoryRecorder, TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.risk import RiskEngine, RiskLimits
    from cdb_cli.engine.signals import SignalIntent
    from cdb_cli.kernel import open_store

    class BuyOnce:
        name = "buy_once"
        done = False

        def on_bar(self, ts: int, close: float, volume: float) -> SignalIntent | None:
            if self.done:
                return None
            self.done = True
            return SignalIntent(SignalSide.BUY, 1.0, {})

    symbol, minute = "BTCUSDT", 60 * 1_000_000_000
    clock, recorder = TestClock(), MemoryRecorder()
    pipeline = TradingPipeline(
        strategies={symbol: BuyOnce()},
        risk=RiskEngine(RiskLimits()),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=0),
            {symbol: Instrument.from_precisions(symbol, base_asset_precision=6, quote_precision=2)},
            random.Random(1),
            id_prefix="t",
        ),
        portfolio=Portfolio(Decimal(10_000)),
        clock=clock,
        recorder=recorder,
        run_id="rflat",
    )
    for i in range(3):
        clock.set_time((i + 1) * minute)
        pipeline.on_bar(symbol, i * minute, (i + 1) * minute, 100.0, 100.0, 1.0)
    pipeline.halt(clock.timestamp_ns(), "incident")
    (placed,) = pipeline.flatten(clock.timestamp_ns(), "incident").values()

    url = f"sqlite:///{tmp_path / 'flat.db'}"
    upgrade(url)
    store = open_store(Settings(database_url=url))
    try:
        store.append_events([event for _, event in recorder.events])
    finally:
        store.close()
    use_db(url)
    summary = explain_json(cdb, "--what-if", "max_spread_pct=0.2")
    decisions = summary["decisions"]
    assert isinstance(decisions, dict)
    assert (decisions["total"], decisions["buy"], decisions["exit"]) == (1, 1, 0)  # the buy only
    assert summary["what_if"]["flipped"] == 0  # type: ignore[index]
    operator = next(
        e for _, e in recorder.events if isinstance(e, RiskDecision) and e.source == "operator"
    )
    assert operator.event_id == placed.decision_id
    traced = explain_json(cdb, operator.event_id)["trace"]
    assert traced["verdict"] == "approved"  # type: ignore[index]
    assert [c["rule"] for c in traced["checks"]] == ["operator"]  # type: ignore[index]
    assert traced["checks"][0]["detail"] == "flatten by the operator (halted): incident"  # type: ignore[index]
