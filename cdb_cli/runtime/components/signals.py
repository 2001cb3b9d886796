"""``signals``: closed bars (``market_bars``) → the strategies → ``trading_signals``.

One strategy per symbol (``CDB_STRATEGY``, built by the kernel's ``strategy_factory`` as for
replay and the paper loop), warmed from MEXC 1-minute
klines when the bars are 1-minute bars. For each closed bar (a ``Bar`` with ``closed_at``, as the
``marketdata`` component publishes them) it publishes the signal, if any — time ``closed_at``,
price the close, id ``sig-<bar id>`` so a redelivered bar gives the same signal — and then its
progress for the bar on ``trading_signals`` too (how many signals it published for it), in one
atomic publication. Bars older than the last one handled for a symbol (a redelivery) are skipped.
The bars are handled in the inbox's pump as they arrive (``on_arrival``), not handed to the step.
Each bar's strategy trace (``cdb explain``) is stored with the component's batch, not published:
nothing downstream reads it, and the decision path stays as short as it was.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.events import Bar, Event, Topic, TradingSignal
from cdb_cli.engine.ports.market import WarmUp
from cdb_cli.engine.remote import progress_report
from cdb_cli.engine.signals import SignalIntent, Strategy
from cdb_cli.engine.strategies import check_intent
from cdb_cli.engine.strategies.guard import StrategyErrors
from cdb_cli.engine.traces import Tracer
from cdb_cli.runtime.components.base import Component, bar_close_ns
from cdb_cli.runtime.lifecycle import warm_up_record
from cdb_cli.runtime.waits import wait_event

__all__ = ["SignalsComponent"]

logger = logging.getLogger(__name__)


class SignalsComponent(Component):
    name = "signals"
    topics = (Topic.MARKET_BARS,)
    handled_on_arrival = (Topic.MARKET_BARS,)  # the bars are its only work: no hand-off

    def __init__(self, *args: Any, warm_up: WarmUp | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from cdb_cli.kernel import strategy_factory

        factory = strategy_factory(self.settings)
        self.strategies: dict[str, Strategy] = {symbol: factory() for symbol in self.symbols}
        self.strategy_errors = StrategyErrors(self.settings.strategy_max_errors)
        self._last_open: dict[str, int] = {}
        self._warm_up = warm_up
        self.tracer = Tracer(  # the traces are built once the signals are out
            self.outbox,
            run_id=self.run_id,
            interval_ns=self.interval_ns,
            source=self.name,
            deferred=True,
        )

    async def prepare(self) -> None:
        # Before 2026-12 signals read market_data: its group there would only grow (the bars
        # now come on market_bars).
        await self.bus.drop_group(Topic.MARKET_DATA, self.name)
        if self._warm_up is None:
            return
        for symbol in self.strategies:
            try:
                history = await self._warm_up(symbol)
            except Exception as e:  # a warm-up that fails must not stop the signals
                logger.warning("Warm-up of %s failed: %s", symbol, e)
                continue
            record = warm_up_record(self.run_id, self.clock.timestamp_ns(), symbol, history)
            try:
                await self.call(self.store.add_audit, record)
            except CdbError as e:  # no signal waits for paperwork
                logger.warning("Could not record the warm-up of %s: %s", symbol, e)
            for ts, close, volume in history:
                self._on_bar(symbol, ts, close, volume)
            logger.info("Warmed %s with %d bars", symbol, len(history))

    def _on_bar(self, symbol: str, ts: int, close: float, volume: float) -> SignalIntent | None:
        """The strategy's ``on_bar``; an exception is logged with the bar, counted
        (``strategy_errors``) and disables the symbol's strategy at CDB_STRATEGY_MAX_ERRORS."""
        strategy = self.strategies[symbol]
        try:
            intent = strategy.on_bar(ts, close, volume)
            if intent is not None:
                check_intent(intent)
        except Exception as error:  # a strategy's bug never stops the component
            self.count("strategy_errors")
            errors = self.strategy_errors
            if errors.failed(symbol, strategy, ts, error):
                self.strategies[symbol] = errors.disable(symbol, strategy, error)
            if self.metrics is not None:
                self.metrics.set_strategy_errors(errors)
            return None
        return intent

    async def step(self) -> None:
        await wait_event(self.stop, 0.2)  # the bars are handled as they arrive (on_arrival)

    async def on_arrival(self) -> None:
        inbox = self.inboxes[Topic.MARKET_BARS]
        items: list[tuple[Topic, Event]] = []
        handled = []
        while inbox.queue:
            delivery, _ = inbox.pop()
            handled.append(delivery)
            bar = delivery.event
            if not isinstance(bar, Bar) or not bar.closed or bar.closed_at <= 0:
                continue
            strategy = self.strategies.get(bar.symbol)
            if strategy is None or bar.ts_event <= self._last_open.get(bar.symbol, -1):
                continue
            self._last_open[bar.symbol] = bar.ts_event
            close, volume = float(bar.close), float(bar.volume)
            ts_close = bar_close_ns(bar, self.interval_ns)
            self.tracer.settle(bar.symbol)  # a second bar of it in this batch: the first is due
            intent = self._on_bar(bar.symbol, ts_close, close, volume)
            strategy = self.strategies[bar.symbol]  # disabled after too many errors
            count = 0
            trace_id = self.tracer.id_for(bar.symbol, ts_close)
            if intent is not None:
                signal = TradingSignal(
                    event_id=f"sig-{bar.event_id}"[:64],
                    symbol=bar.symbol,
                    ts_event=bar.closed_at,
                    source=strategy.name,
                    side=intent.side,
                    strategy=strategy.name,
                    price=Decimal(repr(close)),
                    strength=intent.strength,
                    indicators=intent.indicators,
                    bar_id=bar.event_id,
                    trace_id=trace_id,
                )
                items.append((Topic.TRADING_SIGNALS, signal))
                self.outbox.event(Topic.TRADING_SIGNALS, signal)
                self.count("signals")
                count = 1
                self.tracer.bar(
                    bar.symbol, strategy, ts_close, close, volume, signal.event_id, intent.side
                )
            else:
                self.tracer.bar(bar.symbol, strategy, ts_close, close, volume)
            items.append(
                (
                    Topic.TRADING_SIGNALS,
                    progress_report(
                        self.name,
                        symbol=bar.symbol,
                        bar_id=bar.event_id,
                        ts=bar.closed_at,
                        count=count,
                    ),
                )
            )
            self.count("bars")
        await self.publish(items)
        published = time.time_ns()
        self.tracer.flush()
        for _, event in items:
            if isinstance(event, TradingSignal):
                self.latency.write(event.bar_id, published)
        for delivery in handled:
            inbox.done(delivery)
