"""``cdb explain`` on a store written by a real replay of the real candles: the funnel, one bar's
whole path for a bar that traded and one that did not, the strategy what-if against a fresh
replay with the changed setting, exits while flat apart from rejections, and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cdb_testkit import CANDLES, require_data
from typer.testing import Result

from cdb_cli.engine.events import RiskDecision, StrategyTrace
from cdb_cli.engine.funnel import hhmm
from cdb_cli.errors import ExitCode
from cdb_cli.kernel import open_store
from cdb_cli.services.replay import ReplayRequest, persist_replay, run_replay
from cdb_cli.settings import Settings

SYMBOL = "UNITTESTBTC"


def persisted(url: str, **settings: object) -> str:
    """Replay the real candles with ``settings`` into ``url``; return the run id."""
    chosen = Settings(database_url=url, **settings)  # type: ignore[arg-type]
    result = run_replay(chosen, ReplayRequest(data=require_data(CANDLES), symbol=SYMBOL))
    persist_replay(chosen, result)
    return result.run_id


@pytest.fixture(scope="module")
def replay_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('explain') / 'replay.db'}"
    return url, persisted(url)


@pytest.fixture
def db(replay_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("CDB_DATABASE_URL", replay_db[0])
    return replay_db


def as_json(cdb: Callable[..., Result], *args: str) -> Any:
    result = cdb("explain", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored(url: str) -> tuple[list[StrategyTrace], list[RiskDecision]]:
    store = open_store(Settings(database_url=url))  # type: ignore[arg-type]
    try:
        return store.events(StrategyTrace), store.events(RiskDecision)
    finally:
        store.close()


def test_the_funnel_of_a_persisted_replay(cdb: Callable[..., Result], db: tuple[str, str]) -> None:
    _, run = db
    doc = as_json(cdb, "--run", run)
    [funnel] = doc["symbols"]
    assert funnel["bars"] == funnel["traced"] == 13_681
    assert funnel["evaluated"] == 13_681 - 26
    assert funnel["signals"] == {"buy": 58, "exit": 298}
    assert funnel["buy_conditions_all_passed"] == 58
    assert funnel["conditions"]["cross_up"]["passed"] == 299
    assert funnel["stage"] is None  # it traded
    assert funnel["sentence"].endswith("trading.")
    # an exit with nothing held is counted apart, never as a rejection
    assert funnel["exits_while_flat"] > 0
    _, decisions = stored(db[0])
    verdicts = [d.verdict for d in decisions]
    assert funnel["exits_while_flat"] == verdicts.count("nothing_held") > 0
    assert funnel["risk"] == {
        "approved": verdicts.count("approved"),
        "reduced": verdicts.count("reduced"),
        "rejected": verdicts.count("rejected"),
    }
    assert not any(c.code == "no_position" for d in decisions for c in d.checks)
    assert len(doc["near_misses"]) == 5
    table = cdb("explain", "--run", run)
    assert table.exit_code == 0, table.output
    assert "exits while flat" in table.stdout
    assert "Nearest to a buy" in table.stdout


def test_one_bar_that_traded_and_one_that_did_not(
    cdb: Callable[..., Result], db: tuple[str, str]
) -> None:
    traces, decisions = stored(db[0])
    by_signal = {t.signal_id: t for t in traces if t.signal_id}
    entry = next(d for d in decisions if d.side == "buy" and d.verdict in ("approved", "reduced"))
    bar = by_signal[entry.signal_id]
    at = hhmm(bar.ts_event).replace(" ", "T")

    traded = as_json(cdb, f"{SYMBOL}@{at}")
    assert traded["trace_id"] == bar.event_id
    assert traded["signal"]["signal_id"] == entry.signal_id
    assert traded["risk"]["decision_id"] == entry.event_id
    assert traded["risk"]["outcome"] == entry.verdict
    assert [c["passed"] for c in traded["strategy"]["conditions"] if c["side"] == "buy"] == [
        True, True, True
    ]  # fmt: skip
    [order] = traded["orders"]
    assert order["status"] == "FILLED"
    assert order["fills"]
    assert traded["stopped_at"] == ""
    # the decision id leads to the same path (the id on the screen and in the logs)
    assert as_json(cdb, entry.event_id) == traded
    text = cdb("explain", entry.event_id)
    assert text.exit_code == 0, text.output
    assert "traded: filled" in text.stdout
    assert "✓ buy: RSI" in text.stdout

    quiet = next(t for t in traces if t.status == "evaluated" and not t.signal)
    missed = as_json(cdb, f"{SYMBOL}@{hhmm(quiet.ts_event).replace(' ', 'T')}")
    assert missed["signal"] is None
    assert missed["stopped_at"] == "strategy: no signal on this bar"
    assert missed["market"]["close"]
    assert len(missed["strategy"]["conditions"]) == 4


def test_strategy_what_if_lists_the_bars_a_fresh_replay_signals_on(
    cdb: Callable[..., Result], db: tuple[str, str], tmp_path: Path
) -> None:
    _, run = db
    doc = as_json(cdb, "--run", run, "--what-if", "volume_factor=1.0")
    [symbol] = doc["symbols"]
    would = [(row["ts"], row["side"]) for row in symbol["would_signal"]]
    assert symbol["signals_as_set"] == 58 + 298
    assert len(symbol["new"]) > 0
    assert sum(1 for _, side in would if side == "buy") > 58

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    persisted(fresh, volume_factor="1.0")
    traces, _ = stored(fresh)
    assert would == [(t.ts_event, t.signal) for t in traces if t.signal]
    table = cdb("explain", "--run", run, "--what-if", "volume_factor=1.0")
    assert table.exit_code == 0, table.output
    assert "bars that would signal" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "NOSUCHUSDT"], "Nothing stored for NOSUCHUSDT"),
        ([f"{SYMBOL}@2016-01-01T00:00"], "No bar of UNITTESTBTC at 2016-01-01 00:00 (nearest: "),
        (["nosuchid"], "No decision, signal or bar trace 'nosuchid' in the store"),
        ([f"{SYMBOL}@"], "is not SYMBOL@TIME"),
        (["--since", "2030-01-01"], "Nothing stored in this window"),
        (["--run", "rnosuchrun"], "No run 'rnosuchrun' in the store"),
    ],
)
def test_nothing_to_explain_is_one_line_and_exit_1(
    cdb: Callable[..., Result], db: tuple[str, str], args: list[str], message: str
) -> None:
    text = cdb("explain", *args)
    assert text.exit_code == ExitCode.FAILURE
    assert text.stdout == ""
    assert message in text.stderr
    assert len(text.stderr.strip().splitlines()) == 1
    assert "Traceback" not in text.stderr
    document = cdb("explain", *args, "--json")  # scripts always get a document
    assert document.exit_code == ExitCode.FAILURE
    assert message in json.loads(document.stdout)["error"]


def test_a_bad_what_if_is_a_usage_error_listing_the_valid_names(
    cdb: Callable[..., Result], db: tuple[str, str]
) -> None:
    unknown = cdb("explain", "--what-if", "volume_factr=1")
    assert unknown.exit_code == ExitCode.USAGE
    assert "unknown setting 'volume_factr'; valid: circuit_breaker_pct" in unknown.stderr
    assert "volume_factor" in unknown.stderr
    bad = cdb("explain", "--what-if", "ema_fast=fast")
    assert bad.exit_code == ExitCode.USAGE
    assert "ema_fast" in bad.stderr.lower()
    malformed = cdb("explain", "--what-if", "volume_factor")
    assert malformed.exit_code == ExitCode.USAGE
    scripted = cdb("explain", "--what-if", "ema_slow=5", "--json")  # below ema_fast's 12
    assert scripted.exit_code == ExitCode.USAGE
    assert json.loads(scripted.stdout) == {
        "error": "Invalid value for --what-if: settings: CDB_EMA_FAST (12) must be below "
        "CDB_EMA_SLOW (5)",
        "exit_code": 2,
    }


@pytest.mark.infra
def test_explain_on_postgres(
    cdb: Callable[..., Result], postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = persisted(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    [funnel] = as_json(cdb, "--run", run)["symbols"]
    assert funnel["traced"] == 13_681
    assert funnel["signals"] == {"buy": 58, "exit": 298}
    traces, decisions = stored(postgres_database)
    entry = next(d for d in decisions if d.side == "buy" and d.verdict in ("approved", "reduced"))
    path = as_json(cdb, entry.event_id)
    assert path["risk"]["decision_id"] == entry.event_id
    assert path["orders"][0]["fills"]
    at = hhmm(traces[100].ts_event).replace(" ", "T")
    assert as_json(cdb, f"{SYMBOL}@{at}")["trace_id"] == traces[100].event_id
    what = as_json(cdb, "--run", run, "--what-if", "volume_factor=1.0")
    assert len(what["symbols"][0]["new"]) > 0


def test_a_what_if_with_another_strategy_and_its_settings(
    cdb: Callable[..., Result], db: tuple[str, str], tmp_path: Path
) -> None:
    from strategies_testkit import EXAMPLE_SPEC

    _, run = db
    doc = as_json(cdb, "--run", run, "--strategy", EXAMPLE_SPEC, "--what-if", "lookback=30")
    [symbol] = doc["symbols"]
    would = [(row["ts"], row["side"]) for row in symbol["would_signal"]]
    assert doc["changes"] == {"lookback": "30"}
    assert symbol["signals_as_set"] == 58 + 298
    assert would
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    persisted(fresh, strategy=EXAMPLE_SPEC, strategy_params={"lookback": "30"})  # type: ignore[arg-type]
    traces, _ = stored(fresh)
    assert would == [(t.ts_event, t.signal) for t in traces if t.signal]
    assert {t.strategy for t in traces} == {"breakout"}
    unknown = cdb("explain", "--strategy", "mean_reversion", "--what-if", "lookback=30")
    assert unknown.exit_code == ExitCode.USAGE
    assert "unknown setting 'lookback'; valid: bb_k, bb_period" in unknown.stderr
    broken = cdb("explain", "--strategy", "nope.py:X")
    assert broken.exit_code == ExitCode.CONFIGURATION
    assert "strategy 'nope.py:X': no file nope.py" in broken.stderr
