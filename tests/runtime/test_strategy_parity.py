"""A user strategy in a file decides the same in the paper loop as in a replay of the same market
events: the kernel builds the same strategy for both, and the same bars reach it."""

from __future__ import annotations

import asyncio
import math
from array import array
from pathlib import Path

from cdb_testkit import QueueFeed
from market_testkit import SYMBOL
from paper_testkit import MINUTE, SECOND, T0, session, slide, trade_minutes
from strategies_testkit import EXAMPLE_SPEC

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import RiskDecision, StrategyTrace, TradingSignal
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.records import Mode
from cdb_cli.engine.replay import TradeSeries, replay_trades
from cdb_cli.kernel import build_pipeline, clock_for, open_store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.settings import Settings

VOLUME = 5.0


def prices(minutes: int) -> list[float]:
    """Waves with breakouts up and down (the example's lookback 5, exit lookback 3)."""
    return [round(100.0 + 4.0 * math.sin(i / 3.0) + 0.05 * i, 2) for i in range(minutes)]


def market(closes: list[float]) -> TradeSeries:
    """The trades ``trade_minutes`` feeds the loop, and one more that closes the last bar."""
    series = TradeSeries(SYMBOL, array("q"), array("d"), array("d"))
    for i, price in enumerate(closes):
        for second in range(0, 60, 10):
            series.ts.append(T0 + i * MINUTE + second * SECOND)
            series.price.append(price)
            series.quantity.append(VOLUME if second == 0 else 0.1)
    return series


def decisions_view(signals: list[TradingSignal], decisions: list[RiskDecision]) -> list[object]:
    verdicts = {
        d.signal_id: (d.verdict, d.requested_quote, d.final_quote, d.state) for d in decisions
    }
    return [(s.side, s.ts_event, s.strength, s.price, verdicts[s.event_id]) for s in signals]


def test_a_user_strategy_file_decides_the_same_in_replay_and_paper(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'paper.db'}",
        paper_latency_ms=0,
        strategy=EXAMPLE_SPEC,
        strategy_params={"lookback": "5", "exit_lookback": "3"},
    )
    closes = prices(60)

    async def scenario(loop: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store) -> None:
        await trade_minutes(feed, clock, 0, [*closes, closes[-1]], volume=VOLUME)

    summary, _ = asyncio.run(session(settings, scenario))
    assert summary.bars >= len(closes)
    store = open_store(settings)
    try:
        paper_signals = store.events(TradingSignal)
        paper_decisions = store.events(RiskDecision)
        paper_traces = store.events(StrategyTrace)
    finally:
        store.close()
    assert {t.strategy for t in paper_traces} == {"breakout"}

    clock = clock_for(Mode.REPLAY, start_ns=T0)
    recorder = MemoryRecorder()
    pipeline = build_pipeline(
        settings, Mode.REPLAY, symbols=[SYMBOL], clock=clock, recorder=recorder, run_id="replay"
    )
    pipeline.warm_up(SYMBOL, slide(40))  # the paper session's warm-up history
    replay_trades(pipeline, market([*closes, closes[-1]]), clock, MINUTE)
    replayed = [e for _, e in recorder.events]
    signals = [e for e in replayed if isinstance(e, TradingSignal)]
    decisions = [e for e in replayed if isinstance(e, RiskDecision)]

    assert {str(s.side) for s in paper_signals} == {"buy", "exit"}
    assert len(paper_signals) >= 4
    assert any(d.verdict == "approved" for d in paper_decisions)
    assert decisions_view(paper_signals, paper_decisions) == decisions_view(signals, decisions)
