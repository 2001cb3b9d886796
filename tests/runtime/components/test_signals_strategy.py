"""``signals`` runs the strategy the kernel chooses (CDB_STRATEGY): a user strategy file signals
as it does when fed the same bars directly, and one that raises is logged, counted and disabled
while the component goes on handling bars."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from market_testkit import closed_bar, eventually
from strategies_testkit import EXAMPLE_SPEC, write_strategy

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import Bar, StrategyTrace, Topic, TradingSignal
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.kernel import open_store, strategy_factory
from cdb_cli.runtime.components.signals import SignalsComponent
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
SECOND = 1_000_000_000
T0 = 1_795_400_000 * SECOND

RAISES_ABOVE_1000 = """
from cdb_cli.engine.strategies import StrategyView, buy
class Fragile:
    name = "fragile"
    warmup = 0
    def __init__(self, settings): pass
    def on_bar(self, ts_event, close, volume):
        if close > 1000:
            raise ValueError(f"no idea what {close} means")
        return buy(0.5, {"close": close}) if close < 96 else None
    def explain(self, close, volume):
        return StrategyView("evaluated", 0, (), {})
"""


def bar(i: int, close: float) -> Bar:
    return closed_bar(
        T0 + i * SECOND, T0 + (i + 1) * SECOND, repr(close), symbol=SYMBOL, volume=1 + i % 3
    )


def run_signals(settings: Settings, closes: list[float]) -> SignalsComponent:
    async def scenario() -> SignalsComponent:
        store = open_store(settings, create_if_new=True)
        bus = InMemoryBus()
        signals = SignalsComponent(
            settings,  # type: ignore[arg-type]
            store=store,
            bus=bus,
            symbols=[SYMBOL],
            instruments={SYMBOL: default_instrument(SYMBOL)},
            run_id="ptestsig",
            clock=TestClock(T0),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(signals.run(stop))
        await asyncio.wait_for(signals.started.wait(), 10)
        await bus.publish_many([(Topic.MARKET_BARS, bar(i, c)) for i, c in enumerate(closes)])
        await eventually(lambda: len(store.events(StrategyTrace)) == len(closes), 15)
        stop.set()
        await asyncio.wait_for(task, 10)
        store.close()
        return signals

    return asyncio.run(scenario())


def stored(settings: Settings) -> tuple[list[TradingSignal], list[StrategyTrace]]:
    store = open_store(settings)
    try:
        return store.events(TradingSignal), store.events(StrategyTrace)
    finally:
        store.close()


def test_a_user_strategy_file_signals_as_when_fed_directly(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'signals.db'}",
        bar_seconds=1,
        strategy=EXAMPLE_SPEC,
        strategy_params={"lookback": "5", "exit_lookback": "3"},
    )
    closes = [round(100.0 + 4.0 * math.sin(i / 3.0), 2) for i in range(40)]
    run_signals(settings, closes)
    sent, traces = stored(settings)
    direct = strategy_factory(settings)()
    expected = [
        (T0 + (i + 1) * SECOND, intent.side, intent.strength)
        for i, c in enumerate(closes)
        if (intent := direct.on_bar(T0 + (i + 1) * SECOND, c, float(1 + i % 3))) is not None
    ]
    assert len(expected) >= 4
    assert [(s.ts_event, s.side, s.strength) for s in sent] == expected
    assert {s.strategy for s in sent} == {t.strategy for t in traces} == {"breakout"}


def test_a_raising_strategy_is_counted_and_disabled_and_the_bars_go_on(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'signals.db'}",
        bar_seconds=1,
        strategy=f"{write_strategy(tmp_path, RAISES_ABOVE_1000)}:Fragile",
        strategy_max_errors=3,
    )
    closes = [100.0, 95.0, 1001.0, 1002.0, 1003.0, 1004.0, 95.0, 94.0]
    signals = run_signals(settings, closes)
    sent, traces = stored(settings)
    assert signals.counts["strategy_errors"] == 3
    assert signals.counts["bars"] == len(closes)
    assert signals.strategy_errors.counts == {SYMBOL: 3}
    assert "disabled after 3 errors" in signals.strategy_errors.disabled[SYMBOL]
    # the buy before the errors; none after: the strategy is disabled
    assert [s.ts_event for s in sent] == [T0 + 2 * SECOND]
    assert traces[-1].conditions[0].name == "disabled"
