"""``cdb risk explain`` on a store written by a real replay: the seed's failure reproduced and
explained, what-if against a fresh replay, one decision's trace, bad requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.errors import ExitCode
from cdb_cli.settings import Settings

from .risk_kit import SEED_FAILURE, explain_json, persisted


@pytest.fixture(scope="module")
def seed_failure_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('risk') / 'seed.db'}"
    return url, persisted(url, **SEED_FAILURE)


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
