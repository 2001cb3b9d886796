"""``cdb risk explain``'s outcomes beyond approved and rejected: an operator's flatten (not the
rules' decision), exits with nothing held, reduced buys, and stores of older versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, require_data
from typer.testing import Result

from cdb_cli.engine.events import RiskDecision
from cdb_cli.settings import Settings

from .risk_kit import explain_json


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
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.recorders import MemoryRecorder
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
