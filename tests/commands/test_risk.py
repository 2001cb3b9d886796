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

from cdb_cli.engine.events import RiskDecision
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
    # signals, and zero orders: every buy rejected, so every exit has nothing to sell
    assert (decisions["rejected"], decisions["nothing_held"]) == (
        decisions["buy"],
        decisions["exit"],
    )
    top = doc["top_blocker"]
    assert isinstance(top, dict)
    assert (top["rule"], top["count"], top["share"]) == ("spread", decisions["buy"], 1.0)
    assert top["example_decision_id"].startswith(run)
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
    if not base:  # tightened: the fresh run places no order, and neither does the what-if
        verdicts = {d.verdict for d in fresh.values()}  # type: ignore[attr-defined]
        assert verdicts == {"rejected", "nothing_held"}
        after = doc["what_if"]["after"]  # type: ignore[index]
        assert set(after) == {"rejected", "nothing_held"}
        assert sum(after.values()) == len(stored)


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


def test_the_summary_names_decision_ids_to_copy(
    cdb: Callable[..., Result], seed_failure_db: tuple[str, str], use_db: Callable[[str], None]
) -> None:
    url, run = seed_failure_db
    use_db(url)
    doc = explain_json(cdb, "--run", run)
    latest = doc["latest_blocked"]
    assert isinstance(latest, list)
    assert len(latest) == 5
    text = cdb("risk", "explain", "--run", run)
    assert text.exit_code == 0, text.output
    ids = [
        doc["top_blocker"]["example_decision_id"],  # type: ignore[index]
        doc["nothing_held"]["example_decision_id"],  # type: ignore[index]
        *(item["decision_id"] for item in latest),
    ]
    for decision_id in ids:
        assert f" {decision_id}" in text.stdout  # whole, on one line
        assert explain_json(cdb, decision_id)["trace"]["decision_id"] == decision_id  # type: ignore[index]


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
    assert result.stdout == ""
    # with --json, a JSON document saying why, and the same exit code
    as_json = cdb("risk", "explain", *args, "--json")
    assert as_json.exit_code == code, as_json.output
    assert message in json.loads(as_json.stdout)["error"]
    assert message in as_json.stderr


def test_unknown_what_if_lists_the_valid_names(
    cdb: Callable[..., Result], seed_failure_db: tuple[str, str], use_db: Callable[[str], None]
) -> None:
    use_db(seed_failure_db[0])
    result = cdb("risk", "explain", "--what-if", "spread=0.2")
    assert result.exit_code == ExitCode.USAGE, result.output
    from cdb_cli.engine.risk import RiskLimits

    assert RiskLimits.model_fields
    for name in RiskLimits.model_fields:
        assert name in result.stderr


def test_an_empty_window_in_json_says_why(
    cdb: Callable[..., Result], seed_failure_db: tuple[str, str], use_db: Callable[[str], None]
) -> None:
    use_db(seed_failure_db[0])
    result = cdb("risk", "explain", "--symbol", "NOPEUSDT", "--json")
    assert result.exit_code == ExitCode.FAILURE, result.output
    doc = json.loads(result.stdout)
    assert doc["decisions"] == {"total": 0}
    assert (
        doc["error"]
        == "No risk decisions in the window (from the start, until now, symbol NOPEUSDT)"
    )
    assert "symbol NOPEUSDT" in doc["window"]


def test_a_store_without_the_schema_is_one_line_and_in_json_a_document(
    cdb: Callable[..., Result], tmp_path: Path, use_db: Callable[[str], None]
) -> None:
    use_db(f"sqlite:///{tmp_path / 'empty.db'}")
    text = cdb("risk", "explain")
    assert text.exit_code not in (0, ExitCode.USAGE), text.output
    assert "no cdb schema yet" in text.stderr
    assert "Traceback" not in text.output
    as_json = cdb("risk", "explain", "--json")
    assert as_json.exit_code == text.exit_code
    doc = json.loads(as_json.stdout)
    assert doc["exit_code"] == text.exit_code
    assert "no cdb schema yet" in doc["error"]


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


# --- exit signals with nothing held, on a persisted replay of the real candles ----------------


@pytest.fixture(scope="module")
def replayed_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``cdb replay <real candles> --persist`` with the default settings, through the CLI."""
    from typer.testing import CliRunner

    from cdb_cli.app import app

    url = f"sqlite:///{tmp_path_factory.mktemp('held') / 'replay.db'}"
    result = CliRunner().invoke(
        app,
        ["replay", str(require_data(CANDLES)), "--persist", "--set", f"database_url={url}"],
        prog_name="cdb",
    )
    assert result.exit_code == 0, result.output
    return url


def stored_decisions(url: str) -> list[RiskDecision]:
    from cdb_cli.engine.runs import select_decisions
    from cdb_cli.kernel import open_store

    store = open_store(Settings(database_url=url))
    try:
        return list(select_decisions(store))
    finally:
        store.close()


def exits_while_flat(decisions: list[RiskDecision]) -> int:
    """Exit decisions that saw no position in their symbol (from the stored inputs)."""
    return sum(
        1
        for d in decisions
        if d.side == "exit" and Decimal(d.state["position_quote_for_symbol"]) <= 0
    )


def test_exits_while_flat_are_nothing_held_in_every_view_of_a_persisted_replay(
    cdb: Callable[..., Result], replayed_db: str, use_db: Callable[[str], None]
) -> None:
    decisions = stored_decisions(replayed_db)
    flat = exits_while_flat(decisions)
    assert flat > 200  # most exit signals of the real candles come while flat
    use_db(replayed_db)

    # cdb risk explain --json: counted apart, never a rejection, reason or blocker
    doc = explain_json(cdb)
    counts = doc["decisions"]
    assert isinstance(counts, dict)
    assert counts["nothing_held"] == doc["nothing_held"]["count"] == flat  # type: ignore[index]
    assert (
        sum(counts[v] for v in ("approved", "reduced", "rejected", "nothing_held"))
        == (counts["total"])
    )
    assert counts["rejected"] > 0
    assert "no_position" not in json.dumps(doc)
    assert "nothing_held" not in doc["by_reason"]  # type: ignore[operator]
    top = doc["top_blocker"]
    assert isinstance(top, dict)
    assert top["rule"] == "circuit_breaker"  # the real blocker once the breaker tripped
    assert top["count"] == counts["rejected"]
    assert doc["rules"]["exit_position"]["nothing_held"] == flat  # type: ignore[index]
    assert doc["rules"]["exit_position"]["failed"] == 0  # type: ignore[index]

    # the table for a person
    text = cdb("risk", "explain")
    assert text.exit_code == 0, text.output
    assert "no_position" not in text.stdout
    assert f"nothing held {flat}" in text.stdout
    assert f"Exit signal, nothing held: {flat} decisions" in text.stdout
    assert "Top blocker: circuit_breaker" in text.stdout

    # --what-if: exits while flat stay nothing held, and never flip
    what = explain_json(cdb, "--what-if", "circuit_breaker_pct=50", "--show", "100000")
    change = what["what_if"]
    assert isinstance(change, dict)
    assert change["before"]["nothing_held"] == change["after"]["nothing_held"] == flat
    assert change["flipped"] > 0
    assert "nothing_held" not in {flip["before"] for flip in change["flips"]}

    # cdb report: its rejection table has no no_position reason
    report = cdb("report", "--json")
    assert report.exit_code == 0, report.output
    rejections = json.loads(report.stdout)["rejections"]
    assert rejections["decisions"]["nothing_held"] == flat
    assert "no_position" not in rejections["by_reason"]
    assert rejections["by_reason"]  # the real rejections are still there

    # /metrics: the stored decisions counted as cdb run counts them
    from cdb_cli.adapters.metrics import Metrics
    from cdb_cli.engine.events import Topic

    metrics = Metrics()
    for decision in decisions:
        metrics.observe_event(Topic.RISK_EVENTS, decision)
    sample = metrics.registry.get_sample_value
    assert sample("risk_decisions_total", {"verdict": "nothing_held"}) == flat
    assert sample("risk_decisions_total", {"verdict": "rejected"}) == counts["rejected"]
    assert sample("risk_rejections_total", {"reason": "no_position"}) is None
    assert sample("risk_rejections_total", {"reason": "circuit_breaker"}) == counts["rejected"]
    assert sample("risk_checks_failed_total", {"rule": "position_size"}) == 0


def as_stored_before_nothing_held(decision: RiskDecision) -> RiskDecision:
    """``decision`` as versions before the nothing_held verdict stored it."""
    if decision.verdict != "nothing_held":
        return decision
    checks = tuple(
        check.model_copy(
            update={"code": "no_position", "passed": False, "detail": "nothing to exit"}
        )
        if check.code == "nothing_held"
        else check
        for check in decision.checks
    )
    return decision.model_copy(update={"verdict": "rejected", "checks": checks})


def test_a_store_of_an_older_version_is_explained_the_same(
    cdb: Callable[..., Result],
    replayed_db: str,
    use_db: Callable[[str], None],
    tmp_path: Path,
) -> None:
    from cdb_cli.adapters.sql import upgrade
    from cdb_cli.kernel import open_store

    decisions = stored_decisions(replayed_db)
    legacy = [as_stored_before_nothing_held(d) for d in decisions]
    assert sum(d.verdict == "rejected" for d in legacy) > exits_while_flat(decisions)
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    upgrade(url)
    store = open_store(Settings(database_url=url))
    try:
        store.append_events(legacy)
    finally:
        store.close()
    use_db(replayed_db)
    now = explain_json(cdb, "--what-if", "max_spread_pct=0.2")
    now_text = cdb("risk", "explain").stdout
    held_id = now["nothing_held"]["example_decision_id"]  # type: ignore[index]
    now_trace = explain_json(cdb, held_id)["trace"]
    use_db(url)
    assert explain_json(cdb, "--what-if", "max_spread_pct=0.2") == now
    assert cdb("risk", "explain").stdout == now_text
    old_trace = explain_json(cdb, held_id)["trace"]
    assert old_trace.pop("stored_verdict") == "rejected"  # type: ignore[attr-defined]
    assert old_trace == now_trace


def test_a_reduced_buy_shows_as_reduced_in_the_trace_and_the_rules_table(
    cdb: Callable[..., Result], replayed_db: str, use_db: Callable[[str], None]
) -> None:
    use_db(replayed_db)
    doc = explain_json(cdb)
    exposure = doc["rules"]["exposure"]  # type: ignore[index]
    reduced = doc["decisions"]["reduced"]  # type: ignore[index]
    assert reduced > 0
    # observed above the limit, no failure: every one of them a reduction
    assert Decimal(exposure["observed"]["p90"]) > Decimal(exposure["limit"])
    assert (exposure["failed"], exposure["reduced"]) == (0, reduced)
    decision_id = exposure["reduced_example_decision_id"]
    text = cdb("risk", "explain")
    row = next(line for line in text.stdout.splitlines() if line.strip().startswith("exposure"))
    assert row.split()[1:4] == [str(exposure["ran"]), "0", str(reduced)]  # ran, failed, reduced

    traced = explain_json(cdb, decision_id)["trace"]
    assert isinstance(traced, dict)
    assert traced["verdict"] == "reduced"
    check = next(c for c in traced["checks"] if c["rule"] == "exposure")
    assert (check["outcome"], check["reduced_to"]) == ("reduced", traced["final_quote"])
    assert Decimal(traced["final_quote"]) < Decimal(traced["requested_quote"])
    one = cdb("risk", "explain", decision_id)
    assert one.exit_code == 0, one.output
    line = next(row for row in one.stdout.splitlines() if row.strip().startswith("exposure"))
    assert f"reduced to {traced['final_quote']}" in line
    assert " pass " not in line
