"""``cdb explain`` as a service, on what a real paper run stored: the paper loop against the
MEXC simulator (real WebSocket, protobuf frames, SQLite), its live screen after the first closed
bar, and the sentence that names the stage that stopped trading with the conditions' values."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path

from market_testkit import eventually
from paper_testkit import simulator_session
from rich.console import Console

from cdb_cli.engine.events import StrategyTrace, TradingSignal
from cdb_cli.kernel import open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.runtime.view import render
from cdb_cli.services.why import Window, explain_window
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
SECOND = 1_000_000_000


def screen(runtime: TradingLoop) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(runtime))
    text = console.export_text()
    console.file.close()
    return text


def test_a_rising_market_is_explained_from_the_store_of_a_paper_run(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'paper.db'}",
        ema_fast=2,
        ema_slow=4,
        rsi_period=2,
        volume_period=3,
        paper_latency_ms=0,
    )
    screens: dict[str, str] = {}

    async def scenario() -> None:
        async with simulator_session(settings) as sim:
            runtime = sim.runtime
            price = Decimal(sim.server.exchange.markets[SYMBOL].price)
            screens["before"] = screen(runtime)
            for bars in range(1, 10):  # a steady rise: one price per bar
                price = price * Decimal("1.002")
                await sim.server.step({SYMBOL: price})
                await eventually(lambda n=bars: runtime.summary.bars >= n - 1)
                if bars == 2:  # the first bar has closed (the second price closed it)
                    screens["first"] = screen(runtime)
            await eventually(lambda: runtime.summary.bars >= 8)
            tracer = runtime.pipeline.tracer if runtime.pipeline else None
            assert tracer is not None
            await eventually(lambda: tracer.latest[SYMBOL].status == "evaluated")
            screens["evaluated"] = screen(runtime)
        reopened = open_store(settings)
        traces = reopened.events(StrategyTrace, symbol=SYMBOL)
        assert len(traces) == runtime.summary.bars
        assert reopened.events(TradingSignal) == []
        document = explain_window(reopened, settings, Window(since_ns=traces[0].ts_event - 1))
        reopened.close()
        funnel = document["symbols"][0]
        assert funnel["stage"] == "strategy"
        evaluated = [t for t in traces if t.status == "evaluated"]
        assert funnel["evaluated"] == len(evaluated) >= 3
        assert funnel["conditions"]["cross_up"]["passed"] == 0
        gap = evaluated[-1].values["gap_pct"]
        assert gap > 0
        assert re.fullmatch(
            rf"BTCUSDT: {len(evaluated)} bars evaluated, 0 crosses up; the fast EMA stayed above "
            rf"the slow one on every bar from \S+ \S+ \(gap now \+{gap:.3f} %\)\.",
            funnel["sentence"],
        ), funnel["sentence"]
        assert funnel["market_events"] > funnel["bars"] == len(traces)
        assert document["near_misses"]
        assert all(miss["failed"] for miss in document["near_misses"])

    asyncio.run(scenario())
    assert "no closed bar yet" in screens["before"]
    assert "warming up:" in screens["first"]  # the first closed bar: what it still needs
    assert re.search(r"cross up: gap \+\d\.\d{3} %.*✗; RSI \d+\.\d > 50 ✓", screens["evaluated"])
    assert "none yet" in screens["evaluated"]  # no signal so far
