"""``cdb run --paper --feed sim --strategy FILE.py:Class``: a user strategy trades in the paper
loop as a process; its traces and signals carry its name, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from market_testkit import free_port, wait_until
from strategies_testkit import EXAMPLE_SPEC

from cdb_cli.engine.events import StrategyTrace
from cdb_cli.kernel import open_store
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"


def evaluated_traces(url: str) -> list[StrategyTrace]:
    try:
        store = open_store(Settings(database_url=url))
    except Exception:  # the process creates the database
        return []
    try:
        return [t for t in store.events(StrategyTrace) if t.status == "evaluated"]
    except Exception:  # not migrated yet
        return []
    finally:
        store.close()


@pytest.mark.slow
def test_a_user_strategy_file_runs_in_the_paper_loop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'run.db'}"
    env = {
        **os.environ,
        "CDB_DATABASE_URL": url,
        "CDB_BAR_SECONDS": "1",
        "CDB_STRATEGY_EXIT_LOOKBACK": "2",
        "NO_COLOR": "1",
        "CDB_HTTP_PORT": str(free_port()),
    }
    cdb = str(Path(sys.executable).parent / "cdb")
    command = [cdb, "run", "--paper", "--feed", "sim", "-s", SYMBOL, "--strategy", EXAMPLE_SPEC]
    process = subprocess.Popen(
        [*command, "--set", "lookback=3"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def traced() -> bool:
            assert process.poll() is None, process.communicate()
            return len(evaluated_traces(url)) >= 3

        wait_until(traced, 60, "three evaluated bars of the user strategy")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    traces = evaluated_traces(url)
    assert {t.strategy for t in traces} == {"breakout"}
    assert {c.name for t in traces for c in t.conditions} == {"breakout", "volume", "breakdown"}
    assert "Strategy breakout failed" not in err
