"""``risk``: a pipeline whose signals come from ``signals`` and whose orders go to ``execution``.

It reads ``market_data`` in stream order and does what one process does there — quotes give the
spread, trades move the marks, the price age and the loss-limit tripwires — with the kernel's
``build_risk_pipeline`` (``RemoteStrategy`` + ``RemoteExecution``). Its catch-up rules, so that it
decides on the same state as one process:

- before a **trade**, every order it approved that may fill at that trade's time needs a report of
  the execution at that time or later (``RemoteExecution.settled``); the fill is then booked at
  that trade, as one process books it;
- at a **closed bar** (published just before the trade that closed it), it waits for the
  ``signals`` progress of the bar and the signal it announces, then closes the bar through the
  pipeline at time ``closed_at`` — the decision runs the pipeline's own path — and publishes the
  decision, the approval and its own progress for the bar (how many approvals). The approval
  and the progress go out the moment the venue has the order, before the pipeline writes the
  signal and decision records (``RemoteExecution.on_submit``, ``MessageBus.publish_soon``): with
  no flatten under way a bar has at most that one approval. The rest of the bars of several
  symbols that close together (one batch of market events) is published in one go: before any
  wait, or at the end of the batch.

A wait longer than the component's wait timeout is logged as a warning and the component goes on
with what it has (a late report is booked at the next trade; a late signal is dropped).
An audited ``cdb risk halt`` is picked up within a second. With ``--flatten``, a symbol's exit is
approved at its next closed bar, with the bar's decisions (a bar, opened by a trade, closes
within the bar interval and its grace even if no other trade comes; a symbol that does not trade
at all waits for its next trade): that is where ``execution`` waits for ``risk``, so both place the
exit at the same point of the market stream — with the working buys it cancels and the fills
before it — as they do every approval. Again at each bar, until flat.
Decisions and approvals are stored by this process; orders, fills and reports by ``execution``.
A bar the store has decisions for (given back after a crash between their write and the bar's
acknowledgement) is not decided again: its stored approvals are taken back and announced again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.events import (
    Bar,
    Event,
    ExecutionReport,
    HealthReport,
    OrderApproved,
    QuoteTick,
    RiskDecision,
    Topic,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.operator import OPERATOR
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord
from cdb_cli.engine.remote import RemoteExecution, progress_report, read_progress, report_fill
from cdb_cli.engine.risk import TradingState
from cdb_cli.engine.signals import SignalIntent
from cdb_cli.runtime.components.base import Component, bar_close_ns
from cdb_cli.runtime.components.confirm import StoredFills
from cdb_cli.runtime.components.inputs import BarInputs
from cdb_cli.runtime.control import OperatorControl, read_operator_audits
from cdb_cli.runtime.waits import wait_event
from cdb_cli.runtime.watch import Dependency
from cdb_cli.services.restore import restore_orders, restore_portfolio

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline

__all__ = ["RiskComponent"]

logger = logging.getLogger(__name__)

OPERATOR_CHECK_S = 1.0
"""How often ``risk`` reads the audited halts and resets from the store."""

RECALL = 1000
"""How many of the latest stored decisions and approvals a start reads, to recognise a bar
decided before the restart (only the last few bars can come back)."""


@dataclass
class _RiskRecorder:
    """Keeps the decisions and approvals; the pipeline's own copy of the signal is replaced by
    the one ``signals`` published (the decision names it), and orders, fills and reports belong
    to ``execution``. An operator's exit (a flatten) has no signal from ``signals``: its own
    signal is kept, so it is stored and its decision names it, as in one process."""

    keeps_events: ClassVar[bool] = True
    items: list[tuple[Topic, Event]] = field(default_factory=list)
    signal_id: str = ""

    def event(self, topic: Topic, event: Event) -> None:
        if topic is Topic.TRADING_SIGNALS and event.source == OPERATOR:
            self.items.append((topic, event))
        elif topic is Topic.RISK_EVENTS and isinstance(event, RiskDecision):
            if self.signal_id:
                event = event.model_copy(update={"signal_id": self.signal_id})
            self.items.append((topic, event))
        elif topic is Topic.RISK_APPROVED_TRADES:
            self.items.append((topic, event))

    def order(self, order: OrderRecord) -> None:
        pass

    def fill(self, fill: FillRecord) -> None:
        pass


class RiskComponent(Component):
    name = "risk"
    topics = (Topic.MARKET_DATA, Topic.TRADING_SIGNALS, Topic.EXECUTION_EVENTS)

    store_outage_consequence = "no new entries until it does; exits go on"
    pipeline: TradingPipeline
    execution: RemoteExecution
    confirm_interval_s = 2.0
    """How often ``risk`` asks the store whether the fills of the reports it holds are stored:
    seldom, as a store read in a thread takes the GIL from the bars' path for a millisecond or
    two (a late acknowledgement costs nothing)."""
    confirm_timeout_s = 60.0
    """After this, a fill report whose fill is not stored is acknowledged with a warning."""

    async def prepare(self) -> None:
        from cdb_cli.kernel import build_risk_pipeline

        self.decision_clock = TestClock()
        self.recorder = _RiskRecorder()
        # A restart rebuilds the ledger from the stored fills: a report whose fill the store does
        # not have yet must be given again, so it is acknowledged only once the store has it.
        self.stored_fills = StoredFills(
            self.name,
            self.inboxes,
            self.store,
            self.call,
            interval_s=self.confirm_interval_s,
            timeout_s=self.confirm_timeout_s,
            consequence="a restart of risk goes by the store",
            keep_given_up=False,  # risk writes no positions: nothing waits for it
        )
        self._unpublished: list[tuple[Topic, Event]] = []
        # approvals sent the moment the venue had them: (bar id, what was sent, its ids)
        self._sent: list[tuple[str, list[tuple[Topic, Event]], Awaitable[list[str]]]] = []
        self._sent_progress: dict[str, HealthReport] = {}
        self.control = OperatorControl(
            self.symbols,
            who=f"Run {self.run_id} (component risk)",
            run_id=self.run_id,
            alert=self.alert,
            flatten_note="flattening every position, each at its next closed bar",
        )
        self.last_event_ns = 0  # the latest market event handled: the time of an operator's act
        self._approved_bars: list[str] = []
        self._signals: BarInputs[str, TradingSignal] = BarInputs("signal")
        store = self.store
        fills = await self.call(store.fills)
        orders = await self.call(store.orders)
        portfolio = await self.call(
            restore_portfolio, store, await self.starting_cash(), fills, self.quote
        )
        self.pipeline, self.strategies = build_risk_pipeline(
            self.settings,
            symbols=self.symbols,
            clock=self.decision_clock,
            recorder=self.recorder,
            run_id=self.run_id,
            portfolio=portfolio,
            instruments=self.instruments,
        )
        execution = self.pipeline.execution
        if not isinstance(execution, RemoteExecution):
            raise TypeError("the risk component's venue must be a RemoteExecution")
        self.execution = execution
        restored = await self.call(restore_orders, store, self.pipeline, orders, self.symbols)
        await self._recall_decisions(orders)
        if self.metrics is not None:
            self.metrics.set_risk_limits(self.pipeline.risk.limits)
        await self.control.resume(self.pipeline, store, self.clock.timestamp_ns())
        self._operator_audits: tuple[list[AuditRecord], list[AuditRecord]] | None = None
        logger.info("risk: restored %d fills and %d working orders", len(fills), restored)

    async def _recall_decisions(self, orders: list[OrderRecord]) -> None:
        """The latest decision's time per symbol and the latest approvals (the last
        ``RECALL`` of each): a bar the store has decisions for comes back only after a crash
        between their write and the bar's acknowledgement, and is not decided again
        (:meth:`_decided_before`)."""
        latest = {"limit": RECALL, "descending": True}
        decisions = await self.call(self.store.events, RiskDecision, **latest)
        self._decided: dict[str, int] = {}
        for decision in decisions:
            known = self._decided.get(decision.symbol, -1)
            self._decided[decision.symbol] = max(known, decision.ts_event)
        self._stored_approvals: dict[tuple[str, int], list[OrderApproved]] = {}
        for approval in await self.call(self.store.events, OrderApproved, **latest):
            key = (approval.symbol, approval.ts_event)
            self._stored_approvals.setdefault(key, []).append(approval)
        self._stored_orders = {order.client_order_id for order in orders}

    def drain(self) -> None:
        signals = self.inboxes[Topic.TRADING_SIGNALS]
        while signals.queue:
            delivery, arrived = signals.pop()
            event = delivery.event
            if isinstance(event, TradingSignal) and event.bar_id:
                if not self._signals.add(event.bar_id, event, arrived, signals, delivery):
                    # Its bar was decided without it (the wait for it timed out): deciding it
                    # now would put a decision at a point of the market that has passed.
                    logger.warning(
                        "risk: signal %s came after its bar %s was decided without it: not "
                        "decided (the wait timed out)",
                        event.event_id,
                        event.bar_id,
                    )
                    self.count("late_signals")
                    signals.done(delivery)
                continue
            if isinstance(event, HealthReport):
                progress = read_progress(event)
                if progress is not None and progress[0] == "signals":
                    self._signals.count(progress[1], progress[2], signals, delivery)
                    continue
            signals.done(delivery)
        reports = self.inboxes[Topic.EXECUTION_EVENTS]
        while reports.queue:
            delivery, _ = reports.pop()
            report = delivery.event
            if isinstance(report, ExecutionReport):
                self.execution.deliver(report)
                if report.last_quantity > 0:  # done once execution stored the fill
                    self.stored_fills.hold(delivery, report_fill(report))
                    continue
            reports.done(delivery)

    def background(self) -> list[Coroutine[Any, Any, None]]:
        # The held fill reports are checked off the bars' path (each check is a store read).
        return [self._read_operator_actions(), self.stored_fills.run(self.stop)]

    async def _read_operator_actions(self) -> None:
        """Read the audited halts and resets every second, off the bars' path (a store read
        takes milliseconds); the step applies what is new. A read that fails (the store is down)
        is one warning line and another try a second later (it ended risk with exit 1)."""
        store = Dependency("database", "risk: reading the operator's halts and resets")
        while not self.stop.is_set():
            try:
                self._operator_audits = await read_operator_audits(self.store)
            except CdbError as e:  # a store outage is waited out, never the end of risk
                store.failed(e)
            else:
                store.answered()
            await wait_event(self.stop, OPERATOR_CHECK_S)

    async def step(self) -> None:
        # While the store that must record them takes no writes, no new entries (exits go on).
        self.pipeline.store_down = self.store_down
        if self._operator_audits is not None:
            halts, resets = self._operator_audits
            self._operator_audits = None
            self.control.pick_up(self.pipeline, halts, resets, self._event_now())
        await self.handle_market(self._handle)
        self.control.flatten.check_done(self.pipeline)  # the exits go out at bars (_close_bar)
        self._note_state_changes()
        await self._alert_new_halts()
        if self.metrics is not None:
            self.metrics.set_trading_state(self.pipeline.trading_state)

    async def _handle(self, event: Event) -> None:
        symbol = event.symbol
        if symbol not in self.symbols:
            return
        pipeline = self.pipeline
        self.last_event_ns = max(self.last_event_ns, event.ts_event)
        if isinstance(event, TradeTick):
            ts = event.ts_event
            if not self.execution.settled(symbol, ts):
                await self.wait_for(
                    lambda: self.execution.settled(symbol, ts),
                    f"the execution's reports up to the {symbol} trade at {ts}",
                )
            pipeline.on_trade(symbol, ts, float(event.price), float(event.quantity))
        elif isinstance(event, QuoteTick):
            pipeline.on_quote(symbol, event.ts_event, event.bid, event.ask)
        elif isinstance(event, Bar) and event.closed and event.closed_at > 0:
            await self._close_bar(event)

    async def _close_bar(self, bar: Bar) -> None:
        bar_id = bar.event_id
        if bar.closed_at <= self._decided.get(bar.symbol, -1):
            self._decided_before(bar)
            return
        await self.wait_for(lambda: self._signals.ready(bar_id, bar_id), f"the signals of {bar_id}")
        signals = [signal for signal, _ in self._signals.take(bar_id, bar_id)]
        signal = signals[0] if signals else None
        strategy = self.strategies[bar.symbol]
        if signal is not None:
            intent = SignalIntent(signal.side, signal.strength, dict(signal.indicators))
            strategy.expect(intent, signal.strategy)
            self.recorder.signal_id = signal.event_id
        # With no flatten under way the bar has at most one approval, its signal's: it goes to
        # execution with the bar's progress the moment the venue has it, before the pipeline
        # writes the signal and decision records (a third of the decision's CPU).
        if self.control.flatten.reason is None:
            self.execution.on_submit = lambda approval: self._send_at_once(bar, approval)
        try:
            self._book_bar(bar)
        finally:
            self.execution.on_submit = None
        strategy.expect(None)
        self.recorder.signal_id = ""
        # An operator's flatten: the symbol's exit goes with the bar's own approvals.
        self.control.flatten.step(self.pipeline, bar.closed_at, only=(bar.symbol,))
        items, self.recorder.items = self.recorder.items, []
        approvals = sum(1 for topic, _ in items if topic is Topic.RISK_APPROVED_TRADES)
        decisions = sum(1 for _, event in items if isinstance(event, RiskDecision))
        if approvals and bar_id not in self._sent_progress:  # else stamped as it was sent
            self._approved_bars.append(bar_id)
        self._announce(bar, items, approvals)
        self.count("decisions", decisions)
        self.count("approvals", approvals)

    def _decided_before(self, bar: Bar) -> None:
        """A bar decided before a restart, given back because it was not acknowledged: its
        decisions and approvals are stored (and were published), so it is not decided again —
        that would approve the same order under new ids, which ``execution`` would place a
        second time. Its signals are taken, its prices booked; each stored approval whose order
        ``execution`` has not stored yet is taken back as working, and the bar's progress
        report names them again (``execution`` may be waiting at the bar too)."""
        self._signals.take(bar.event_id, bar.event_id)
        self._book_bar(bar)  # no intent is expected: nothing is decided
        approvals = self._stored_approvals.pop((bar.symbol, bar.closed_at), [])
        working = {order.client_order_id for order in self.execution.working_orders()}
        for approval in approvals:
            if approval.event_id in self._stored_orders or approval.event_id in working:
                continue  # execution stored it: restored from the store at the start
            position = self.pipeline.portfolio.quantity(bar.symbol)
            self.execution.submit(approval, ts_ns=approval.ts_event, position=position)
        self.pipeline.restore_working()
        items, self.recorder.items = self.recorder.items, []  # nothing, without an intent
        self._announce(bar, items, len(approvals))
        logger.info(
            "risk: %s was decided before the restart; its %d approvals announced again",
            bar.event_id,
            len(approvals),
        )

    def _book_bar(self, bar: Bar) -> None:
        """The bar's close through the pipeline, at the bar's time (the decisions' time, as in
        one process)."""
        self.decision_clock.now_ns = bar.closed_at
        self.pipeline.on_bar_close(
            bar.symbol, bar_close_ns(bar, self.interval_ns), float(bar.close), float(bar.volume)
        )

    def _send_at_once(self, bar: Bar, approval: OrderApproved) -> None:
        """Send ``approval`` and the bar's progress (one approval) now; ``flush`` awaits it."""
        progress = progress_report(
            self.name, symbol=bar.symbol, bar_id=bar.event_id, ts=bar.closed_at, count=1
        )
        sent = [(Topic.RISK_APPROVED_TRADES, approval), (Topic.RISK_APPROVED_TRADES, progress)]
        self._sent.append((bar.event_id, sent, self.bus.publish_soon(sent)))
        self._sent_progress[bar.event_id] = progress
        self.latency.write(bar.event_id, time.time_ns())  # on its way (the benchmark's stamp)

    def _announce(self, bar: Bar, items: list[tuple[Topic, Event]], approvals: int) -> None:
        """Queue for publication what the bar left and the progress report that ends it,
        naming the bar's ``approvals`` (``execution`` waits for that many)."""
        progress = self._sent_progress.pop(bar.event_id, None)
        if progress is not None and approvals != 1:
            raise RuntimeError(f"{bar.event_id}: sent with 1 approval, but it has {approvals}")
        if progress is None:
            progress = progress_report(
                self.name,
                symbol=bar.symbol,
                bar_id=bar.event_id,
                ts=bar.closed_at,
                count=approvals,
            )
        self._unpublished += [*items, (Topic.RISK_APPROVED_TRADES, progress)]

    async def wait_for(
        self, ready: Callable[[], bool], what: str, timeout_s: float | None = None
    ) -> bool:
        """Publish the decisions so far before waiting (``execution`` may be waiting for them)."""
        self.drain()
        if ready():
            return True
        await self.flush()
        return await super().wait_for(ready, what, timeout_s)

    async def flush(self) -> None:
        items, self._unpublished = self._unpublished, []
        if not items:
            return
        sent, self._sent = self._sent, []
        rest = items
        if sent:
            gone = {event.event_id for _, batch, _ in sent for _, event in batch}
            rest = [(topic, event) for topic, event in items if event.event_id not in gone]
        again: list[tuple[Topic, Event]] = []
        for bar_id, batch, ids in sent:
            try:
                await ids
            except CdbError as e:  # sent again with the rest (a copy is dropped by event id)
                logger.warning("risk: sending the approval of %s failed (%s); again", bar_id, e)
                again += batch
                continue
            self.published(batch)
        if again or rest:
            await self.publish([*again, *rest])
        # then stored: the store holds what execution was sent
        published = time.time_ns()
        for topic, event in items:
            if not isinstance(event, HealthReport):  # the progress markers are not stored
                self.outbox.event(topic, event)
        for bar_id in self._approved_bars:
            self.latency.write(bar_id, published)
        self._approved_bars.clear()

    def settle(self) -> None:
        self._signals.settle()  # the batch's decisions are in the outbox, its bars marked done

    def _event_now(self) -> int:
        """The time of an operator's act: the latest market event handled (event time, as the
        decisions); before any, the wall."""
        return max(self.decision_clock.now_ns, self.last_event_ns) or self.clock.timestamp_ns()

    def _note_state_changes(self) -> None:
        self.state_changes.extend(self.control.new_state_changes(self.pipeline))

    async def _alert_new_halts(self) -> None:
        await self.control.alert_new_halts(self.pipeline)

    def readiness(self) -> list[str]:
        reasons = super().readiness()
        if self.started.is_set() and self.pipeline.trading_state is TradingState.HALTED:
            reasons.append("breaker halted")
        return reasons

    async def finish(self) -> None:
        self._note_state_changes()
