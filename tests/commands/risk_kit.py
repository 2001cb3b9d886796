"""Shared by the ``cdb risk`` tests: a persisted replay of the real candles, and the commands'
JSON documents."""

from __future__ import annotations

import json
from collections.abc import Callable

from cdb_testkit import CANDLES, require_data
from typer.testing import Result

from cdb_cli.services.replay import ReplayRequest, persist_replay, run_replay
from cdb_cli.settings import Settings

SEED_FAILURE = {"assumed_spread_pct": "0.12", "max_spread_pct": "0.1"}


def persisted(url: str, **settings: str) -> str:
    """Replay the real candles with ``settings`` into ``url``; return the run id."""
    chosen = Settings(database_url=url, **settings)  # type: ignore[arg-type]
    result = run_replay(chosen, ReplayRequest(data=require_data(CANDLES), symbol="UNITTESTBTC"))
    persist_replay(chosen, result)
    return result.run_id


def explain_json(cdb: Callable[..., Result], *args: str) -> dict[str, object]:
    result = cdb("risk", "explain", *args, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def status_json(cdb: Callable[..., Result]) -> dict[str, object]:
    result = cdb("risk", "status", "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document
